//! The Ed25519SigVerify instruction in front of a settle, hand-crafted.
//!
//! The runtime's precompile proves only that some key signed some bytes
//! somewhere in the transaction; a transaction it rejects never reaches the
//! program. So each strictness check of the program is attacked here with an
//! instruction the precompile *accepts*: a second valid signature, data read
//! from another instruction that really holds it, offsets moved together with
//! the data, a valid signature over 67 or 69 bytes, and so on. Most of these
//! would be forgeries if the check were missing. Every refusal also asserts
//! that nothing moved, and every test ends with the conservation check.

use amp_channel::error::AmpError;
use amp_channel::instruction;
use amp_channel::voucher::ed25519::{
    MESSAGE_OFFSET, OFFSETS_START, PUBKEY_OFFSET, SIGNATURE_OFFSET,
};
use amp_channel::voucher::VOUCHER_LEN;
use amp_sdk::instructions as ix;
use amp_tests::*;
use anchor_lang::prelude::Pubkey;
use solana_ed25519_program::{
    new_ed25519_instruction_with_signature, offsets_to_ed25519_instruction, Ed25519SignatureOffsets,
};
use solana_instruction::{error::InstructionError, Instruction};
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

/// Positions of the seven `u16` fields of one signature's offsets.
const SIGNATURE_INDEX: usize = 1;
const PUBKEY_INDEX: usize = 3;
const MESSAGE_INDEX: usize = 6;
/// Instruction index of a precompile instruction's data read from elsewhere.
const FIRST_INSTRUCTION: u16 = 0;
/// `PrecompileError::InvalidSignature` and `InvalidDataOffsets` as the runtime reports them.
const PRECOMPILE_INVALID_SIGNATURE: u32 = 2;
const PRECOMPILE_INVALID_DATA_OFFSETS: u32 = 3;

/// `signer`'s ed25519 signature over `message`.
fn signature(signer: &Keypair, message: &[u8]) -> [u8; 64] {
    signer.sign_message(message).into()
}

/// The canonical one-signature instruction over any `message` (for 68 voucher
/// bytes, exactly what the program accepts).
fn canonical(signer: &Keypair, message: &[u8]) -> Instruction {
    new_ed25519_instruction_with_signature(
        message,
        &signature(signer, message),
        &signer.pubkey().to_bytes(),
    )
}

/// Overwrites the `field`-th `u16` of the (first) signature's offsets.
fn set_field(ix: &mut Instruction, field: usize, value: u16) {
    let at = OFFSETS_START + 2 * field;
    ix.data[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// Offsets of one signature whose parts all lie in its own instruction.
fn local(pubkey: usize, signature: usize, message: usize) -> Ed25519SignatureOffsets {
    Ed25519SignatureOffsets {
        signature_offset: signature as u16,
        signature_instruction_index: u16::MAX,
        public_key_offset: pubkey as u16,
        public_key_instruction_index: u16::MAX,
        message_data_offset: message as u16,
        message_data_size: VOUCHER_LEN as u16,
        message_instruction_index: u16::MAX,
    }
}

/// An instruction with `entries` as its offsets and `body` laid out after them.
fn hand_built(entries: &[Ed25519SignatureOffsets], body: &[&[u8]]) -> Instruction {
    let mut ix = offsets_to_ed25519_instruction(entries);
    ix.data.extend(body.concat());
    ix
}

fn voucher_bytes(f: &Fixture, cumulative: u64) -> [u8; VOUCHER_LEN] {
    f.lane.voucher(1, cumulative).to_bytes()
}

/// `before` followed by a settle of the fixture's channel, which must fail
/// with `expected`.
async fn settle_refused(f: &mut Fixture, before: Vec<Instruction>, expected: Expected) {
    let mut ixs = before;
    ixs.push(ix::settle(&f.lane.keys, f.recipient.token));
    f.h.expect_failure(&ixs, &[], expected).await;
    assert_eq!(f.h.tokens(&f.recipient.token).await, 0);
    f.h.assert_conserved().await;
}

// --- rejected by the precompile itself, before the program runs -----------

/// The precompile refused instruction 0 for a bad signature.
fn precompile_bad_signature(err: &TransactionError) -> bool {
    *err == TransactionError::InstructionError(
        0,
        InstructionError::Custom(PRECOMPILE_INVALID_SIGNATURE),
    )
}

/// The precompile refused instruction 0 for offsets outside its data.
fn precompile_bad_offsets(err: &TransactionError) -> bool {
    *err == TransactionError::InstructionError(
        0,
        InstructionError::Custom(PRECOMPILE_INVALID_DATA_OFFSETS),
    )
}

#[tokio::test]
async fn funder_key_with_a_strangers_signature() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let mut forged = canonical(&Keypair::new(), &voucher_bytes(&f, DEPOSIT));
        forged.data[PUBKEY_OFFSET..SIGNATURE_OFFSET].copy_from_slice(&f.funder.key().to_bytes());
        settle_refused(
            &mut f,
            vec![forged],
            Expected::Transaction(precompile_bad_signature),
        )
        .await;
    }
}

#[tokio::test]
async fn message_beyond_the_instruction_data() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let mut ed25519 = canonical(&f.funder.wallet, &voucher_bytes(&f, 500));
        set_field(&mut ed25519, 5, VOUCHER_LEN as u16 + 1);
        settle_refused(
            &mut f,
            vec![ed25519],
            Expected::Transaction(precompile_bad_offsets),
        )
        .await;
    }
}

// --- accepted by the precompile, refused by the program ---------------------

#[tokio::test]
async fn two_signatures_in_one_instruction() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let key = f.funder.key().to_bytes();
        let (small, large) = (voucher_bytes(&f, 100), voucher_bytes(&f, 200));
        let (sig_small, sig_large) = (
            signature(&f.funder.wallet, &small),
            signature(&f.funder.wallet, &large),
        );
        // Header of two offsets, then pubkey ‖ signature ‖ voucher twice.
        let first = OFFSETS_START + 2 * 14;
        let second = first + 32 + 64 + VOUCHER_LEN;
        let entries = [
            local(first, first + 32, first + 96),
            local(second, second + 32, second + 96),
        ];
        let ed25519 = hand_built(
            &entries,
            &[&key, &sig_small, &small, &key, &sig_large, &large],
        );
        settle_refused(
            &mut f,
            vec![ed25519],
            Expected::Amp(AmpError::Ed25519SignatureCount),
        )
        .await;
    }
}

#[tokio::test]
async fn no_signature_at_all() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // Two bytes, count 0: the precompile has nothing to verify.
        let empty = offsets_to_ed25519_instruction(&[]);
        settle_refused(
            &mut f,
            vec![empty],
            Expected::Amp(AmpError::Ed25519SignatureCount),
        )
        .await;
    }
}

#[tokio::test]
async fn public_key_read_from_another_instruction() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // The attacker signs a voucher itself; the precompile checks it against
        // the attacker's key held by instruction 0, while the bytes at the
        // canonical place say "funder".
        let attacker = Keypair::new();
        let real = canonical(&attacker, &voucher_bytes(&f, DEPOSIT));
        let mut forged = real.clone();
        forged.data[PUBKEY_OFFSET..SIGNATURE_OFFSET].copy_from_slice(&f.funder.key().to_bytes());
        set_field(&mut forged, PUBKEY_INDEX, FIRST_INSTRUCTION);
        settle_refused(
            &mut f,
            vec![real, forged],
            Expected::Amp(AmpError::Ed25519InstructionIndex),
        )
        .await;
    }
}

#[tokio::test]
async fn message_read_from_another_instruction() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // The funder signed 10; the bytes at the canonical place say DEPOSIT.
        let real = canonical(&f.funder.wallet, &voucher_bytes(&f, 10));
        let mut forged = real.clone();
        forged.data[MESSAGE_OFFSET..].copy_from_slice(&voucher_bytes(&f, DEPOSIT));
        set_field(&mut forged, MESSAGE_INDEX, FIRST_INSTRUCTION);
        settle_refused(
            &mut f,
            vec![real, forged],
            Expected::Amp(AmpError::Ed25519InstructionIndex),
        )
        .await;
    }
}

#[tokio::test]
async fn signature_read_from_another_instruction() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let real = canonical(&f.funder.wallet, &voucher_bytes(&f, 500));
        let mut borrowed = real.clone();
        borrowed.data[SIGNATURE_OFFSET..MESSAGE_OFFSET].fill(0);
        set_field(&mut borrowed, SIGNATURE_INDEX, FIRST_INSTRUCTION);
        settle_refused(
            &mut f,
            vec![real, borrowed],
            Expected::Amp(AmpError::Ed25519InstructionIndex),
        )
        .await;
    }
}

#[tokio::test]
async fn offsets_shifted_with_the_data() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let voucher = voucher_bytes(&f, 500);
        let sig = signature(&f.funder.wallet, &voucher);
        let at = PUBKEY_OFFSET + 1;
        let ed25519 = hand_built(
            &[local(at, at + 32, at + 96)],
            &[&[0], &f.funder.key().to_bytes(), &sig, &voucher],
        );
        settle_refused(
            &mut f,
            vec![ed25519],
            Expected::Amp(AmpError::Ed25519Offsets),
        )
        .await;
    }
}

#[tokio::test]
async fn offsets_pointing_past_a_decoy_voucher() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // Canonical places hold an unsigned voucher for DEPOSIT; the offsets
        // point at the signed voucher for 10 appended behind it.
        let (decoy, real) = (voucher_bytes(&f, DEPOSIT), voucher_bytes(&f, 10));
        let sig = signature(&f.funder.wallet, &real);
        let behind = MESSAGE_OFFSET + VOUCHER_LEN;
        let ed25519 = hand_built(
            &[local(PUBKEY_OFFSET, behind, behind + 64)],
            &[&f.funder.key().to_bytes(), &[0; 64], &decoy, &sig, &real],
        );
        settle_refused(
            &mut f,
            vec![ed25519],
            Expected::Amp(AmpError::Ed25519Offsets),
        )
        .await;
    }
}

#[tokio::test]
async fn signed_message_of_67_bytes() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let short = &voucher_bytes(&f, 500)[..VOUCHER_LEN - 1];
        let ed25519 = canonical(&f.funder.wallet, short);
        settle_refused(
            &mut f,
            vec![ed25519],
            Expected::Amp(AmpError::MalformedVoucher),
        )
        .await;
    }
}

#[tokio::test]
async fn signed_message_of_69_bytes() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let long = [&voucher_bytes(&f, 500)[..], &[0]].concat();
        let ed25519 = canonical(&f.funder.wallet, &long);
        settle_refused(
            &mut f,
            vec![ed25519],
            Expected::Amp(AmpError::MalformedVoucher),
        )
        .await;
    }
}

#[tokio::test]
async fn signed_68_bytes_that_are_not_a_voucher() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let mut other = voucher_bytes(&f, 500);
        other[..4].copy_from_slice(b"AMP2");
        let ed25519 = canonical(&f.funder.wallet, &other);
        settle_refused(
            &mut f,
            vec![ed25519],
            Expected::Amp(AmpError::MalformedVoucher),
        )
        .await;
    }
}

#[tokio::test]
async fn non_zero_padding_byte() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // The precompile reads only the first byte of the count.
        let mut ed25519 = canonical(&f.funder.wallet, &voucher_bytes(&f, 500));
        ed25519.data[1] = 1;
        settle_refused(
            &mut f,
            vec![ed25519],
            Expected::Amp(AmpError::Ed25519Offsets),
        )
        .await;
    }
}

#[tokio::test]
async fn trailing_bytes_after_the_voucher() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let mut ed25519 = canonical(&f.funder.wallet, &voucher_bytes(&f, 500));
        ed25519.data.push(0);
        settle_refused(
            &mut f,
            vec![ed25519],
            Expected::Amp(AmpError::Ed25519Offsets),
        )
        .await;
    }
}

// --- where the instruction sits --------------------------------------------

/// A memo (the SPL Memo program is in every test bank).
fn memo() -> Instruction {
    Instruction {
        program_id: Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
        accounts: vec![],
        data: b"paid".to_vec(),
    }
}

/// `SetComputeUnitLimit(200_000)`.
fn compute_budget() -> Instruction {
    let mut data = vec![2];
    data.extend(200_000u32.to_le_bytes());
    Instruction {
        program_id: solana_sdk_ids::compute_budget::ID,
        accounts: vec![],
        data,
    }
}

#[tokio::test]
async fn instruction_between_ed25519_and_settle() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        for between in [memo(), compute_budget()] {
            let ed25519 = canonical(&f.funder.wallet, &voucher_bytes(&f, 500));
            let ixs = vec![
                ed25519,
                between,
                ix::settle(&f.lane.keys, f.recipient.token),
            ];
            f.h.expect_failure(
                &ixs,
                &[],
                Expected::Amp(AmpError::MissingEd25519Instruction),
            )
            .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn ed25519_after_the_settle() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let ixs = vec![
            ix::settle(&f.lane.keys, f.recipient.token),
            canonical(&f.funder.wallet, &voucher_bytes(&f, 500)),
        ];
        f.h.expect_failure(
            &ixs,
            &[],
            Expected::Amp(AmpError::MissingEd25519Instruction),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settle_without_ed25519() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        settle_refused(
            &mut f,
            vec![],
            Expected::Amp(AmpError::MissingEd25519Instruction),
        )
        .await;
    }
}

#[tokio::test]
async fn one_ed25519_for_two_settles() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let mut ixs = f.settle_ixs(1, 500);
        ixs.push(ix::settle(&f.lane.keys, f.recipient.token));
        f.h.expect_failure(
            &ixs,
            &[],
            Expected::Amp(AmpError::MissingEd25519Instruction),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn close_with_a_final_voucher_but_no_ed25519() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let close = ix::close(&f.lane.keys, f.recipient.token, f.funder.token, true);
        f.h.expect_failure(
            &[close],
            &[&f.recipient.wallet],
            Expected::Amp(AmpError::MissingEd25519Instruction),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

// --- the Instructions sysvar ------------------------------------------------

/// Accounts that are not the Instructions sysvar: a wallet the attacker owns,
/// and another sysvar.
fn fake_sysvars(f: &Fixture) -> [Pubkey; 2] {
    [f.recipient.key(), solana_sdk_ids::sysvar::clock::ID]
}

#[tokio::test]
async fn fake_instructions_sysvar_in_settle() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        for fake in fake_sysvars(&f) {
            let mut accounts = ix::settle_accounts(&f.lane.keys, f.recipient.token);
            accounts.instructions = fake;
            let ixs = [
                canonical(&f.funder.wallet, &voucher_bytes(&f, 500)),
                ix::build(accounts, instruction::Settle {}),
            ];
            f.h.expect_failure(
                &ixs,
                &[],
                Expected::Amp(AmpError::InvalidInstructionsSysvar),
            )
            .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn fake_instructions_sysvar_in_close() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        for fake in fake_sysvars(&f) {
            let mut accounts = ix::close_accounts(&f.lane.keys, f.recipient.token, f.funder.token);
            accounts.instructions = fake;
            let ixs = [
                canonical(&f.funder.wallet, &voucher_bytes(&f, 500)),
                ix::build(
                    accounts,
                    instruction::Close {
                        final_voucher: true,
                    },
                ),
            ];
            f.h.expect_failure(
                &ixs,
                &[&f.recipient.wallet],
                Expected::Amp(AmpError::InvalidInstructionsSysvar),
            )
            .await;
        }
        f.h.assert_conserved().await;
    }
}
