//! Self-contained codec tests: hand-built vectors, encode/parse round trips,
//! truncation at every length, arbitrary input never panicking.

use super::card::{encode_card, parse_card};
use super::iso2011::{CaptureDateTime, CertificationRecord, QualityRecord};
use super::record::{Core, CoreDelta, Delta, RidgeCountEdge, RidgeCounts};
use super::*;
use proptest::prelude::*;

/// A hand-assembled ISO 19794-2:2005 record: one view, two minutiae, no extended data.
fn hand_2005() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"FMR\0 20\0");
    v.extend_from_slice(&[0, 0, 0, 24 + 4 + 12 + 2]); // length 42
    v.extend_from_slice(&[0x10, 0x2a]); // compliance 1, equipment 0x02a
    v.extend_from_slice(&[0x01, 0x2c, 0x01, 0x90]); // 300 x 400
    v.extend_from_slice(&[0x00, 0xc5, 0x00, 0xc5]); // 197 px/cm
    v.extend_from_slice(&[1, 0]); // one view, reserved
    v.extend_from_slice(&[7, 0x12, 60, 2]); // left index, view 1, impression 2, quality 60, 2 minutiae
    v.extend_from_slice(&[0x40, 0x64, 0x00, 0x0e, 0x50, 0x5a]); // ending (100,14) angle 80 q 90
    v.extend_from_slice(&[0x80, 0x37, 0x01, 0x12, 0xff, 0x00]); // bifurcation (55,274) angle 255 q 0
    v.extend_from_slice(&[0, 0]); // no extended data
    v
}

#[test]
fn hand_built_2005_vector_decodes_field_by_field() {
    let bytes = hand_2005();
    let r = Iso2005Record::parse(&bytes).expect("valid");
    assert_eq!((r.equipment_compliance, r.equipment_id), (1, 0x2a));
    assert_eq!(
        (r.width, r.height, r.resolution_x, r.resolution_y),
        (300, 400, 197, 197)
    );
    let v = &r.views[0];
    assert_eq!(
        (v.position, v.view_number, v.impression_type, v.quality),
        (7, 1, 2, 60)
    );
    assert_eq!(
        v.minutiae,
        vec![
            RecordMinutia {
                kind: MinutiaKind::Ending,
                x: 100,
                y: 14,
                angle: 80,
                quality: 90
            },
            RecordMinutia {
                kind: MinutiaKind::Bifurcation,
                x: 55,
                y: 274,
                angle: 255,
                quality: 0
            },
        ]
    );
    assert_eq!(r.to_bytes().expect("encodes"), bytes);
    assert!(matches!(Record::parse(&bytes), Ok(Record::Iso2005(_))));
}

#[test]
fn defects_are_named() {
    let mut b = hand_2005();
    b[0] = b'X';
    assert!(matches!(
        Iso2005Record::parse(&b),
        Err(FormatError::BadMagic { .. })
    ));
    let mut b = hand_2005();
    b[5] = b'3';
    assert!(matches!(
        Iso2005Record::parse(&b),
        Err(FormatError::UnsupportedVersion { .. })
    ));
    let mut b = hand_2005();
    b.push(0);
    assert_eq!(
        Iso2005Record::parse(&b),
        Err(FormatError::LengthMismatch {
            declared: 42,
            actual: 43
        })
    );
    // Declared length fixed up, extra byte present: trailing data after the views.
    b[11] = 43;
    assert_eq!(
        Iso2005Record::parse(&b),
        Err(FormatError::TrailingBytes {
            offset: 42,
            count: 1
        })
    );
    // Reserved minutia type 11.
    let mut b = hand_2005();
    b[28] = 0xc0;
    assert_eq!(
        Iso2005Record::parse(&b),
        Err(FormatError::InvalidValue {
            offset: 28,
            field: "minutia type",
            value: 3
        })
    );
    // Minutiae count larger than the data: truncated inside the minutiae.
    let mut b = hand_2005();
    b[27] = 3;
    let e = Iso2005Record::parse(&b).expect_err("count overruns");
    assert!(
        matches!(
            e,
            FormatError::Truncated {
                offset: 42,
                field: "minutia y",
                ..
            }
        ),
        "{e}"
    );
    // Extended data length larger than what is left.
    let mut b = hand_2005();
    b[41] = 9;
    assert!(matches!(
        Iso2005Record::parse(&b),
        Err(FormatError::BadLength { offset: 40, .. })
    ));
}

fn rich_2005() -> Iso2005Record {
    let mut r = Iso2005Record::parse(&hand_2005()).expect("valid");
    r.views[0].extended = vec![
        ExtendedBlock::RidgeCounts(RidgeCounts {
            method: 1,
            edges: vec![RidgeCountEdge {
                from: 0,
                to: 1,
                count: 7,
            }],
            trailing: vec![],
        }),
        ExtendedBlock::CoreDelta(CoreDelta {
            cores: vec![
                Core {
                    x: 150,
                    y: 200,
                    angle: Some(64),
                },
                Core {
                    x: 10,
                    y: 20,
                    angle: None,
                },
            ],
            deltas: vec![Delta {
                x: 90,
                y: 300,
                angles: Some([1, 2, 3]),
            }],
        }),
        ExtendedBlock::Other {
            type_id: 0x0221,
            data: vec![1, 2, 3, 4, 5, 6],
        },
    ];
    let mut second = r.views[0].clone();
    second.view_number = 0;
    second.position = 2;
    r.views.insert(0, second);
    r
}

fn rich_2011() -> Iso2011Record {
    let base = Template::from_bytes(&hand_2005())
        .expect("template")
        .to_iso2011();
    let mut rep = base.representations[0].clone();
    rep.capture_datetime = CaptureDateTime {
        year: 2026,
        month: 11,
        day: 26,
        hour: 18,
        minute: 30,
        second: 5,
        millisecond: 250,
    };
    rep.quality_records = vec![QualityRecord {
        score: 77,
        vendor: 0xabcd,
        algorithm: 0x0123,
    }];
    rep.certifications = vec![CertificationRecord {
        authority: 0x0101,
        scheme: 2,
    }];
    rep.extended = rich_2005().views[1].extended.clone();
    let mut rep2 = rep.clone();
    rep2.representation_number = 1;
    rep2.minutia_quality = false;
    for m in &mut rep2.minutiae {
        m.quality = 0;
    }
    Iso2011Record {
        certification_flag: true,
        representations: vec![rep, rep2],
    }
}

#[test]
fn iso2005_round_trip_with_extended_blocks_and_views() {
    let r = rich_2005();
    let bytes = r.to_bytes().expect("encodes");
    assert_eq!(Iso2005Record::parse(&bytes).expect("parses"), r);
    assert_eq!(Record::parse(&bytes).expect("detects"), Record::Iso2005(r));
}

#[test]
fn iso2011_round_trip_with_certification_blocks() {
    let r = rich_2011();
    let bytes = r.to_bytes().expect("encodes");
    assert_eq!(Iso2011Record::parse(&bytes).expect("parses"), r);
    assert_eq!(
        Record::parse(&bytes).expect("detects"),
        Record::Iso2011(r.clone())
    );
    // The same record without the flag cannot carry certification records.
    let mut no_flag = r;
    no_flag.certification_flag = false;
    assert!(matches!(
        no_flag.to_bytes(),
        Err(FormatError::Unencodable { .. })
    ));
}

/// ANSI 378-2004 bytes built from the ISO 2005 encoding: 2-byte length,
/// CBEFF product id, extended block lengths counting their header.
fn hand_ansi2004() -> Vec<u8> {
    let iso = hand_2005();
    let mut v = Vec::new();
    v.extend_from_slice(b"FMR\0 20\0");
    let body = &iso[12..];
    let len = (8 + 2 + 4 + body.len()) as u16;
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[0x00, 0x42, 0x00, 0x11]);
    v.extend_from_slice(body);
    v
}

#[test]
fn ansi2004_reads_and_converts_angles() {
    let b = hand_ansi2004();
    let Ok(Record::Ansi2004(r)) = Record::parse(&b) else {
        panic!("ANSI 2004 detected")
    };
    assert_eq!(
        (r.vendor_id, r.subformat, r.equipment_id),
        (0x42, 0x11, 0x2a)
    );
    let t = Template::from_bytes(&b).expect("template");
    // 80 units of 2 degrees = 160 degrees = 113.8 -> 114 in 1/256 turn.
    assert_eq!(t.minutiae[0].angle, 114);
    assert_eq!(
        t.minutiae[1].angle,
        ((255u32 * 512 + 180) / 360 % 256) as u8
    );
}

#[test]
fn truncation_at_every_length_is_an_error_never_a_panic() {
    let records = vec![
        hand_2005(),
        rich_2005().to_bytes().expect("2005"),
        rich_2011().to_bytes().expect("2011"),
        hand_ansi2004(),
    ];
    for full in records {
        assert!(Record::parse(&full).is_ok());
        for cut in 0..full.len() {
            let r = Record::parse(&full[..cut]);
            assert!(r.is_err(), "prefix of {cut} bytes accepted");
            assert!(!r.unwrap_err().to_string().is_empty());
        }
    }
}

#[test]
fn card_formats_round_trip_and_reject_partial_minutiae() {
    let t = Template::from_bytes(&hand_2005()).expect("template");
    let normal = t.to_card(CardFormat::Normal).expect("normal");
    assert_eq!(normal.len(), 10);
    // 100 px at 197 px/cm = 5.076 mm = 508 units of 0.01 mm.
    assert_eq!(
        &normal[..2],
        &[0x40 | (508u16 >> 8) as u8, (508 & 0xff) as u8]
    );
    let back = Template::from_card(&normal, CardFormat::Normal).expect("parses");
    assert_eq!(back.minutiae[0].angle, 80);
    assert_eq!(back.minutiae[1].kind, MinutiaKind::Bifurcation);
    let compact = t.to_card(CardFormat::Compact).expect("compact");
    assert_eq!(compact, vec![51, 7, 0x40 | 20, 28, 139, 0x80]);
    let cm = parse_card(&compact, CardFormat::Compact).expect("parses");
    assert_eq!(
        encode_card(&cm, CardFormat::Compact).expect("encodes"),
        compact
    );
    assert!(matches!(
        parse_card(&compact[..5], CardFormat::Compact),
        Err(FormatError::BadLength { .. })
    ));
    assert!(parse_card(&[0xc0, 0, 0, 0, 0], CardFormat::Normal).is_err());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Record::parse(&data);
        let _ = Template::from_bytes(&data);
        let _ = parse_card(&data, CardFormat::Normal);
        let _ = parse_card(&data, CardFormat::Compact);
    }

    #[test]
    fn header_then_garbage_never_panics(
        magic in prop_oneof![Just(b"FMR\0 20\0".to_vec()), Just(b"FMR\x00030\x00".to_vec()), Just(b"FMR\x00020\x00".to_vec())],
        rest in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut d = magic;
        d.extend(rest);
        let _ = Record::parse(&d);
    }

    #[test]
    fn templates_round_trip_through_2005_and_2011(
        ms in proptest::collection::vec((0u16..0x3fff, 0u16..0x3fff, any::<u8>(), 0u8..3, 0u8..=100), 0..80),
    ) {
        let t = Template {
            width: 500, height: 500, resolution_x: 197, resolution_y: 197, position: 1, quality: 50,
            minutiae: ms.iter().map(|&(x, y, angle, k, quality)| Minutia {
                x, y, angle, quality,
                kind: [MinutiaKind::Other, MinutiaKind::Ending, MinutiaKind::Bifurcation][usize::from(k)],
            }).collect(),
        };
        let b5 = t.to_iso2005_bytes().expect("2005");
        prop_assert_eq!(&Template::from_bytes(&b5).expect("parse 2005"), &t);
        let b11 = t.to_iso2011().to_bytes().expect("2011");
        let t11 = Template::from_bytes(&b11).expect("parse 2011");
        prop_assert_eq!(t11.minutiae, t.minutiae);
    }
}
