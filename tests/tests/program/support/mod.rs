//! Helpers the program tests share: building tampered instructions, fixtures
//! with particular terms, refused opens, and one attack run against every
//! instruction (`each_instruction_refused`).

pub mod delegation;

use amp_channel::error::AmpError;
use amp_channel::instructions::OpenArgs;
use amp_sdk::instructions as ix;
use amp_sdk::instructions::ChannelKeys;
use amp_tests::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::Pubkey;
use anchor_lang::{InstructionData, ToAccountMetas};
use solana_instruction::Instruction;

/// `InsufficientFunds`, the same code in SPL Token and Token-2022.
pub const TOKEN_INSUFFICIENT_FUNDS: u32 = 1;

/// `OwnerMismatch`, the same code in SPL Token and Token-2022.
pub const TOKEN_OWNER_MISMATCH: u32 = 4;

pub fn amp(error: AmpError) -> Expected {
    Expected::Amp(error)
}

pub fn anchor(error: ErrorCode) -> Expected {
    Expected::Anchor(error)
}

/// An AMP instruction whose accounts the attacker edited.
pub fn tampered<A: ToAccountMetas>(
    mut accounts: A,
    edit: impl FnOnce(&mut A),
    data: impl InstructionData,
) -> Instruction {
    edit(&mut accounts);
    ix::build(accounts, data)
}

/// The funder's voucher for `cumulative` on the fixture's channel, as its
/// Ed25519SigVerify instruction.
pub fn signed(f: &Fixture, cumulative: u64) -> Instruction {
    sign(&f.funder.wallet, &f.lane.voucher(1, cumulative))
}

/// Seconds from opening until the channel of [`expiring`] expires.
pub const EXPIRY: i64 = 100;

/// The fixture with a channel that expires [`EXPIRY`] seconds after opening.
pub async fn expiring(kind: TokenKind) -> Fixture {
    Fixture::with_terms(kind, |h, args| args.expires_at = h.bank.now() + EXPIRY).await
}

/// Moves the clock to the end of a grace period that starts now.
pub fn past_grace(h: &mut Harness) {
    h.bank.advance_time(i64::from(GRACE));
}

/// The token program that does not own the test mint.
pub fn other_token_program(kind: TokenKind) -> Pubkey {
    match kind {
        TokenKind::Token => TokenKind::Token2022.program_id(),
        TokenKind::Token2022 => TokenKind::Token.program_id(),
    }
}

/// Keys and default terms of a channel the fixture's funder has not opened yet.
pub fn unopened(f: &mut Fixture) -> (ChannelKeys, OpenArgs) {
    let nonce = f.h.next_nonce();
    let keys = f.h.keys(&f.funder.key(), &f.recipient.key(), nonce);
    (keys, f.h.open_args(&f.recipient.key(), nonce, DEPOSIT))
}

/// `open` of `keys` with `args`, which must fail with `expected` and leave no
/// channel or vault behind.
pub async fn refused_open(
    h: &mut Harness,
    funder: &Party,
    keys: &ChannelKeys,
    args: OpenArgs,
    expected: Expected,
) {
    h.watch_channel(keys);
    let open = ix::open(keys, funder.token, args);
    h.expect_failure(&[open], &[&funder.wallet], expected).await;
    assert!(h.bank.account(&keys.channel).await.unwrap().is_none());
    assert!(h.bank.account(&keys.vault).await.unwrap().is_none());
}

/// Runs top_up, settle, close and (once refundable) refund of the fixture's
/// channel with `keys` in place of its own accounts, each of which must fail
/// with `expected`; then the genuine refund still works.
pub async fn each_instruction_refused(f: &mut Fixture, keys: &ChannelKeys, expected: Expected) {
    let top_up = ix::top_up(keys, f.funder.token, 100);
    f.h.expect_failure(&[top_up], &[&f.funder.wallet], expected.clone())
        .await;
    let settle = [signed(f, 100), ix::settle(keys, f.recipient.token)];
    f.h.expect_failure(&settle, &[], expected.clone()).await;
    let close = ix::close(keys, f.recipient.token, f.funder.token, false);
    f.h.expect_failure(&[close], &[&f.recipient.wallet], expected.clone())
        .await;
    f.request_close().await;
    past_grace(&mut f.h);
    let refund = ix::refund(keys, f.funder.token);
    f.h.expect_failure(&[refund], &[], expected).await;

    let before = f.h.tokens(&f.funder.token).await;
    f.h.bank.process(&[f.refund_ix()], &[]).await.unwrap();
    assert_eq!(f.h.tokens(&f.funder.token).await, before + DEPOSIT);
}
