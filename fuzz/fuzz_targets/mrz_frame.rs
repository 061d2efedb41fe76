//! Fuzz target: the MRZ frame decoder on arbitrary byte streams with arbitrary framings,
//! fed in arbitrary chunks at arbitrary times. No input may panic or leave a frame
//! pending after its gap; every scan read must format back, and its zone (with its CAN)
//! framed again must decode to the same scan.
#![no_main]

use device_drivers::card::gate::OcrMrz;
use device_drivers::devices::MrzScan;
use device_drivers::mrz::{encode, Checksum, Framing, MrzDecoder, Terminator};
use libfuzzer_sys::fuzz_target;

/// Header: flags (terminator, STX/ETX, XOR, CAN), gap in 10 ms, chunk size and time step.
fn framing(flags: u8, gap: u8) -> Framing {
    Framing {
        terminator: match flags & 3 {
            0 => Terminator::Cr,
            1 => Terminator::Lf,
            2 => Terminator::Crlf,
            _ => Terminator::Any,
        },
        stx_etx: flags & 4 != 0,
        checksum: if flags & 8 != 0 { Checksum::Xor } else { Checksum::None },
        read_can: flags & 16 != 0,
        frame_gap_ms: u64::from(gap) * 10,
    }
}

fn decode_all(f: &Framing, chunks: &[(&[u8], u64)]) -> Vec<MrzScan> {
    let mut d = MrzDecoder::new(f.clone());
    let mut out = Vec::new();
    let mut now = 0u64;
    for (piece, dt) in chunks {
        now += dt;
        if let Some(t) = d.poll_timeout() {
            if t <= now {
                out.extend(d.handle_timeout(now));
            }
        }
        out.extend(d.push(piece, now));
    }
    out.extend(d.handle_timeout(u64::MAX));
    assert!(!d.is_partial(), "a frame outlived its gap");
    assert_eq!(d.poll_timeout(), None);
    out
}

fuzz_target!(|data: &[u8]| {
    let [flags, gap, step, stream @ ..] = data else {
        return;
    };
    let f = framing(*flags, *gap);
    let size = usize::from(step & 0x3f) + 1;
    let dt = u64::from(step >> 6) * u64::from(*gap) * 6;
    let chunks: Vec<(&[u8], u64)> = stream.chunks(size).map(|c| (c, dt)).collect();
    for scan in decode_all(&f, &chunks) {
        match scan {
            MrzScan::Misread(d) => assert!(!d.is_empty() && d.len() < 200, "{d}"),
            MrzScan::Read { mrz, can } => {
                let OcrMrz::Full(m) = &mrz else {
                    panic!("the serial decoder only reads full zones");
                };
                if let Some(c) = &can {
                    assert!(f.read_can && c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()));
                }
                let lines = m.to_lines().expect("a read zone formats");
                let again = decode_all(&f, &[(&encode(&lines, can.as_deref(), &f), 0)]);
                assert_eq!(again, vec![MrzScan::Read { mrz, can }], "round trip");
            }
        }
    }
});
