//! Properties of the voucher and header codecs: everything round-trips, any
//! single changed byte is refused, and no input makes a parser panic.

use amp_sdk::decimal;
use amp_sdk::headers::{Credential, Header, Receipt};
use amp_sdk::keypair;
use amp_sdk::manifest::{ErrorBody, Manifest};
use amp_sdk::voucher::{self, SignedVoucher, Voucher, VoucherSigner, VOUCHER_LEN};
use anchor_lang::prelude::Pubkey;
use ed25519_dalek::SigningKey;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

/// Mostly arbitrary, with the edges that break codecs drawn often.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX), 0..10_000u64, any::<u64>()]
}

fn edgy_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0),
        Just(-1),
        Just(i64::MIN),
        Just(i64::MAX),
        0..2_000_000_000i64,
        any::<i64>()
    ]
}

prop_compose! {
    fn arb_voucher()(
        lane in any::<[u8; 32]>(),
        generation in edgy_u64(),
        seq in edgy_u64(),
        cumulative in edgy_u64(),
        expires_at in edgy_i64(),
    ) -> Voucher {
        Voucher { lane: Pubkey::new_from_array(lane), generation, seq, cumulative, expires_at }
    }
}

prop_compose! {
    fn arb_signed()(secret in any::<[u8; 32]>(), voucher in arb_voucher())
        -> (Pubkey, SignedVoucher) {
        let key = SigningKey::from_bytes(&secret);
        (key.voucher_pubkey(), SignedVoucher::sign(&key, voucher))
    }
}

fn credential_headers(signed: &SignedVoucher) -> HeaderMap {
    let mut map = HeaderMap::new();
    Credential::from(*signed).write(&mut map);
    map
}

proptest! {
    #[test]
    fn vouchers_round_trip_and_verify((signer, signed) in arb_signed()) {
        let bytes = signed.voucher.to_bytes();
        prop_assert_eq!(voucher::decode(&bytes), Ok(signed.voucher));
        prop_assert_eq!(signed.verify(&signer), Ok(()));
        prop_assert_eq!(voucher::verify_bytes(&signer, &bytes, &signed.signature), Ok(signed.voucher));
    }

    #[test]
    fn any_changed_voucher_byte_is_refused(
        (signer, signed) in arb_signed(),
        at in 0..VOUCHER_LEN,
        mask in 1..=255u8,
    ) {
        let mut bytes = signed.voucher.to_bytes();
        bytes[at] ^= mask;
        prop_assert!(voucher::verify_bytes(&signer, &bytes, &signed.signature).is_err());
    }

    #[test]
    fn any_changed_signature_byte_is_refused(
        (signer, signed) in arb_signed(),
        at in 0..64usize,
        mask in 1..=255u8,
    ) {
        let mut tampered = signed;
        tampered.signature[at] ^= mask;
        prop_assert!(tampered.verify(&signer).is_err());
    }

    #[test]
    fn any_changed_signer_byte_is_refused(
        (signer, signed) in arb_signed(),
        at in 0..32usize,
        mask in 1..=255u8,
    ) {
        let mut other = signer.to_bytes();
        other[at] ^= mask;
        prop_assert!(signed.verify(&Pubkey::new_from_array(other)).is_err());
    }

    #[test]
    fn credentials_round_trip_and_verify((signer, signed) in arb_signed()) {
        let map = credential_headers(&signed);
        let credential = Credential::from_headers(&map).unwrap();
        prop_assert_eq!(credential, Credential::from(signed));
        prop_assert_eq!(credential.verify(&signer, signed.voucher.generation), Ok(signed));
        // Every value is in its one canonical spelling: re-writing is identity.
        let mut again = HeaderMap::new();
        credential.write(&mut again);
        prop_assert_eq!(again, map);
    }

    #[test]
    fn any_changed_header_byte_is_refused(
        (signer, signed) in arb_signed(),
        which in 0..Header::CREDENTIAL.len(),
        at in any::<prop::sample::Index>(),
        mask in 1..=255u8,
    ) {
        let mut map = credential_headers(&signed);
        let header = Header::CREDENTIAL[which];
        // AMP-Expires is absent when 0; nothing to change then.
        let Some(value) = map.get(header.name()) else { return Ok(()) };
        let mut bytes = value.as_bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] ^= mask;
        // Bytes HTTP cannot carry never reach a parser.
        let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        map.insert(header.name(), value);
        let accepted = Credential::from_headers(&map)
            .ok()
            .and_then(|c| c.verify(&signer, signed.voucher.generation).ok());
        prop_assert!(accepted.is_none(), "{header} changed to {bytes:?} was accepted");
    }

    #[test]
    fn a_wrong_generation_never_verifies((signer, signed) in arb_signed(), delta in 1..=u64::MAX) {
        let credential = Credential::from(signed);
        let generation = signed.voucher.generation.wrapping_add(delta);
        prop_assert!(credential.verify(&signer, generation).is_err());
    }

    #[test]
    fn receipts_round_trip(owed in edgy_u64(), remaining in edgy_u64()) {
        let receipt = Receipt { owed, remaining };
        let mut map = HeaderMap::new();
        receipt.write(&mut map);
        prop_assert_eq!(Receipt::from_headers(&map), Ok(receipt));
    }

    #[test]
    fn header_parsers_never_panic(
        (_, signed) in arb_signed(),
        which in 0..7usize,
        raw in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            "[-+0-9A-Za-z]{0,100}".prop_map(String::into_bytes),
        ],
        duplicate in any::<bool>(),
    ) {
        let header = Header::CREDENTIAL
            .into_iter()
            .chain([Header::Owed, Header::Remaining])
            .nth(which)
            .unwrap();
        let Ok(value) = HeaderValue::from_bytes(&raw) else { return Ok(()) };
        let mut map = credential_headers(&signed);
        Receipt { owed: 1, remaining: 2 }.write(&mut map);
        if duplicate {
            map.append(header.name(), value);
        } else {
            map.insert(header.name(), value);
        }
        let _ = Credential::from_headers(&map);
        let _ = Receipt::from_headers(&map);
    }

    #[test]
    fn decimals_have_one_spelling(text in prop_oneof![
        "-?[0-9]{0,22}",
        prop::collection::vec(any::<u8>(), 0..30).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        if let Ok(v) = decimal::parse_u64(text.as_bytes()) {
            prop_assert_eq!(v.to_string(), text.clone());
        }
        if let Ok(v) = decimal::parse_i64(text.as_bytes()) {
            prop_assert_eq!(v.to_string(), text.clone());
        }
    }

    #[test]
    fn decimals_round_trip(u in edgy_u64(), i in edgy_i64()) {
        prop_assert_eq!(decimal::parse_u64(u.to_string().as_bytes()), Ok(u));
        prop_assert_eq!(decimal::parse_i64(i.to_string().as_bytes()), Ok(i));
    }

    #[test]
    fn byte_parsers_never_panic(raw in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = voucher::decode(&raw);
        let _ = keypair::from_json(&raw);
        let _ = serde_json::from_slice::<Manifest>(&raw);
        let _ = serde_json::from_slice::<ErrorBody>(&raw);
    }
}
