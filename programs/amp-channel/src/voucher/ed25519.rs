//! The strict check of the Ed25519SigVerify instruction that carries a voucher
//! (SPEC "Verifying a voucher on-chain").
//!
//! The runtime verifies every Ed25519SigVerify instruction before the program
//! runs, but the precompile proves only that *some* key signed *some* bytes
//! somewhere in the transaction. This module pins down which: one signature,
//! all data inside the precompile instruction itself, at the canonical
//! offsets, over exactly one voucher, by the lane's signer. The voucher is
//! then parsed from those verified bytes — there is no second copy.

use anchor_lang::prelude::*;
use solana_instructions_sysvar::{load_current_index_checked, load_instruction_at_checked};
use solana_sdk_ids::{ed25519_program, sysvar::instructions as instructions_sysvar};

use super::{Voucher, VOUCHER_LEN};
use crate::error::AmpError;

/// Offsets of the canonical single-signature layout (the one
/// `solana-ed25519-program`'s `new_ed25519_instruction_with_signature` writes):
/// `[count=1, pad=0, offsets(14)] pubkey(32) signature(64) message(68)`.
pub const OFFSETS_START: usize = 2;
pub const PUBKEY_OFFSET: usize = 16;
pub const SIGNATURE_OFFSET: usize = PUBKEY_OFFSET + 32;
pub const MESSAGE_OFFSET: usize = SIGNATURE_OFFSET + 64;
/// Total length of a canonical Ed25519SigVerify instruction carrying a voucher.
pub const INSTRUCTION_DATA_LEN: usize = MESSAGE_OFFSET + VOUCHER_LEN;
/// Instruction-index value meaning "this very instruction".
pub const CURRENT_INSTRUCTION: u16 = u16::MAX;

/// Builds the canonical Ed25519SigVerify instruction data for a signed voucher.
/// The instruction's program id is [`ed25519_program::ID`] and it takes no accounts.
pub fn instruction_data(
    signer: &Pubkey,
    signature: &[u8; 64],
    voucher: &[u8; VOUCHER_LEN],
) -> [u8; INSTRUCTION_DATA_LEN] {
    let mut data = [0u8; INSTRUCTION_DATA_LEN];
    data[0] = 1;
    let offsets: [u16; 7] = [
        SIGNATURE_OFFSET as u16,
        CURRENT_INSTRUCTION,
        PUBKEY_OFFSET as u16,
        CURRENT_INSTRUCTION,
        MESSAGE_OFFSET as u16,
        VOUCHER_LEN as u16,
        CURRENT_INSTRUCTION,
    ];
    for (i, value) in offsets.iter().enumerate() {
        let at = OFFSETS_START + 2 * i;
        data[at..at + 2].copy_from_slice(&value.to_le_bytes());
    }
    data[PUBKEY_OFFSET..SIGNATURE_OFFSET].copy_from_slice(signer.as_ref());
    data[SIGNATURE_OFFSET..MESSAGE_OFFSET].copy_from_slice(signature);
    data[MESSAGE_OFFSET..].copy_from_slice(voucher);
    data
}

/// Checks one instruction (program id and data) as the Ed25519SigVerify
/// instruction for a voucher signed by `signer`, and returns that voucher.
pub fn voucher_from_instruction(
    program_id: &Pubkey,
    data: &[u8],
    signer: &Pubkey,
) -> Result<Voucher> {
    require_keys_eq!(
        *program_id,
        ed25519_program::ID,
        AmpError::MissingEd25519Instruction
    );
    require!(
        data.len() >= OFFSETS_START && data[0] == 1,
        AmpError::Ed25519SignatureCount
    );
    require!(
        data.len() >= PUBKEY_OFFSET && data[1] == 0,
        AmpError::Ed25519Offsets
    );
    let offset = |i: usize| {
        u16::from_le_bytes([data[OFFSETS_START + 2 * i], data[OFFSETS_START + 2 * i + 1]])
    };
    let (signature_offset, signature_ix) = (offset(0), offset(1));
    let (pubkey_offset, pubkey_ix) = (offset(2), offset(3));
    let (message_offset, message_len, message_ix) = (offset(4), offset(5), offset(6));

    require!(
        signature_ix == CURRENT_INSTRUCTION
            && pubkey_ix == CURRENT_INSTRUCTION
            && message_ix == CURRENT_INSTRUCTION,
        AmpError::Ed25519InstructionIndex
    );
    require!(
        usize::from(message_len) == VOUCHER_LEN,
        AmpError::MalformedVoucher
    );
    require!(
        usize::from(pubkey_offset) == PUBKEY_OFFSET
            && usize::from(signature_offset) == SIGNATURE_OFFSET
            && usize::from(message_offset) == MESSAGE_OFFSET
            && data.len() == INSTRUCTION_DATA_LEN,
        AmpError::Ed25519Offsets
    );
    require!(
        data[PUBKEY_OFFSET..SIGNATURE_OFFSET] == signer.to_bytes(),
        AmpError::WrongSigner
    );
    Voucher::from_bytes(&data[MESSAGE_OFFSET..])
}

/// Reads the instruction immediately before the one executing (through the
/// Instructions sysvar, with the checked loader) and returns the voucher it
/// verified for `signer`.
///
/// Under CPI the "one executing" is the caller's top-level instruction, so a
/// program calling AMP puts the Ed25519SigVerify instruction right before its own.
pub fn verified_voucher(instructions: &AccountInfo, signer: &Pubkey) -> Result<Voucher> {
    require_keys_eq!(
        *instructions.key,
        instructions_sysvar::ID,
        AmpError::InvalidInstructionsSysvar
    );
    let current = load_current_index_checked(instructions)?;
    let previous = current
        .checked_sub(1)
        .ok_or(AmpError::MissingEd25519Instruction)?;
    let ix = load_instruction_at_checked(usize::from(previous), instructions)?;
    voucher_from_instruction(&ix.program_id, &ix.data, signer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn signed() -> (Pubkey, Voucher, [u8; INSTRUCTION_DATA_LEN]) {
        let key = SigningKey::from_bytes(&[9; 32]);
        let signer = Pubkey::new_from_array(key.verifying_key().to_bytes());
        let voucher = Voucher {
            lane: Pubkey::new_from_array([3; 32]),
            generation: 11,
            seq: 1,
            cumulative: 500,
            expires_at: 0,
        };
        let bytes = voucher.to_bytes();
        let sig = key.sign(&bytes).to_bytes();
        (signer, voucher, instruction_data(&signer, &sig, &bytes))
    }

    fn check(data: &[u8], signer: &Pubkey) -> Result<Voucher> {
        voucher_from_instruction(&ed25519_program::ID, data, signer)
    }

    fn set_u16(data: &mut [u8], field: usize, value: u16) {
        let at = OFFSETS_START + 2 * field;
        data[at..at + 2].copy_from_slice(&value.to_le_bytes());
    }

    #[test]
    fn layout_matches_the_solana_builder() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let (signer, voucher, data) = signed();
        let bytes = voucher.to_bytes();
        let sig = key.sign(&bytes).to_bytes();
        let reference = solana_ed25519_program::new_ed25519_instruction_with_signature(
            &bytes,
            &sig,
            &signer.to_bytes(),
        );
        assert_eq!(reference.data, data.to_vec());
        assert_eq!(reference.program_id, ed25519_program::ID);
    }

    #[test]
    fn accepts_the_canonical_instruction() {
        let (signer, voucher, data) = signed();
        assert_eq!(check(&data, &signer).unwrap(), voucher);
    }

    #[test]
    fn refuses_another_program() {
        let (signer, _, data) = signed();
        for program in [
            Pubkey::default(),
            crate::ID,
            solana_sdk_ids::secp256k1_program::ID,
        ] {
            assert_eq!(
                voucher_from_instruction(&program, &data, &signer).unwrap_err(),
                AmpError::MissingEd25519Instruction.into()
            );
        }
    }

    #[test]
    fn refuses_any_signature_count_but_one() {
        let (signer, _, data) = signed();
        for count in [0u8, 2, 3, 255] {
            let mut d = data;
            d[0] = count;
            assert_eq!(
                check(&d, &signer).unwrap_err(),
                AmpError::Ed25519SignatureCount.into()
            );
        }
        for short in [&[][..], &[1][..]] {
            let err = check(short, &signer).unwrap_err();
            assert!(
                err == AmpError::Ed25519SignatureCount.into()
                    || err == AmpError::Ed25519Offsets.into()
            );
        }
    }

    #[test]
    fn refuses_a_non_zero_padding_byte() {
        let (signer, _, mut data) = signed();
        data[1] = 1;
        assert_eq!(
            check(&data, &signer).unwrap_err(),
            AmpError::Ed25519Offsets.into()
        );
    }

    #[test]
    fn refuses_every_instruction_index_but_current() {
        let (signer, _, data) = signed();
        for field in [1, 3, 6] {
            for value in [0u16, 1, 2, u16::MAX - 1] {
                let mut d = data;
                set_u16(&mut d, field, value);
                assert_eq!(
                    check(&d, &signer).unwrap_err(),
                    AmpError::Ed25519InstructionIndex.into(),
                    "field {field} = {value}"
                );
            }
        }
    }

    #[test]
    fn refuses_shifted_offsets() {
        let (signer, _, data) = signed();
        let canonical = [SIGNATURE_OFFSET, PUBKEY_OFFSET, MESSAGE_OFFSET];
        for (field, at) in [0usize, 2, 4].into_iter().zip(canonical) {
            for delta in [-16i32, -1, 1, 32] {
                let mut d = data;
                set_u16(&mut d, field, (at as i32 + delta) as u16);
                assert_eq!(
                    check(&d, &signer).unwrap_err(),
                    AmpError::Ed25519Offsets.into(),
                    "field {field} shifted by {delta}"
                );
            }
        }
    }

    #[test]
    fn refuses_a_message_of_another_length() {
        let (signer, _, data) = signed();
        for len in [0u16, 67, 69, 100] {
            let mut d = data;
            set_u16(&mut d, 5, len);
            assert_eq!(
                check(&d, &signer).unwrap_err(),
                AmpError::MalformedVoucher.into()
            );
        }
    }

    #[test]
    fn refuses_trailing_or_missing_bytes() {
        let (signer, _, data) = signed();
        let mut longer = data.to_vec();
        longer.push(0);
        assert_eq!(
            check(&longer, &signer).unwrap_err(),
            AmpError::Ed25519Offsets.into()
        );
        for len in [2, 15, 16, 100, INSTRUCTION_DATA_LEN - 1] {
            let err = check(&data[..len], &signer).unwrap_err();
            assert_eq!(err, AmpError::Ed25519Offsets.into(), "truncated to {len}");
        }
    }

    #[test]
    fn refuses_another_signer() {
        let (_, _, data) = signed();
        assert_eq!(
            check(&data, &Pubkey::new_from_array([1; 32])).unwrap_err(),
            AmpError::WrongSigner.into()
        );
    }

    #[test]
    fn refuses_a_message_that_is_not_a_voucher() {
        let (signer, _, mut data) = signed();
        data[MESSAGE_OFFSET] = 0x80;
        assert_eq!(
            check(&data, &signer).unwrap_err(),
            AmpError::MalformedVoucher.into()
        );
    }

    #[test]
    fn never_panics_on_arbitrary_data() {
        let (signer, _, data) = signed();
        // Every prefix and every single-byte corruption is answered with an error or the voucher.
        for len in 0..=data.len() {
            let _ = check(&data[..len], &signer);
        }
        for i in 0..data.len() {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut d = data;
                d[i] ^= x;
                let _ = check(&d, &signer);
            }
        }
    }
}
