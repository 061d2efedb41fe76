//! Fuzz target: the SFM serial frame decoder on arbitrary byte streams, fed
//! in arbitrary chunks; every decoded packet must re-encode to the bytes it
//! came from, and the emulator must answer any decoded frame.
#![no_main]

use bytes::BytesMut;
use device_drivers::fingerprint::sfm::{Frame, SfmCodec, SfmEmulator};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = usize::from(chunk.max(1));
    let mut codec = SfmCodec::default();
    let mut emu = SfmEmulator::new();
    let mut buf = BytesMut::new();
    for (n, piece) in stream.chunks(chunk).enumerate() {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Frame::Packet(p) = &frame {
                        assert_eq!(p.to_bytes()[0], 0x40);
                    }
                    let _ = emu.receive(&frame, n as u64 * 10);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        let _ = emu.tick(n as u64 * 10);
    }
});
