use super::*;
use hex_literal::hex;

#[test]
fn card_access_g1() {
    let ca = hex!("31143012060A04007F0007020204020202010202010D");
    let infos = SecurityInfos::parse_card_access(&ca).unwrap();
    let pace = infos.pace();
    assert_eq!(pace.len(), 1);
    let p = pace[0];
    assert_eq!(p.protocol.name(), "PACE-ECDH-GM-AES-128");
    assert_eq!(p.protocol.key_agreement, KeyAgreement::Ecdh);
    assert_eq!(p.protocol.mapping, Mapping::Generic);
    assert_eq!(p.protocol.cipher, Cipher::Aes128);
    assert_eq!(p.version, 2);
    assert_eq!(p.parameter_id, Some(13));
    assert_eq!(p.domain(), Some(StandardizedDomain::BrainpoolP256r1));
    assert_eq!(infos.encode(), ca.to_vec());
}

#[test]
fn card_access_truncations_never_panic() {
    let ca = hex!("31143012060A04007F0007020204020202010202010D");
    for cut in 0..ca.len() {
        assert!(SecurityInfos::parse_card_access(&ca[..cut]).is_err());
    }
}

#[test]
fn pace_oids_round_trip() {
    for ka in [1u32, 2, 3, 4, 6] {
        for c in 1..=4 {
            let o = oid::PACE.push_arc(ka).unwrap().push_arc(c).unwrap();
            let p = PaceProtocol::from_oid(&o).unwrap();
            assert_eq!(p.oid(), o);
        }
    }
    assert!(PaceProtocol::from_oid(&oid::PACE).is_none());
    assert!(PaceProtocol::from_oid(&oid::PACE.push_arc(5).unwrap().push_arc(1).unwrap()).is_none());
}

#[test]
fn ef_com_specimen() {
    // ICAO 9303 Part 10 example: LDS 1.7, Unicode 4.0.0, DG1 and DG2.
    let data = hex!("60 14 5F01 04 30313037 5F36 06 303430303030 5C 02 6175");
    let com = EfCom::parse(&data).unwrap();
    assert_eq!(com.lds_version, "0107");
    assert_eq!(com.unicode_version, "040000");
    assert_eq!(com.data_groups, vec![1, 2]);
    assert_eq!(com.encode(), data.to_vec());
    let bad = hex!("60 14 5F01 04 30313037 5F36 06 303430303030 5C 02 6199");
    assert!(matches!(
        EfCom::parse(&bad),
        Err(LdsError::Structure { offset: 21, .. })
    ));
}

#[test]
fn dg1_specimen_round_trip() {
    let mrz =
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C<3UTO6908061F9406236ZE184226B<<<<<14";
    let data = tlv::encode_constructed(0x61, &[tlv::encode(0x5F1F, mrz.as_bytes())]);
    let dg1 = Dg1::parse(&data).unwrap();
    assert_eq!(dg1.mrz.document_number, "L898902C");
    assert_eq!(dg1.encode().unwrap(), data);
    // A flipped MRZ byte is caught by the check digits.
    let mut bad = data.clone();
    let n = bad.len();
    bad[n - 3] = b'9';
    assert!(matches!(Dg1::parse(&bad), Err(LdsError::Mrz(_))));
}

fn face() -> FacialRecord {
    FacialRecord {
        version: *b"010\0",
        images: vec![FaceImage {
            gender: 2,
            eye_colour: 1,
            hair_colour: 2,
            property_mask: 0x000001,
            expression: 1,
            pose_angles: [0, 0, 0],
            pose_uncertainty: [0, 0, 0],
            feature_points: vec![[1, 2, 3, 4, 5, 6, 7, 8]],
            face_image_type: 1,
            image_data_type: 0,
            width: 480,
            height: 640,
            colour_space: 1,
            source_type: 2,
            device_type: 0,
            quality: 0,
            image: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9],
        }],
    }
}

#[test]
fn dg2_round_trip_and_header() {
    let rec = face();
    let dg2 = Dg2::from_face(&rec);
    let enc = dg2.encode();
    let back = Dg2::parse(&enc).unwrap();
    assert_eq!(back, dg2);
    assert_eq!(back.templates[0].header.format_type, FORMAT_TYPE_FACE);
    let faces = back.faces().unwrap();
    assert_eq!(faces[0], rec);
    assert_eq!(faces[0].images[0].width, 480);
    // The 19794-5 record starts with FAC\0 and declares its own length.
    let raw = rec.encode();
    assert_eq!(&raw[..4], b"FAC\0");
    assert_eq!(
        u32::from_be_bytes(raw[8..12].try_into().unwrap()) as usize,
        raw.len()
    );
}

#[test]
fn dg2_structural_errors() {
    let rec = face();
    let mut raw = rec.encode();
    raw[0] = b'X';
    assert!(FacialRecord::parse(&raw).is_err());
    let raw = rec.encode();
    for cut in 0..raw.len() {
        assert!(FacialRecord::parse(&raw[..cut]).is_err());
    }
    let enc = Dg2::from_face(&rec).encode();
    for cut in 0..enc.len() {
        assert!(Dg2::parse(&enc[..cut]).is_err());
    }
}

#[test]
fn dg3_round_trip() {
    let dg3 = Dg3 {
        fingers: vec![
            (Finger::RightThumb, b"FMR\0 020 right".to_vec()),
            (Finger::LeftThumb, b"FMR\0 020 left".to_vec()),
        ],
    };
    let enc = dg3.encode();
    assert_eq!(enc[0], 0x63);
    let back = Dg3::parse(&enc).unwrap();
    assert_eq!(back, dg3);
    for cut in 0..enc.len() {
        assert!(Dg3::parse(&enc[..cut]).is_err());
    }
}

#[test]
fn dg3_count_mismatch_is_reported() {
    let dg3 = Dg3 {
        fingers: vec![(Finger::RightThumb, vec![1, 2, 3])],
    };
    let mut enc = dg3.encode();
    // Patch the instance count (02 01 01) to 2.
    let pos = enc
        .windows(3)
        .position(|w| w == [0x02, 0x01, 0x01])
        .unwrap();
    enc[pos + 2] = 2;
    assert!(matches!(Dg3::parse(&enc), Err(LdsError::Structure { .. })));
}

#[test]
fn dg14_and_dg15_round_trip() {
    let infos = SecurityInfos {
        infos: vec![
            SecurityInfo::Pace(PaceInfo {
                protocol: PaceProtocol {
                    key_agreement: KeyAgreement::Ecdh,
                    mapping: Mapping::Generic,
                    cipher: Cipher::Aes256,
                },
                version: 2,
                parameter_id: Some(12),
            }),
            SecurityInfo::ActiveAuthentication {
                version: 1,
                signature_algorithm: oid::ECDSA_PLAIN_SHA256,
            },
            SecurityInfo::TerminalAuthentication { version: 1 },
        ],
    };
    let enc = infos.encode_dg14();
    let back = SecurityInfos::parse_dg14(&enc).unwrap();
    assert_eq!(back.infos.len(), 3);
    for i in &infos.infos {
        assert!(back.infos.contains(i));
    }
    assert_eq!(
        back.active_authentication_algorithm(),
        Some(oid::ECDSA_PLAIN_SHA256)
    );
    let dg15 = Dg15 {
        public_key_info: hex!("3003 0201 05").to_vec(),
    };
    assert_eq!(Dg15::parse(&dg15.encode()).unwrap(), dg15);
    assert!(Dg15::parse(&hex!("6F 03 040105")).is_err());
}

#[test]
fn file_ids() {
    assert_eq!(LdsFile::Dg(1).fid(), 0x0101);
    assert_eq!(LdsFile::Dg(15).sfi(), 15);
    assert_eq!(LdsFile::from_fid(0x011D), Some(LdsFile::Sod));
    assert_eq!(LdsFile::Dg(2).tag(), 0x75);
    assert_eq!(dg_number(0x6F), Some(15));
    assert_eq!(dg_tag(0), None);
    assert_eq!(dg_tag(17), None);
}
