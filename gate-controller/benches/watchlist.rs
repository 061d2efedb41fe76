//! Watchlist lookup and delta-apply benchmarks at 1 M entries (`cargo bench -p gate-controller --bench watchlist`).
//! The 128 M-entry figures come from the opt-in `gatectl watchlist bench` (docs/watchlist.md).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gate_controller::watchlist::delta::{Delta, DeltaBuilder};
use gate_controller::watchlist::snapshot::{Snapshot, SnapshotBuilder};
use gate_controller::watchlist::{Action, DocKey, ListId, SecretKey, TrustedKeys, WatchList};
use std::sync::Arc;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn key(seed: u64, i: u64) -> DocKey {
    let a = splitmix(seed.wrapping_mul(0x1000_0000_01b3) ^ splitmix(i));
    DocKey::from_mixed((u128::from(a) << 64) | u128::from(splitmix(a)))
}

const N: u64 = 1_000_000;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let sk = SecretKey::from_seed([3; 32]);
    let trusted = TrustedKeys::from_keys([sk.public()]);
    let id = ListId::new("bench").expect("id");
    let mut b = SnapshotBuilder::new(id.clone(), 1, 0);
    for i in 0..N {
        b.add_document(key(1, i), Action::Refer, "LOST")
            .expect("add");
    }
    let sp = dir.path().join("s.wl");
    b.write(&sp, &sk).expect("write");
    let list = WatchList::from_snapshot(Arc::new(Snapshot::open(&sp, &trusted).expect("open")));
    let mut i = 0u64;
    c.bench_function("watchlist_lookup_hit_1M", |bch| {
        bch.iter(|| {
            i = (i + 7919) % N;
            black_box(list.lookup_document(key(1, i)))
        })
    });
    c.bench_function("watchlist_lookup_miss_1M", |bch| {
        bch.iter(|| {
            i += 1;
            black_box(list.lookup_document(key(2, i)))
        })
    });
    let mut d = DeltaBuilder::new(id, 1, 2, 1);
    for i in 0..50_000 {
        d.remove_document(key(1, i));
        d.add_document(key(3, i), Action::Hold, "NEW").expect("add");
    }
    let dp = dir.path().join("d.wl");
    d.write(&dp, &sk).expect("write");
    let delta = Delta::open(&dp, &trusted).expect("delta");
    let mut g = c.benchmark_group("watchlist_delta");
    g.sample_size(10);
    g.bench_function("apply_100k_changes_on_1M", |bch| {
        bch.iter(|| black_box(list.apply(&delta).expect("apply")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
