use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 3711 Appendix B.3: key derivation.
#[test]
fn rfc3711_b3_key_derivation() {
    let master = MasterKey::new(
        SrtpProfile::Aes128CmHmacSha1_80,
        &hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
        &hex("0EC675AD498AFEEBB6960B3AABE6"),
    )
    .unwrap();
    let mut enc = [0u8; 16];
    derive(&master, LABEL_RTP_ENC, &mut enc);
    assert_eq!(enc.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut salt = [0u8; 14];
    derive(&master, LABEL_RTP_SALT, &mut salt);
    assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 20];
    derive(&master, LABEL_RTP_AUTH, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

/// RFC 3711 Appendix B.2: AES-CM keystream for SSRC 0, index 0.
#[test]
fn rfc3711_b2_keystream() {
    let cipher = Aes128::new_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
    let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
    let iv = cm_iv(&salt, 0, 0);
    assert_eq!(iv.to_vec(), hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
    let mut ks = [0u8; 48];
    aes_cm_xor(&cipher, iv, &mut ks);
    assert_eq!(
        ks.to_vec(),
        hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
    );
}

/// RFC 7714 §16.1.1: AEAD_AES_128_GCM with the session key and salt given directly.
#[test]
fn rfc7714_gcm128_vector() {
    let plain = hex("8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976 69736120 696e2070 61727465 73207472 6573");
    let expected = hex(
        "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f 42a5f47a \
         51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce",
    );
    let salt: [u8; 12] = hex("517569642070726f2071756f").try_into().unwrap();
    let keys = || Keys::Gcm128 {
        aead: Box::new(
            Aes128Gcm::new_from_slice(&hex("000102030405060708090a0b0c0d0e0f")).unwrap(),
        ),
        salt,
    };
    let mk = |k| SrtpContext {
        profile: SrtpProfile::AeadAes128Gcm,
        rtp: k,
        rtcp: keys(),
        rtp_streams: Streams::default(),
        rtcp_streams: Streams::default(),
    };
    let mut p = plain.clone();
    mk(keys()).protect_rtp(&mut p).unwrap();
    assert_eq!(p, expected);
    mk(keys()).unprotect_rtp(&mut p).unwrap();
    assert_eq!(p, plain);
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(200);
    p.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 160]);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160).map(|i| i as u8));
    p
}

fn pairs() -> Vec<(SrtpContext, SrtpContext)> {
    [
        SrtpProfile::Aes128CmHmacSha1_80,
        SrtpProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
    ]
    .into_iter()
    .map(|p| {
        let material: Vec<u8> = (0..2 * (p.key_len() + p.salt_len()))
            .map(|i| (i * 13 + 5) as u8)
            .collect();
        let (client, _server) = MasterKey::from_dtls_export(p, &material).unwrap();
        (SrtpContext::new(&client), SrtpContext::new(&client))
    })
    .collect()
}

#[test]
fn rtp_round_trip_across_rollover_with_replay_check() {
    for (mut tx, mut rx) in pairs() {
        for seq in [65533u16, 65534, 65535, 0, 1, 2] {
            let plain = rtp(seq, 0xcafe_babe);
            let mut p = plain.clone();
            tx.protect_rtp(&mut p).unwrap();
            assert_eq!(p.len(), plain.len() + tx.profile().rtp_overhead());
            assert_ne!(p[12..172], plain[12..]);
            let replay = p.clone();
            rx.unprotect_rtp(&mut p).unwrap();
            assert_eq!(p, plain, "{:?} seq {seq}", tx.profile());
            assert_eq!(
                rx.unprotect_rtp(&mut replay.clone()),
                Err(Error::PeerMisbehaved(PeerMisbehaved::SrtpReplay)),
                "{:?}",
                tx.profile()
            );
        }
    }
}

#[test]
fn out_of_order_within_window_is_accepted_once_and_old_is_rejected() {
    let (mut tx, mut rx) = pairs().remove(0);
    let mut pkts: Vec<Vec<u8>> = (0..100u16)
        .map(|s| {
            let mut p = rtp(s, 1);
            tx.protect_rtp(&mut p).unwrap();
            p
        })
        .collect();
    rx.unprotect_rtp(&mut pkts[99].clone()).unwrap();
    rx.unprotect_rtp(&mut pkts[50].clone()).unwrap(); // 49 behind: inside the window
    assert!(rx.unprotect_rtp(&mut pkts[50].clone()).is_err());
    assert_eq!(
        rx.unprotect_rtp(&mut pkts[10]),
        Err(Error::PeerMisbehaved(PeerMisbehaved::SrtpReplay)) // 89 behind: too old
    );
}

#[test]
fn tampering_and_wrong_key_are_detected() {
    for (mut tx, mut rx) in pairs() {
        let mut p = rtp(10, 7);
        tx.protect_rtp(&mut p).unwrap();
        let mut bad = p.clone();
        bad[20] ^= 1;
        assert_eq!(
            rx.unprotect_rtp(&mut bad),
            Err(Error::PeerMisbehaved(PeerMisbehaved::SrtpAuthFailed))
        );
        // The failed packet did not advance the replay state: the genuine one passes.
        rx.unprotect_rtp(&mut p).unwrap();
    }
    let p = SrtpProfile::Aes128CmHmacSha1_80;
    let a = MasterKey::new(p, &[1; 16], &[2; 14]).unwrap();
    let b = MasterKey::new(p, &[1; 16], &[3; 14]).unwrap();
    let mut pkt = rtp(1, 1);
    SrtpContext::new(&a).protect_rtp(&mut pkt).unwrap();
    assert!(SrtpContext::new(&b).unprotect_rtp(&mut pkt).is_err());
}

#[test]
fn rtcp_round_trip_and_replay() {
    for (mut tx, mut rx) in pairs() {
        // A receiver report: V=2, RC=0, PT=201, length 1, SSRC.
        let plain = vec![0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        for _ in 0..3 {
            let mut p = plain.clone();
            tx.protect_rtcp(&mut p).unwrap();
            let replay = p.clone();
            rx.unprotect_rtcp(&mut p).unwrap();
            assert_eq!(p, plain, "{:?}", tx.profile());
            assert!(rx.unprotect_rtcp(&mut replay.clone()).is_err());
        }
        let mut p = plain.clone();
        tx.protect_rtcp(&mut p).unwrap();
        let n = p.len();
        p[n - 1] ^= 0x40;
        assert_eq!(
            rx.unprotect_rtcp(&mut p),
            Err(Error::PeerMisbehaved(PeerMisbehaved::SrtpAuthFailed))
        );
    }
}

#[test]
fn dtls_export_split_and_sdes_inline() {
    let p = SrtpProfile::Aes128CmHmacSha1_80;
    let material: Vec<u8> = (0..60u8).collect();
    let (c, s) = MasterKey::from_dtls_export(p, &material).unwrap();
    assert_eq!(c.key(), &material[0..16]);
    assert_eq!(s.key(), &material[16..32]);
    assert_eq!(c.salt(), &material[32..46]);
    assert_eq!(s.salt(), &material[46..60]);
    let inline = c.to_sdes_inline();
    assert_eq!(MasterKey::from_sdes_inline(p, &inline).unwrap(), c);
    // RFC 4568 §9.1's example key-params (with a lifetime).
    let k = MasterKey::from_sdes_inline(p, "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20")
        .unwrap();
    assert_eq!(k.key().len(), 16);
    assert_eq!(
        base64_encode(&[k.key(), k.salt()].concat()),
        "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
    );
    assert!(MasterKey::from_sdes_inline(
        p,
        "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4"
    )
    .is_err());
    assert!(MasterKey::from_sdes_inline(p, "inline:AAAA").is_err());
    assert_eq!(
        SrtpProfile::from_sdes_name("AES_CM_128_HMAC_SHA1_80"),
        Some(p)
    );
}

#[test]
fn generated_keys_differ_and_round_trip_through_sdes() {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    for p in [SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes256Gcm] {
        let a = MasterKey::generate(p, &mut rng);
        let b = MasterKey::generate(p, &mut rng);
        assert_ne!(a, b);
        assert_eq!((a.key().len(), a.salt().len()), (p.key_len(), p.salt_len()));
        assert_eq!(
            MasterKey::from_sdes_inline(p, &a.to_sdes_inline()).unwrap(),
            a
        );
        assert!(
            !format!("{a:?}").contains(&format!("{:?}", a.key())),
            "Debug hides the key"
        );
    }
}
