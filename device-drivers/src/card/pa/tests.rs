use super::pki::{self, load_test_pki, repo_test_pki_dir, CertSpec, Issued, SigningKey};
use super::*;
use crate::card::lds::persona::{DocumentKind, Persona, PersonaBuilder};
use crate::card::lds::{Dg15, Finger, LdsFile};
use hex_literal::hex;

fn test_pki() -> pki::TestPki {
    load_test_pki(&repo_test_pki_dir()).expect("checked-in test PKI loads")
}

fn trust() -> TrustStore {
    TrustStore::load_dir(&repo_test_pki_dir().join("csca")).expect("trust store loads")
}

fn now() -> SystemTime {
    pki::jan1(2026)
}

fn persona(ds: &Issued) -> Persona {
    PersonaBuilder::new(11).build(ds).unwrap()
}

fn sod(p: &Persona) -> &[u8] {
    p.file(LdsFile::Sod).unwrap()
}

#[test]
fn trust_store_loads_both_cscas() {
    let t = trust();
    assert_eq!(t.anchors().len(), 2);
}

#[test]
fn pa_valid_for_p256_persona() {
    let pki = test_pki();
    let p = persona(&pki.ds_p256);
    let r = verify(Some(sod(&p)), &p.data_groups(), Some(&trust()), now());
    assert_eq!(r.status, PaStatus::Valid, "{}", r.detail);
    assert_eq!(r.data_groups_verified, vec![1, 2, 14, 15]);
    assert_eq!(r.signature_scheme.as_deref(), Some("ECDSA-WITH-SHA256"));
    assert!(r.csca_subject.unwrap().contains("TEST CSCA P-256"));
}

#[test]
fn pa_valid_for_rsa_resident_card() {
    let pki = test_pki();
    let p = PersonaBuilder::new(5)
        .kind(DocumentKind::ResidentCard)
        .thumbs(vec![
            (Finger::RightThumb, vec![1, 2, 3]),
            (Finger::LeftThumb, vec![4, 5]),
        ])
        .build(&pki.ds_rsa)
        .unwrap();
    let r = verify(Some(sod(&p)), &p.data_groups(), Some(&trust()), now());
    assert_eq!(r.status, PaStatus::Valid, "{}", r.detail);
    assert!(r.data_groups_verified.contains(&3));
}

#[test]
fn pa_sha384_and_sha1_sods() {
    let pki = test_pki();
    for h in [
        HashAlg::Sha1,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sha224,
    ] {
        let p = PersonaBuilder::new(9).hash(h).build(&pki.ds_p256).unwrap();
        let s = Sod::parse(sod(&p)).unwrap();
        assert_eq!(s.lds.hash_algorithm, h);
        let r = verify(Some(sod(&p)), &p.data_groups(), Some(&trust()), now());
        assert_eq!(r.status, PaStatus::Valid, "{h:?}: {}", r.detail);
    }
}

#[test]
fn tampered_dg_is_invalid() {
    let pki = test_pki();
    let p = persona(&pki.ds_p256);
    let mut dgs = p.data_groups();
    let dg2 = dgs.get_mut(&2).unwrap();
    let n = dg2.len();
    dg2[n - 10] ^= 0x01;
    let r = verify(Some(sod(&p)), &dgs, Some(&trust()), now());
    assert_eq!(r.status, PaStatus::Invalid);
    assert_eq!(r.error, Some(PaError::HashMismatch { dg: 2 }));
    assert!(r.detail.contains("DG2"));
}

#[test]
fn dg_missing_from_sod_is_invalid() {
    let pki = test_pki();
    let p = persona(&pki.ds_p256);
    let mut dgs = p.data_groups();
    dgs.insert(11, vec![0x6B, 0x00]);
    let r = verify(Some(sod(&p)), &dgs, Some(&trust()), now());
    assert_eq!(r.error, Some(PaError::DataGroupNotInSod { dg: 11 }));
    assert_eq!(r.status, PaStatus::Invalid);
}

#[test]
fn tampered_lds_object_and_signature_are_invalid() {
    let pki = test_pki();
    let p = persona(&pki.ds_p256);
    let good = sod(&p).to_vec();
    let s = Sod::parse(&good).unwrap();
    // Change one byte of the DG1 hash inside the signed LDS security object.
    let h1 = s.lds.hashes.get(&1).unwrap().clone();
    let pos = good
        .windows(h1.len())
        .position(|w| w == h1.as_slice())
        .unwrap();
    let mut bad = good.clone();
    bad[pos] ^= 0x80;
    // The DG1 we present matches the altered hash? No: the hash check fails first.
    let r = verify(Some(&bad), &p.data_groups(), Some(&trust()), now());
    assert_eq!(r.status, PaStatus::Invalid);
    assert_eq!(r.error, Some(PaError::HashMismatch { dg: 1 }));
    // Without DG1, the messageDigest attribute catches the change.
    let mut dgs = p.data_groups();
    dgs.remove(&1);
    let r = verify(Some(&bad), &dgs, Some(&trust()), now());
    assert_eq!(r.error, Some(PaError::MessageDigestMismatch));
    // A flipped byte of the signature itself.
    let sig = s.signed_data.signature.clone();
    let pos = good
        .windows(sig.len())
        .position(|w| w == sig.as_slice())
        .unwrap();
    let mut bad = good.clone();
    bad[pos + sig.len() - 1] ^= 0x01;
    let r = verify(Some(&bad), &p.data_groups(), Some(&trust()), now());
    assert_eq!(r.status, PaStatus::Invalid);
    assert!(
        matches!(r.error, Some(PaError::BadSignature { .. })),
        "{:?}",
        r.error
    );
}

#[test]
fn wrong_csca_is_untrusted() {
    let pki = test_pki();
    let p = persona(&pki.ds_p256);
    // Only the RSA CSCA: nobody of the DS issuer's name.
    let mut only_rsa = TrustStore::new();
    only_rsa.add_der(&pki.csca_rsa.cert_der, "rsa").unwrap();
    let r = verify(Some(sod(&p)), &p.data_groups(), Some(&only_rsa), now());
    assert_eq!(r.status, PaStatus::Untrusted);
    assert!(matches!(r.error, Some(PaError::NoTrustAnchor { .. })));
    // An impostor CSCA with the same name but another key (and no key identifiers to help).
    let k = SigningKey::generate_p256();
    let spec = CertSpec {
        subject: pki::CSCA_P256_SUBJECT.into(),
        serial: 99,
        not_before: pki::jan1(2025),
        not_after: pki::jan1(2045),
        ca: true,
    };
    let impostor = pki::issue(&spec, &k, None).unwrap();
    let mut store = TrustStore::new();
    store.add_der(&impostor, "impostor").unwrap();
    // Different SKI: filtered by AKI → no anchor of that name+key id.
    let r = verify(Some(sod(&p)), &p.data_groups(), Some(&store), now());
    assert_eq!(r.status, PaStatus::Untrusted, "{}", r.detail);
}

#[test]
fn expired_and_not_yet_valid_certificates() {
    let pki = test_pki();
    let p = persona(&pki.ds_p256);
    // DS valid 2025..2040: in 2041 it has expired.
    let r = verify(
        Some(sod(&p)),
        &p.data_groups(),
        Some(&trust()),
        pki::jan1(2041),
    );
    assert_eq!(r.status, PaStatus::Invalid);
    match &r.error {
        Some(PaError::CertificateNotValid { which, .. }) => assert_eq!(which, "DS"),
        other => panic!("unexpected {other:?}"),
    }
    // CSCA (2025..2045) checked too: in 2046 the anchor itself is out of date.
    let r = verify(
        Some(sod(&p)),
        &p.data_groups(),
        Some(&trust()),
        pki::jan1(2046),
    );
    match &r.error {
        Some(PaError::CertificateNotValid { which, .. }) => assert_eq!(which, "CSCA"),
        other => panic!("unexpected {other:?}"),
    }
    let r = verify(
        Some(sod(&p)),
        &p.data_groups(),
        Some(&trust()),
        pki::jan1(2024),
    );
    assert_eq!(r.status, PaStatus::Invalid);
    assert!(r.detail.contains("not valid"), "{}", r.detail);
}

#[test]
fn not_checked_without_trust_store_or_sod() {
    let pki = test_pki();
    let p = persona(&pki.ds_p256);
    let r = verify(Some(sod(&p)), &p.data_groups(), None, now());
    assert_eq!(r.status, PaStatus::NotChecked);
    assert_eq!(r.data_groups_verified, vec![1, 2, 14, 15]);
    let r = verify(None, &p.data_groups(), Some(&trust()), now());
    assert_eq!(r.status, PaStatus::NotChecked);
    // Even without a trust store a tampered DG is reported.
    let mut dgs = p.data_groups();
    dgs.get_mut(&1).unwrap()[10] ^= 1;
    assert_eq!(
        verify(Some(sod(&p)), &dgs, None, now()).status,
        PaStatus::Invalid
    );
}

#[test]
fn status_serializes_as_contract_strings() {
    let s = |st| serde_json::to_string(&st).unwrap();
    assert_eq!(s(PaStatus::Valid), "\"valid\"");
    assert_eq!(s(PaStatus::Invalid), "\"invalid\"");
    assert_eq!(s(PaStatus::Untrusted), "\"untrusted\"");
    assert_eq!(s(PaStatus::NotChecked), "\"not_checked\"");
}

#[test]
fn every_sod_truncation_is_an_error() {
    let pki = test_pki();
    let p = persona(&pki.ds_p256);
    let good = sod(&p);
    assert!(Sod::parse(good).is_ok());
    for cut in 0..good.len() {
        assert!(Sod::parse(&good[..cut]).is_err(), "cut {cut}");
        let r = verify(Some(&good[..cut]), &p.data_groups(), Some(&trust()), now());
        assert_eq!(r.status, PaStatus::Invalid, "cut {cut}");
    }
}

#[test]
fn every_sod_byte_flip_is_caught() {
    // Flipping any single byte of EF.SOD never panics and never leaves the result valid:
    // every byte is either signed, or checked structure.
    let pki = test_pki();
    let p = persona(&pki.ds_p256);
    let good = sod(&p).to_vec();
    let dgs = p.data_groups();
    let store = trust();
    let mut valid_flips = 0;
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x55;
        let r = verify(Some(&b), &dgs, Some(&store), now());
        if r.status == PaStatus::Valid {
            eprintln!("flip at {i} left PA valid");
            valid_flips += 1;
        }
    }
    assert_eq!(valid_flips, 0);
}

#[test]
fn sod_decodes_with_independent_cms_crate() {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData as CmsSignedData;
    use der::Decode;
    let pki = test_pki();
    for ds in [&pki.ds_p256, &pki.ds_rsa] {
        let p = persona(ds);
        let ci_der = crate::card::lds::sod_content(sod(&p)).unwrap();
        let ci = ContentInfo::from_der(ci_der).unwrap();
        assert_eq!(ci.content_type, oids::SIGNED_DATA);
        let sd: CmsSignedData = ci.content.decode_as().unwrap();
        assert_eq!(
            sd.encap_content_info.econtent_type,
            oids::LDS_SECURITY_OBJECT
        );
        assert_eq!(sd.signer_infos.0.len(), 1);
        assert_eq!(sd.certificates.unwrap().0.len(), 1);
    }
}

#[test]
fn openssl_brainpool_signatures_verify() {
    // Key, message and signature made with OpenSSL 3 (`openssl dgst -sha256 -sign`):
    // cross-checks the bp256/bp384 arithmetic against an independent implementation.
    let msg = b"echannel brainpool cross-check";
    let bp256_spki = hex!("305a301406072a8648ce3d020106092b24030302080101070342000414764f4c36c26a704d46f85840e4ac1fda084adaf4e99bd9fb018f59b81e7d671aea4b3db29a8c816cd0be8ac9ad89278d2761593f046ae9b74c1f644247588c");
    let bp256_explicit = hex!("308201333081ec06072a8648ce3d02013081e0020101302c06072a8648ce3d0101022100a9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e5377304404207d5a0975fc2c3057eef67530417affe7fb8055c126dc5c6ce94a4b44f330b5d9042026dc5c6ce94a4b44f330b5d9bbd77cbf958416295cf7e1ce6bccdc18ff8c07b60441048bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f046997022100a9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a70201010342000414764f4c36c26a704d46f85840e4ac1fda084adaf4e99bd9fb018f59b81e7d671aea4b3db29a8c816cd0be8ac9ad89278d2761593f046ae9b74c1f644247588c");
    let bp256_sig = hex!("304502210095b2be405f2bf014e920f76b85615faa1fe6d21642522c040787aba8c8fd982e022016df6360ce22daf837e59f15b9a5128beb2d0a30f4586958077d14c568c4dd18");
    let bp384_spki = hex!("307a301406072a8648ce3d020106092b240303020801010b03620004522e94aca33845b2deba76d58d720386f3bae29109813ae4c7136ecdf661957d2e3db8fe5e4876e83e158ee05e90b0c2248075f1733412cada51fffd243aef468f33417934dbccd21e5cb646022d9727d4a1717a280214039121b457e6eaacf4");
    let bp384_sig = hex!("306402300421113c7686ff6446e17498f367ccd76b31b921cc8ea6b9bc9e847f57dd2667abb2b3a7c7a5cf7c26b9ff6a163eccc002302d0dde800651f7792972dbd2e188c681b91b9a88a02dc45449831a73427cec9b324026484f918258cbe04002effc59e7");
    let cases: [(&[u8], HashAlg, &[u8], Curve); 3] = [
        (
            &bp256_spki,
            HashAlg::Sha256,
            &bp256_sig,
            Curve::BrainpoolP256r1,
        ),
        (
            &bp256_explicit,
            HashAlg::Sha256,
            &bp256_sig,
            Curve::BrainpoolP256r1,
        ),
        (
            &bp384_spki,
            HashAlg::Sha384,
            &bp384_sig,
            Curve::BrainpoolP384r1,
        ),
    ];
    for (spki, h, sig, curve) in cases {
        let k = PublicKey::from_spki("test", spki).unwrap();
        assert!(matches!(&k, PublicKey::Ec { curve: c, .. } if *c == curve));
        assert_eq!(k.verify(SignatureScheme::Ecdsa(h), msg, sig, true), Ok(()));
        assert_eq!(
            k.verify(SignatureScheme::Ecdsa(h), b"another message", sig, true),
            Err(SignatureMismatch)
        );
    }
}

#[test]
fn brainpool_p256_reproduces_icao_g1_pace_arithmetic() {
    // ICAO 9303 Part 11 G.1: the mapped generator and the shared secret from the worked
    // example's private keys, computed with bp256.
    use bp256::elliptic_curve::ff::PrimeField;
    use bp256::elliptic_curve::point::AffineCoordinates;
    use bp256::r1::{ProjectivePoint, Scalar};
    let scalar = |h: [u8; 32]| Option::<Scalar>::from(Scalar::from_repr(h.into())).unwrap();
    let s = {
        let mut b = [0u8; 32];
        b[16..].copy_from_slice(&hex!("3F00C4D39D153F2B2A214A078D899B22"));
        scalar(b)
    };
    let term_map = scalar(hex!(
        "7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99"
    ));
    let chip_map = scalar(hex!(
        "498FF49756F2DC1587840041839A85982BE7761D14715FB091EFA7BCE9058560"
    ));
    let term_eph = scalar(hex!(
        "A73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595"
    ));
    let chip_eph = scalar(hex!(
        "107CF58696EF6155053340FD633392BA81909DF7B9706F226F32086C7AFF974A"
    ));
    let g = ProjectivePoint::GENERATOR;
    let h = (g * chip_map) * term_map;
    let mapped = g * s + h;
    assert_eq!(
        mapped.to_affine().x().as_slice(),
        hex!("8CED63C91426D4F0EB1435E7CB1D74A46723A0AF21C89634F65A9AE87A9265E2")
    );
    let shared = (mapped * chip_eph) * term_eph;
    assert_eq!(
        shared.to_affine().x().as_slice(),
        hex!("28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925")
    );
}

#[test]
fn openssl_rsa_pss_signature_verifies() {
    let spki = hex!("30819f300d06092a864886f70d010101050003818d0030818902818100dc2a365400e4d22ca4a354655fc633e667a88a2ff2e230477c895dbd4a45884ed7d3b1a1afd21cc30dc2d1420994ac47ad55d420221d1843ef5728496ddb47b1d44256529743518de7ccbe590606332d45549a516d6b1bea1d484fac837285290c5e1124b46a43998fdf50783561f8de20ca22c49c0adfac6e3212c2695de6cd0203010001");
    let sig = hex!("85cfa8de037e399b8a8f1f4c2bae8d854c665aa36ac21c9b15ae8548015400ed11412894e54aa321a141984e250eeb5915ad55218e00b5e8b23b7a4e2e78d1145f72ea46eb7b1c0532a58417a126b8f65f4878b9cc813a1a9e3d4ee69c1230751cbde1e2e6fdc3e54f89b2a384c13db7da40e16fa46cfb27abce28bc6f549c9c");
    let k = PublicKey::from_spki("test", &spki).unwrap();
    let scheme = SignatureScheme::RsaPss {
        hash: HashAlg::Sha256,
        salt_len: 32,
    };
    let msg = b"echannel brainpool cross-check";
    assert_eq!(k.verify(scheme, msg, &sig, true), Ok(()));
    assert_eq!(k.verify(scheme, b"x", &sig, true), Err(SignatureMismatch));
    assert_eq!(
        k.verify(SignatureScheme::RsaPkcs1(HashAlg::Sha256), msg, &sig, true),
        Err(SignatureMismatch)
    );
    // The PSS AlgorithmIdentifier round-trips through its parameters.
    let alg = scheme.algorithm_identifier();
    assert_eq!(
        SignatureScheme::from_algorithm_identifier(&alg, None).unwrap(),
        scheme
    );
}

#[test]
fn unknown_algorithms_are_named() {
    // md5WithRSAEncryption.
    let alg = hex!("300D06092A864886F70D0101040500");
    match SignatureScheme::from_algorithm_identifier(&alg, None) {
        Err(PaError::UnknownAlgorithm { oid, .. }) => assert_eq!(oid, "1.2.840.113549.1.1.4"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn iso9796_2_openssl_vector_verifies() {
    // RSA-1024 key; signature of 6A‖M1‖SHA1(M1‖challenge)‖BC made with OpenSSL raw RSA.
    let spki = hex!("30819f300d06092a864886f70d010101050003818d0030818902818100dc2a365400e4d22ca4a354655fc633e667a88a2ff2e230477c895dbd4a45884ed7d3b1a1afd21cc30dc2d1420994ac47ad55d420221d1843ef5728496ddb47b1d44256529743518de7ccbe590606332d45549a516d6b1bea1d484fac837285290c5e1124b46a43998fdf50783561f8de20ca22c49c0adfac6e3212c2695de6cd0203010001");
    let sig = hex!("ad81fa64c65cc082dedc4f5e0aee08921cf3df7105493fa6b54f67c0f26c567bf46329ece361cf759d18f4f606d94d9b0ae934844a8b4ef13af822059a581d13a1a2f201cf6ae874ed2e10c19ba572348f0b25267ed36ddf15caabdc529265685427551320653ef2e2ecfce0289c23a7208ef06a370c0738a4bccc9434f66d8d");
    let dg15 = Dg15 {
        public_key_info: spki.to_vec(),
    };
    let challenge = hex!("0102030405060708");
    assert_eq!(
        verify_active_authentication(&dg15, None, &challenge, &sig),
        Ok(())
    );
    let other = hex!("0102030405060709");
    assert_eq!(
        verify_active_authentication(&dg15, None, &other, &sig),
        Err(AaError::BadSignature)
    );
    let mut bad = sig;
    bad[5] ^= 1;
    assert!(verify_active_authentication(&dg15, None, &challenge, &bad).is_err());
    assert_eq!(
        verify_active_authentication(&dg15, None, &challenge[..7], &sig),
        Err(AaError::BadChallenge(7))
    );
}

#[test]
fn active_authentication_round_trips() {
    let pki = test_pki();
    // EC (persona's DG15 + DG14 algorithm).
    let p = persona(&pki.ds_p256);
    let dg15 = Dg15::parse(p.file(LdsFile::Dg(15)).unwrap()).unwrap();
    let alg = crate::card::lds::SecurityInfos::parse_dg14(p.file(LdsFile::Dg(14)).unwrap())
        .unwrap()
        .active_authentication_algorithm();
    let challenge = hex!("1122334455667788");
    let key = p.aa_key.as_ref().unwrap();
    let resp = sign_active_authentication(key, HashAlg::Sha256, &challenge, b"").unwrap();
    assert_eq!(resp.len(), 64);
    assert_eq!(
        verify_active_authentication(&dg15, alg, &challenge, &resp),
        Ok(())
    );
    assert_eq!(
        verify_active_authentication(&dg15, None, &challenge, &resp),
        Err(AaError::NoAlgorithm)
    );
    let mut other = challenge;
    other[0] ^= 1;
    assert_eq!(
        verify_active_authentication(&dg15, alg, &other, &resp),
        Err(AaError::BadSignature)
    );
    // RSA ISO 9796-2 with SHA-1 and SHA-256 trailers, using the test DS RSA key.
    let rsa_dg15 = Dg15 {
        public_key_info: pki.ds_rsa.key.public_key().to_spki(),
    };
    for h in [HashAlg::Sha1, HashAlg::Sha256] {
        let resp =
            sign_active_authentication(&pki.ds_rsa.key, h, &challenge, b"nonce-bytes").unwrap();
        assert_eq!(
            verify_active_authentication(&rsa_dg15, None, &challenge, &resp),
            Ok(())
        );
        assert_eq!(
            verify_active_authentication(&rsa_dg15, None, &other, &resp),
            Err(AaError::BadSignature)
        );
    }
}

#[test]
fn master_list_import() {
    let pki = test_pki();
    // A master-list signer issued by the P-256 CSCA, signing a list of both CSCAs.
    let k = SigningKey::generate_p256();
    let signer = Issued {
        cert_der: pki::issue(
            &CertSpec {
                subject: "CN=echannel TEST ML signer,O=echannel,C=UT".into(),
                serial: 50,
                not_before: pki::jan1(2025),
                not_after: pki::jan1(2035),
                ca: false,
            },
            &k,
            Some(&pki.csca_p256),
        )
        .unwrap(),
        key: k,
    };
    let mut certs = vec![
        pki.csca_p256.cert_der.clone(),
        pki.csca_rsa.cert_der.clone(),
    ];
    certs.sort();
    let list = tlv::encode_constructed(
        0x30,
        &[
            tlv::encode(0x02, &[0]),
            tlv::encode_constructed(0x31, &certs),
        ],
    );
    let ml = pki::sign_cms(&signer, HashAlg::Sha256, oids::CSCA_MASTER_LIST, &list).unwrap();
    let mut store = TrustStore::new();
    assert_eq!(store.import_master_list(&ml, "test.ml").unwrap(), 2);
    let p = persona(&pki.ds_rsa);
    let r = verify(Some(sod(&p)), &p.data_groups(), Some(&store), now());
    assert_eq!(r.status, PaStatus::Valid, "{}", r.detail);
    // A tampered list is refused.
    let mut bad = ml.clone();
    let n = bad.len();
    let pos = bad
        .windows(4)
        .rposition(|w| w == &certs[1][20..24])
        .unwrap_or(n / 2);
    bad[pos] ^= 1;
    assert!(TrustStore::new()
        .import_master_list(&bad, "bad.ml")
        .is_err());
    // A list whose signer is not issued by a listed CSCA is refused.
    let only_rsa = tlv::encode_constructed(
        0x30,
        &[
            tlv::encode(0x02, &[0]),
            tlv::encode_constructed(0x31, std::slice::from_ref(&pki.csca_rsa.cert_der)),
        ],
    );
    let ml = pki::sign_cms(&signer, HashAlg::Sha256, oids::CSCA_MASTER_LIST, &only_rsa).unwrap();
    assert!(TrustStore::new().import_master_list(&ml, "x.ml").is_err());
}

#[test]
fn trust_store_reads_pem_and_rejects_empty_dirs() {
    let pki = test_pki();
    let dir = std::env::temp_dir().join(format!("echannel-pa-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = pki.csca_p256.certificate().unwrap();
    use der::EncodePem;
    let pem = cert.to_pem(der::pem::LineEnding::LF).unwrap();
    std::fs::write(dir.join("a.pem"), pem).unwrap();
    std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
    let store = TrustStore::load_dir(&dir).unwrap();
    assert_eq!(store.anchors().len(), 1);
    std::fs::write(dir.join("broken.der"), [0x30, 0x03, 0x02, 0x01]).unwrap();
    assert!(matches!(
        TrustStore::load_dir(&dir),
        Err(PaError::Tlv { .. } | PaError::BadCertificate { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
    let empty = std::env::temp_dir().join(format!("echannel-pa-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        TrustStore::load_dir(&empty),
        Err(PaError::TrustStore { .. })
    ));
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn chip_mrz_versus_ocr() {
    let pki = test_pki();
    let p = Persona::specimen(&pki.ds_p256, None).unwrap();
    let chip = crate::card::lds::Dg1::parse(p.file(LdsFile::Dg(1)).unwrap())
        .unwrap()
        .mrz;
    let ocr = Mrz::parse(
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C<3UTO6908061F9406236ZE184226B<<<<<14",
    )
    .unwrap();
    assert!(compare_mrz(&chip, &ocr).equal);
    let mut other = ocr.clone();
    other.surname = "ERIKSON".into();
    other.date_of_birth = "690807".into();
    let c = compare_mrz(&chip, &other);
    assert!(!c.equal);
    assert_eq!(c.mismatched, vec!["surname", "date_of_birth"]);
    assert!(mrz_matches_key(
        &chip,
        &MrzKey::parse("L898902C,690806,940623").unwrap()
    ));
    assert!(!mrz_matches_key(
        &chip,
        &MrzKey::parse("L898902C,690806,940624").unwrap()
    ));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn random_sod_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let _ = Sod::parse(&data);
        let mut wrapped = vec![0x77, 0x82, (data.len() >> 8) as u8, data.len() as u8];
        wrapped.extend_from_slice(&data);
        let _ = Sod::parse(&wrapped);
        let _ = PublicKey::from_spki("fuzz", &data);
    }
}

#[test]
fn pa_valid_with_fresh_p384_chain() {
    let ck = SigningKey::generate_p384();
    let csca = Issued {
        cert_der: pki::issue(
            &CertSpec {
                subject: "CN=P-384 CSCA,C=UT".into(),
                serial: 1,
                not_before: pki::jan1(2025),
                not_after: pki::jan1(2040),
                ca: true,
            },
            &ck,
            None,
        )
        .unwrap(),
        key: ck,
    };
    let dk = SigningKey::generate_p384();
    let ds = Issued {
        cert_der: pki::issue(
            &CertSpec {
                subject: "CN=P-384 DS,C=UT".into(),
                serial: 2,
                not_before: pki::jan1(2025),
                not_after: pki::jan1(2030),
                ca: false,
            },
            &dk,
            Some(&csca),
        )
        .unwrap(),
        key: dk,
    };
    let p = PersonaBuilder::new(1)
        .hash(HashAlg::Sha384)
        .build(&ds)
        .unwrap();
    let mut store = TrustStore::new();
    store.add_der(&csca.cert_der, "p384").unwrap();
    let r = verify(Some(sod(&p)), &p.data_groups(), Some(&store), now());
    assert_eq!(r.status, PaStatus::Valid, "{}", r.detail);
    assert_eq!(r.signature_scheme.as_deref(), Some("ECDSA-WITH-SHA384"));
    // The P-256 test CSCA does not vouch for it.
    let r = verify(Some(sod(&p)), &p.data_groups(), Some(&trust()), now());
    assert_eq!(r.status, PaStatus::Untrusted);
}
