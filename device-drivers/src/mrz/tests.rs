//! Decoder tests: the ICAO 9303 specimens through every framing, noise, gaps, defects.

use super::framing::{bcc, defect, encode, Checksum, Framing, MrzDecoder, Terminator, ETX, STX};
use crate::card::gate::OcrMrz;
use crate::card::mrz::{Mrz, MrzFormat};
use crate::devices::MrzScan;
use proptest::prelude::*;

/// ICAO 9303 Part 4 specimen passport (TD3).
pub(crate) fn td3() -> Vec<String> {
    vec![
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<".into(),
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10".into(),
    ]
}

/// ICAO 9303 Part 5 specimen ID card (TD1).
pub(crate) fn td1() -> Vec<String> {
    vec![
        "I<UTOD231458907<<<<<<<<<<<<<<<".into(),
        "7408122F1204159UTO<<<<<<<<<<<6".into(),
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<".into(),
    ]
}

/// ICAO 9303 Part 6 specimen (TD2).
fn td2() -> Vec<String> {
    vec![
        "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<".into(),
        "D231458907UTO7408122F1204159<<<<<<<6".into(),
    ]
}

fn mrz_of(lines: &[String]) -> Mrz {
    Mrz::parse(&lines.join("\n")).expect("specimen parses")
}

fn read(lines: &[String], can: Option<&str>) -> MrzScan {
    MrzScan::Read {
        mrz: OcrMrz::Full(mrz_of(lines)),
        can: can.map(str::to_string),
    }
}

fn misread(s: &[MrzScan]) -> Vec<&str> {
    s.iter()
        .filter_map(|x| match x {
            MrzScan::Misread(d) => Some(d.as_str()),
            MrzScan::Read { .. } => None,
        })
        .collect()
}

fn framings() -> Vec<Framing> {
    let mut v = Vec::new();
    for terminator in [
        Terminator::Cr,
        Terminator::Lf,
        Terminator::Crlf,
        Terminator::Any,
    ] {
        for (stx_etx, checksum) in [
            (false, Checksum::None),
            (true, Checksum::None),
            (true, Checksum::Xor),
        ] {
            for read_can in [false, true] {
                v.push(Framing {
                    terminator,
                    stx_etx,
                    checksum,
                    read_can,
                    frame_gap_ms: 300,
                });
            }
        }
    }
    v
}

/// Everything the decoder reports for `bytes` pushed at once at t = 1000, then the gap.
fn decode_all(f: &Framing, bytes: &[u8]) -> Vec<MrzScan> {
    let mut d = MrzDecoder::new(f.clone());
    let mut out = d.push(bytes, 1_000);
    out.extend(d.handle_timeout(1_000 + f.frame_gap_ms));
    assert!(!d.is_partial());
    out
}

#[test]
fn specimens_round_trip_through_every_framing() {
    for f in framings() {
        for (lines, can) in [(td3(), None), (td2(), None), (td1(), Some("123456"))] {
            let can = can.filter(|_| f.read_can);
            let got = decode_all(&f, &encode(&lines, can, &f));
            assert_eq!(got, vec![read(&lines, can)], "{f:?}");
        }
    }
}

#[test]
fn a_td3_completes_without_waiting_for_the_gap() {
    let f = Framing::default();
    let mut d = MrzDecoder::new(f.clone());
    let got = d.push(&encode(&td3(), None, &f), 5);
    assert_eq!(got, vec![read(&td3(), None)]);
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn byte_by_byte_arrival_decodes_the_same() {
    for f in framings() {
        let can = f.read_can.then_some("654321");
        let bytes = encode(&td1(), can, &f);
        let mut d = MrzDecoder::new(f.clone());
        let mut got = Vec::new();
        for (i, b) in bytes.iter().enumerate() {
            got.extend(d.push(&[*b], 100 + i as u64));
        }
        got.extend(d.handle_timeout(10_000));
        assert_eq!(got, vec![read(&td1(), can)], "{f:?}");
    }
}

#[test]
fn noise_before_and_between_frames_is_skipped() {
    for f in framings() {
        let mut bytes = b"\x00\xffREADY\r\n\x13garbage 123\n\r".to_vec();
        bytes.extend(encode(&td3(), None, &f));
        bytes.extend(b"\r\nOK\r\n\x03\x7f\r\n");
        bytes.extend(encode(&td2(), None, &f));
        let got = decode_all(&f, &bytes);
        assert_eq!(got, vec![read(&td3(), None), read(&td2(), None)], "{f:?}");
    }
}

#[test]
fn noise_glued_to_the_first_line_is_cut_off() {
    // Line mode: MRZ-alphabet noise without a terminator runs into the first line.
    let f = Framing::default();
    for lines in [td1(), td2(), td3()] {
        let mut bytes = b"\x01ZZ<<ABCDEFGHIJKLMNOP".to_vec();
        bytes.extend(encode(&lines, None, &f));
        assert_eq!(decode_all(&f, &bytes), vec![read(&lines, None)]);
    }
}

#[test]
fn spaces_in_lines_are_stripped() {
    let f = Framing::default();
    let spaced: Vec<String> = td3()
        .iter()
        .map(|l| format!(" {} {} ", &l[..10], &l[10..]))
        .collect();
    assert_eq!(
        decode_all(&f, &encode(&spaced, None, &f)),
        vec![read(&td3(), None)]
    );
}

#[test]
fn a_partial_line_then_the_gap_is_discarded_and_the_next_frame_read() {
    let f = Framing::default();
    let mut d = MrzDecoder::new(f.clone());
    assert!(d.push(b"P<UTOERIKSS", 1_000).is_empty());
    assert_eq!(d.poll_timeout(), Some(1_300));
    assert!(d.handle_timeout(1_299).is_empty());
    assert!(d.is_partial());
    assert!(d.handle_timeout(1_300).is_empty(), "a short line is noise");
    assert!(!d.is_partial());
    assert_eq!(
        d.push(&encode(&td3(), None, &f), 2_000),
        vec![read(&td3(), None)]
    );
    // Without a handle_timeout call in between, a late push expires the partial first.
    assert!(d.push(b"P<UTOERIKSS", 3_000).is_empty());
    assert_eq!(
        d.push(&encode(&td3(), None, &f), 3_400),
        vec![read(&td3(), None)]
    );
}

#[test]
fn a_missing_line_within_the_gap_is_a_misread() {
    let f = Framing::default();
    let mut d = MrzDecoder::new(f.clone());
    let first = format!("{}\r\n", td1()[0]);
    let second = format!("{}\r\n", td1()[1]);
    assert!(d.push(first.as_bytes(), 0).is_empty());
    assert!(d.push(second.as_bytes(), 250).is_empty(), "within the gap");
    assert_eq!(d.poll_timeout(), Some(550));
    let got = d.handle_timeout(550);
    assert_eq!(
        misread(&got),
        ["incomplete MRZ: 2 line(s) of 3 within the frame gap"]
    );
    // A TD3 whose second line never comes.
    let first = format!("{}\r\n", td3()[0]);
    assert!(d.push(first.as_bytes(), 1_000).is_empty());
    assert_eq!(misread(&d.handle_timeout(1_300)).len(), 1);
}

#[test]
fn a_truncated_line_is_a_misread_naming_the_line() {
    let f = Framing::default();
    let l = td3();
    let bytes = format!("{}\r\n{}\r\n", l[0], &l[1][..43]);
    let got = decode_all(&f, bytes.as_bytes());
    assert_eq!(
        misread(&got),
        ["MRZ line 2 has 43 characters, expected 30, 36 or 44"]
    );
}

#[test]
fn a_failing_check_digit_is_a_misread_naming_the_field_not_the_content() {
    for f in framings() {
        let mut lines = td3();
        lines[1] = lines[1].replacen("L898902C36", "L898902C35", 1);
        let got = decode_all(&f, &encode(&lines, None, &f));
        assert_eq!(
            misread(&got),
            ["check digit of the document number does not match"],
            "{f:?}"
        );
        let mut lines = td1();
        lines[1] = lines[1].replacen("7408122", "7408132", 1);
        let got = decode_all(&f, &encode(&lines, None, &f));
        assert_eq!(
            misread(&got),
            ["check digit of the date of birth does not match"],
            "{f:?}"
        );
    }
}

#[test]
fn defects_never_carry_mrz_content() {
    // Every field of the specimen corrupted in turn: the defect names no content.
    let joined: String = td3().concat();
    for pos in 0..joined.len() {
        for c in ['0', 'X', '<', '?'] {
            let mut b = joined.clone().into_bytes();
            b[pos] = c as u8;
            let s = String::from_utf8(b).expect("ascii");
            if let Err(e) = Mrz::parse(&s) {
                let d = defect(&e);
                for secret in [
                    "ERIKSSON", "ANNA", "L898902C", "740812", "120415", "ZE184226",
                ] {
                    assert!(!d.contains(secret), "{d}");
                }
                assert!(!d.contains(c) || c == '0' || c == '<', "{d}");
            }
        }
    }
}

#[test]
fn stx_etx_with_xor_checks_the_block_check() {
    let f = Framing {
        stx_etx: true,
        checksum: Checksum::Xor,
        ..Framing::default()
    };
    let good = encode(&td3(), None, &f);
    let body = &good[1..good.len() - 2];
    assert_eq!(good[0], STX);
    assert_eq!(good[good.len() - 2], ETX);
    assert_eq!(good[good.len() - 1], bcc(body));
    let mut bad = good.clone();
    *bad.last_mut().expect("bcc") ^= 0x40;
    let got = decode_all(&f, &bad);
    assert_eq!(misread(&got), ["block check (XOR) does not match"]);
    // A corrupted data byte is caught by the BCC too.
    let mut bad = good.clone();
    bad[10] = b'X';
    assert_eq!(
        misread(&decode_all(&f, &bad)),
        ["block check (XOR) does not match"]
    );
    // The BCC never arrives.
    let got = decode_all(&f, &good[..good.len() - 1]);
    assert_eq!(misread(&got), ["block check byte missing"]);
    // A good frame after the bad one is still read.
    let mut both = bad;
    both.extend(&good);
    let got = decode_all(&f, &both);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], read(&td3(), None));
}

#[test]
fn stx_etx_without_etx_is_discarded_at_the_gap() {
    let f = Framing {
        stx_etx: true,
        ..Framing::default()
    };
    let good = encode(&td3(), None, &f);
    let got = decode_all(&f, &good[..good.len() - 1]);
    assert_eq!(
        misread(&got),
        ["no end of frame (ETX) within the frame gap"]
    );
    // STX ... STX: the first frame is cut short, the second read.
    let mut bytes = good[..30].to_vec();
    bytes.extend(&good);
    let got = decode_all(&f, &bytes);
    assert_eq!(
        got,
        vec![
            MrzScan::Misread("frame interrupted by a new STX".into()),
            read(&td3(), None)
        ]
    );
    // Noise frames (no MRZ-like content) are skipped silently.
    let got = decode_all(&f, b"\x02ACK\x03\x02\x03\x02 12 \r\n\x03");
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn the_can_line_follows_a_td1() {
    let f = Framing {
        read_can: true,
        ..Framing::default()
    };
    // With a CAN: read as soon as it arrives.
    let mut d = MrzDecoder::new(f.clone());
    assert_eq!(
        d.push(&encode(&td1(), Some("123456"), &f), 0),
        vec![read(&td1(), Some("123456"))]
    );
    // Without a CAN: read without one once the gap has passed.
    let mut d = MrzDecoder::new(f.clone());
    assert!(d.push(&encode(&td1(), None, &f), 0).is_empty());
    assert_eq!(d.handle_timeout(300), vec![read(&td1(), None)]);
    // A TD3 does not wait.
    assert_eq!(
        d.push(&encode(&td3(), None, &f), 1_000),
        vec![read(&td3(), None)]
    );
    // A CAN of the wrong length.
    let got = decode_all(&f, &encode(&td1(), Some("12345"), &f));
    assert_eq!(
        misread(&got),
        ["the card access number has 5 digits, expected 6"]
    );
    // The next document arriving before the gap ends the wait.
    let mut bytes = encode(&td1(), None, &f);
    bytes.extend(encode(&td3(), None, &f));
    assert_eq!(
        decode_all(&f, &bytes),
        vec![read(&td1(), None), read(&td3(), None)]
    );
    // Not set to read one: a CAN line is noise after a line-mode TD1.
    let plain = Framing::default();
    assert_eq!(
        decode_all(&plain, &encode(&td1(), Some("123456"), &plain)),
        vec![read(&td1(), None)]
    );
}

#[test]
fn the_can_in_a_stx_frame() {
    let f = Framing {
        stx_etx: true,
        checksum: Checksum::Xor,
        read_can: true,
        ..Framing::default()
    };
    assert_eq!(
        decode_all(&f, &encode(&td1(), Some("123456"), &f)),
        vec![read(&td1(), Some("123456"))]
    );
    assert_eq!(
        decode_all(&f, &encode(&td1(), None, &f)),
        vec![read(&td1(), None)]
    );
    assert_eq!(
        misread(&decode_all(&f, &encode(&td3(), Some("123456"), &f))),
        ["a card access number follows a TD2/TD3 MRZ"]
    );
}

#[test]
fn terminators_are_honoured() {
    let lines = td3();
    // "cr": LF alone does not end a line, so LF-separated lines run together.
    let cr = Framing {
        terminator: Terminator::Cr,
        ..Framing::default()
    };
    let lf_bytes = format!("{}\n{}\n", lines[0], lines[1]);
    let got = decode_all(&cr, lf_bytes.as_bytes());
    assert!(!got.contains(&read(&lines, None)), "{got:?}");
    // "crlf": a lone CR does not end a line either.
    let crlf = Framing {
        terminator: Terminator::Crlf,
        ..Framing::default()
    };
    let cr_bytes = format!("{}\r{}\r", lines[0], lines[1]);
    assert!(!decode_all(&crlf, cr_bytes.as_bytes()).contains(&read(&lines, None)));
    // "any" takes all three.
    for sep in ["\r", "\n", "\r\n"] {
        let b = format!("{}{sep}{}{sep}", lines[0], lines[1]);
        assert_eq!(
            decode_all(&Framing::default(), b.as_bytes()),
            vec![read(&lines, None)]
        );
    }
}

#[test]
fn an_unterminated_last_line_is_ended_by_the_gap() {
    let f = Framing::default();
    let b = format!("{}\r{}", td3()[0], td3()[1]);
    let mut d = MrzDecoder::new(f);
    assert!(d.push(b.as_bytes(), 0).is_empty());
    assert_eq!(d.handle_timeout(300), vec![read(&td3(), None)]);
}

#[test]
fn framing_deserializes_with_defaults_and_flattened() {
    let f: Framing = toml::from_str("").expect("empty");
    assert_eq!(f, Framing::default());
    assert_eq!(f.frame_gap_ms, 300);
    assert_eq!(f.terminator, Terminator::Any);
    let f: Framing = toml::from_str(
        "terminator = \"crlf\"\nstx_etx = true\nchecksum = \"xor\"\nread_can = true\nframe_gap_ms = 500",
    )
    .expect("all keys");
    assert_eq!(
        f,
        Framing {
            terminator: Terminator::Crlf,
            stx_etx: true,
            checksum: Checksum::Xor,
            read_can: true,
            frame_gap_ms: 500
        }
    );
    f.validate().expect("valid");
    assert!(toml::from_str::<Framing>("terminator = \"nul\"").is_err());
    assert!(toml::from_str::<Framing>("checksum = \"crc\"").is_err());

    // As the gate config embeds it: flattened next to the section's own keys.
    #[derive(serde::Deserialize, Debug)]
    struct Section {
        kind: String,
        port: Option<String>,
        baud: Option<u32>,
        #[serde(flatten)]
        framing: Framing,
    }
    let s: Section = toml::from_str(
        "kind = \"serial\"\nport = \"/dev/ttyACM0\"\nbaud = 115200\nterminator = \"cr\"\nread_can = true",
    )
    .expect("flattened");
    assert_eq!(s.kind, "serial");
    assert_eq!(s.port.as_deref(), Some("/dev/ttyACM0"));
    assert_eq!(s.baud, Some(115_200));
    assert_eq!(s.framing.terminator, Terminator::Cr);
    assert!(s.framing.read_can);
    assert_eq!(s.framing.frame_gap_ms, 300);
    assert!(toml::from_str::<Section>("kind = \"file\"\nterminator = \"tab\"").is_err());
}

#[test]
fn validation_names_the_field() {
    let f = Framing {
        checksum: Checksum::Xor,
        ..Framing::default()
    };
    assert_eq!(f.validate().expect_err("xor without stx").field, "checksum");
    let f = Framing {
        frame_gap_ms: 0,
        ..Framing::default()
    };
    let e = f.validate().expect_err("gap 0");
    assert_eq!(e.field, "frame_gap_ms");
    assert!(e.to_string().contains("frame_gap_ms"), "{e}");
    Framing::default().validate().expect("defaults are valid");
}

#[test]
fn specimen_formats() {
    assert_eq!(mrz_of(&td1()).format, MrzFormat::Td1);
    assert_eq!(mrz_of(&td2()).format, MrzFormat::Td2);
    assert_eq!(mrz_of(&td3()).format, MrzFormat::Td3);
}

fn arb_framing() -> impl Strategy<Value = Framing> {
    (
        prop_oneof![
            Just(Terminator::Cr),
            Just(Terminator::Lf),
            Just(Terminator::Crlf),
            Just(Terminator::Any)
        ],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u64..2_000,
    )
        .prop_map(
            |(terminator, stx_etx, xor, read_can, frame_gap_ms)| Framing {
                terminator,
                stx_etx,
                checksum: if xor && stx_etx {
                    Checksum::Xor
                } else {
                    Checksum::None
                },
                read_can,
                frame_gap_ms,
            },
        )
}

/// Noise without CR, LF or STX.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no terminator, no STX", |b| {
            !matches!(*b, b'\r' | b'\n' | STX)
        }),
        0..120,
    )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        f in arb_framing(),
        chunks in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..200), 0u64..1_000), 0..8),
    ) {
        let mut d = MrzDecoder::new(f);
        let mut now = 0u64;
        for (bytes, dt) in chunks {
            now += dt;
            for s in d.push(&bytes, now) {
                if let MrzScan::Misread(m) = s {
                    prop_assert!(!m.is_empty());
                }
            }
            if let Some(t) = d.poll_timeout() {
                prop_assert!(d.is_partial());
                if t <= now {
                    let _ = d.handle_timeout(now);
                }
            }
        }
        let _ = d.handle_timeout(u64::MAX);
        prop_assert!(!d.is_partial());
    }

    #[test]
    fn a_framed_mrz_in_noise_is_always_found(
        f in arb_framing(),
        which in 0usize..3,
        before in noise(),
        after in noise(),
        can in proptest::option::of("[0-9]{6}"),
    ) {
        let lines = [td1(), td2(), td3()][which].clone();
        let can = can.filter(|_| f.read_can && which == 0);
        let mut bytes = before;
        bytes.extend(encode(&lines, can.as_deref(), &f));
        if f.read_can && which == 0 && can.is_none() && !f.stx_etx {
            // Digits after a TD1 could be its CAN line (ended by the gap).
            bytes.push(b'#');
        }
        bytes.extend(after);
        let mut d = MrzDecoder::new(f.clone());
        let mut got = d.push(&bytes, 10);
        got.extend(d.handle_timeout(10 + f.frame_gap_ms));
        let want = read(&lines, can.as_deref());
        prop_assert!(got.contains(&want), "{:?}", got);
    }
}
