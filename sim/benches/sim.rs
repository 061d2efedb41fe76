//! Benchmarks: the state machine's cost per input over a realistic transit, and the
//! busy-day scenario's simulated transits per second of wall time.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use device_drivers::sim::{Params, TravellerSpec};
use device_drivers::types::Time;
use gate_controller::machine::{Config, Event, Machine};
use gate_controller::runtime::screening::InlineWatchlist;
use gate_sim::observed::SimGate;
use gate_sim::run::{run, START};
use gate_sim::scenario::Scenario;
use std::path::Path;

/// The machine inputs of ten ordinary transits, recorded from the simulated lane.
fn recorded_inputs() -> Vec<(Time, Option<Event>)> {
    let mut g = SimGate::new(
        0,
        Config::default(),
        Params::default(),
        1,
        START,
        2,
        InlineWatchlist::default(),
    )
    .expect("default params are valid");
    g.shell.record_machine_inputs(true);
    for k in 0..10 {
        g.shell.world().add_traveller(
            START.plus(k * 1_000),
            TravellerSpec::new(device_drivers::sim::Behaviour::Normal),
        );
    }
    while let Some(t) = g.wakeup() {
        g.step(t);
    }
    assert_eq!(g.outcomes[0], 10, "ten clears");
    g.shell.take_recorded()
}

fn machine_step(c: &mut Criterion) {
    let inputs = recorded_inputs();
    let fresh = Machine::new(Config::default(), START, 1);
    let mut group = c.benchmark_group("machine");
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function("inputs_of_10_transits", |b| {
        b.iter_batched(
            || fresh.clone(),
            |mut m| {
                let mut actions = 0usize;
                for (t, ev) in &inputs {
                    match ev {
                        Some(e) => m.handle(*t, e.clone()),
                        None => m.handle_timeout(*t),
                    }
                    while m.poll_action().is_some() {
                        actions += 1;
                    }
                }
                actions
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn busy_day(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/scenarios/busy-day.toml");
    let scenario = Scenario::load(&path).expect("busy-day.toml loads");
    let transits = run(scenario.clone(), 1, false).expect("runs").transits;
    let mut group = c.benchmark_group("busy_day");
    group.sample_size(10);
    group.throughput(Throughput::Elements(transits));
    group.bench_function("transits", |b| {
        b.iter(|| run(scenario.clone(), 1, false).expect("runs").transits)
    });
    group.finish();
}

criterion_group!(benches, machine_step, busy_day);
criterion_main!(benches);
