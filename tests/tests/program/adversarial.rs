//! Attacks on vouchers, timing, amounts and account substitution, on SPL
//! Token and Token-2022. Every refusal goes through `Harness::expect_failure`
//! (exact error, and not a token, lamport or byte moved), and every test ends
//! with the conservation check.

use amp_channel::constants::MAX_GRACE_PERIOD;
use amp_channel::error::AmpError;
use amp_channel::instruction;
use amp_channel::instructions::OpenArgs;
use amp_sdk::instructions::{self as ix, ChannelKeys};
use amp_tests::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::Pubkey;
use anchor_lang::{InstructionData, ToAccountMetas};
use solana_instruction::{error::InstructionError, Instruction};
use solana_keypair::Keypair;
use solana_signer::Signer;

/// `InsufficientFunds`, the same code in SPL Token and Token-2022.
const TOKEN_INSUFFICIENT_FUNDS: u32 = 1;
/// `OwnerMismatch`, the same code in SPL Token and Token-2022.
const TOKEN_OWNER_MISMATCH: u32 = 4;

fn amp(error: AmpError) -> Expected {
    Expected::Amp(error)
}

fn anchor(error: ErrorCode) -> Expected {
    Expected::Anchor(error)
}

/// An AMP instruction whose accounts the attacker edited.
fn tampered<A: ToAccountMetas>(
    mut accounts: A,
    edit: impl FnOnce(&mut A),
    data: impl InstructionData,
) -> Instruction {
    edit(&mut accounts);
    ix::build(accounts, data)
}

/// The funder's voucher for `cumulative` on the fixture's channel, as its
/// Ed25519SigVerify instruction.
fn signed(f: &Fixture, cumulative: u64) -> Instruction {
    sign(&f.funder.wallet, &f.lane.voucher(1, cumulative))
}

/// Seconds from opening until the channel of [`expiring`] expires.
const EXPIRY: i64 = 100;

/// The fixture with a channel that expires [`EXPIRY`] seconds after opening.
async fn expiring(kind: TokenKind) -> Fixture {
    Fixture::with_terms(kind, |h, args| args.expires_at = h.bank.now() + EXPIRY).await
}

/// Moves the clock to the end of a grace period that starts now.
fn past_grace(h: &mut Harness) {
    h.bank.advance_time(i64::from(GRACE));
}

/// The token program that does not own the test mint.
fn other_token_program(kind: TokenKind) -> Pubkey {
    match kind {
        TokenKind::Token => TokenKind::Token2022.program_id(),
        TokenKind::Token2022 => TokenKind::Token.program_id(),
    }
}

/// Keys and default terms of a channel the fixture's funder has not opened yet.
fn unopened(f: &mut Fixture) -> (ChannelKeys, OpenArgs) {
    let nonce = f.h.next_nonce();
    let keys = f.h.keys(&f.funder.key(), &f.recipient.key(), nonce);
    (keys, f.h.open_args(&f.recipient.key(), nonce, DEPOSIT))
}

/// `open` of `keys` with `args`, which must fail with `expected` and leave no
/// channel or vault behind.
async fn refused_open(
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
async fn each_instruction_refused(f: &mut Fixture, keys: &ChannelKeys, expected: Expected) {
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

// --- vouchers ---------------------------------------------------------------

#[tokio::test]
async fn voucher_signed_by_a_stranger() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = Keypair::new();
        let voucher = f.lane.voucher(1, 500);
        let ixs =
            f.h.settle_ixs(&f.lane, &stranger, &voucher, &f.recipient.token);
        f.h.expect_failure(&ixs, &[], amp(AmpError::WrongSigner))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn funder_signature_when_a_hot_key_is_the_signer() {
    for kind in TokenKind::ALL {
        let hot = Keypair::new().pubkey();
        let mut f = Fixture::with_terms(kind, |_, args| args.authorized_signer = Some(hot)).await;
        let ixs = f.settle_ixs(1, 500);
        f.h.expect_failure(&ixs, &[], amp(AmpError::WrongSigner))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn voucher_for_another_channel() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // Same funder, same recipient, same signer: only the lane differs.
        let other = f.h.open(&f.funder, &f.recipient, DEPOSIT).await;
        let ixs = [
            sign(&f.funder.wallet, &other.voucher(1, 500)),
            ix::settle(&f.lane.keys, f.recipient.token),
        ];
        f.h.expect_failure(&ixs, &[], amp(AmpError::WrongLane))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn voucher_from_a_previous_incarnation() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let funder = h.party(FUNDS).await;
        let recipient = h.party(0).await;
        let nonce = h.next_nonce();
        let args = h.open_args(&recipient.key(), nonce, DEPOSIT);
        let old = h.open_with(&funder, args).await.unwrap();
        let replay = h.settle_ixs(&old, &funder.wallet, &old.voucher(1, 300), &recipient.token);
        h.bank.process(&replay, &[]).await.unwrap();
        let close = ix::close(&old.keys, recipient.token, funder.token, false);
        h.bank
            .process(&[close], &[&recipient.wallet])
            .await
            .unwrap();

        // The same address again: a new generation kills the old vouchers.
        let new = h.open_with(&funder, args).await.unwrap();
        assert_eq!(new.keys, old.keys);
        assert_ne!(new.generation, old.generation);
        h.expect_failure(&replay, &[], amp(AmpError::WrongGeneration))
            .await;
        assert_eq!(h.tokens(&recipient.token).await, 300);
        h.assert_conserved().await;
    }
}

#[tokio::test]
async fn stale_cumulative_amount() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(1, 300).await;
        for cumulative in [300, 299, 1] {
            let ixs = f.settle_ixs(2, cumulative);
            f.h.expect_failure(&ixs, &[], amp(AmpError::StaleVoucher))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn same_voucher_twice_in_one_transaction() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let mut ixs = f.settle_ixs(1, 300);
        ixs.extend(f.settle_ixs(1, 300));
        f.h.expect_failure(&ixs, &[], amp(AmpError::StaleVoucher))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn cumulative_above_the_deposit() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // The vault holds more than the deposit once something else sits in it.
        let donor = f.h.party(500).await;
        f.h.transfer(&donor, &f.lane.keys.vault, 500).await;
        let ixs = f.settle_ixs(1, DEPOSIT + 1);
        f.h.expect_failure(&ixs, &[], amp(AmpError::VoucherExceedsDeposit))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn cumulative_of_u64_max() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(1, 100).await;
        let ixs = f.settle_ixs(2, u64::MAX);
        f.h.expect_failure(&ixs, &[], amp(AmpError::VoucherExceedsDeposit))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn expired_voucher() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let now = f.h.bank.now();
        for expires_at in [now - 1_000, now - 1, now] {
            let voucher = amp_channel::voucher::Voucher {
                expires_at,
                ..f.lane.voucher(1, 500)
            };
            let ixs =
                f.h.settle_ixs(&f.lane, &f.funder.wallet, &voucher, &f.recipient.token);
            f.h.expect_failure(&ixs, &[], amp(AmpError::VoucherExpired))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

// --- settlement destinations --------------------------------------------------

#[tokio::test]
async fn settlement_into_an_account_not_owned_by_the_recipient() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(0).await;
        for destination in [stranger.token, f.funder.token] {
            let ixs = [signed(&f, 500), ix::settle(&f.lane.keys, destination)];
            f.h.expect_failure(&ixs, &[], amp(AmpError::WrongRecipientTokenAccount))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settlement_into_the_vault_itself() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // Anchor refuses the vault as a second writable account before any constraint.
        let ixs = [signed(&f, 500), ix::settle(&f.lane.keys, f.lane.keys.vault)];
        f.h.expect_failure(
            &ixs,
            &[],
            anchor(ErrorCode::ConstraintDuplicateMutableAccount),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settlement_into_an_account_of_another_mint() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let other = f.h.other_mint(kind, &[], |_| vec![]).await;
        let destination = f.h.other_token_account(&other, &f.recipient.key()).await;
        let ixs = [signed(&f, 500), ix::settle(&f.lane.keys, destination)];
        f.h.expect_failure(&ixs, &[], amp(AmpError::WrongMint))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn mint_other_than_the_channels() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let other = f.h.other_mint(kind, &[], |_| vec![]).await;
        let keys = ChannelKeys {
            mint: other.mint,
            ..f.lane.keys
        };
        each_instruction_refused(&mut f, &keys, amp(AmpError::WrongMint)).await;
        f.h.assert_conserved().await;
    }
}

// --- refunds and closes -------------------------------------------------------

#[tokio::test]
async fn refund_into_someone_elses_token_account() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(0).await;
        f.request_close().await;
        past_grace(&mut f.h);
        for destination in [stranger.token, f.recipient.token] {
            let refund = ix::refund(&f.lane.keys, destination);
            f.h.expect_failure(&[refund], &[], amp(AmpError::WrongFunderTokenAccount))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn refund_into_a_funder_account_of_another_mint() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let other = f.h.other_mint(kind, &[], |_| vec![]).await;
        let destination = f.h.other_token_account(&other, &f.funder.key()).await;
        f.request_close().await;
        past_grace(&mut f.h);
        let refund = ix::refund(&f.lane.keys, destination);
        f.h.expect_failure(&[refund], &[], amp(AmpError::WrongMint))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn cooperative_close_into_someone_elses_token_account() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(0).await;
        let close = ix::close(&f.lane.keys, f.recipient.token, stranger.token, false);
        f.h.expect_failure(
            &[close],
            &[&f.recipient.wallet],
            amp(AmpError::WrongFunderTokenAccount),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn rent_sent_to_someone_but_the_funder() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.wallet().await.pubkey();
        let close = tampered(
            ix::close_accounts(&f.lane.keys, f.recipient.token, f.funder.token),
            |a| a.funder = stranger,
            instruction::Close {
                final_voucher: false,
            },
        );
        f.h.expect_failure(&[close], &[&f.recipient.wallet], amp(AmpError::NotFunder))
            .await;
        f.request_close().await;
        past_grace(&mut f.h);
        let refund = tampered(
            ix::refund_accounts(&f.lane.keys, f.funder.token),
            |a| a.funder = stranger,
            instruction::Refund {},
        );
        f.h.expect_failure(&[refund], &[], amp(AmpError::NotFunder))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn refund_before_the_grace_period_ends() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        f.h.bank.advance_time(i64::from(GRACE) - 1);
        let refund = f.refund_ix();
        f.h.expect_failure(&[refund], &[], amp(AmpError::GracePeriodNotOver))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn refund_without_a_close_request() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // Time alone never makes a channel without expiry refundable.
        f.h.bank.advance_time(10 * 365 * 24 * 3_600);
        let refund = f.refund_ix();
        f.h.expect_failure(&[refund], &[], amp(AmpError::CloseNotRequested))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn refund_before_expiry_plus_grace() {
    for kind in TokenKind::ALL {
        let mut f = expiring(kind).await;
        let refund = [f.refund_ix()];
        f.h.bank.advance_time(EXPIRY - 1);
        f.h.expect_failure(&refund, &[], amp(AmpError::CloseNotRequested))
            .await;
        // One second before expiry + grace.
        f.h.bank.advance_time(i64::from(GRACE));
        f.h.expect_failure(&refund, &[], amp(AmpError::GracePeriodNotOver))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settle_after_the_grace_period() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        past_grace(&mut f.h);
        let ixs = f.settle_ixs(1, 500);
        f.h.expect_failure(&ixs, &[], amp(AmpError::GracePeriodEnded))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settle_after_expiry_plus_grace() {
    for kind in TokenKind::ALL {
        let mut f = expiring(kind).await;
        // Expired but within grace: the recipient still gets paid.
        f.h.bank.advance_time(EXPIRY);
        f.settle(1, 200).await;
        f.h.bank.advance_time(i64::from(GRACE));
        let ixs = f.settle_ixs(2, 500);
        f.h.expect_failure(&ixs, &[], amp(AmpError::GracePeriodEnded))
            .await;
        assert_eq!(f.h.tokens(&f.recipient.token).await, 200);
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn close_by_the_funder_or_a_stranger() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(0).await;
        for signer in [&f.funder.wallet, &stranger.wallet] {
            let close = tampered(
                ix::close_accounts(&f.lane.keys, f.recipient.token, f.funder.token),
                |a| a.recipient = signer.pubkey(),
                instruction::Close {
                    final_voucher: false,
                },
            );
            f.h.expect_failure(&[close], &[signer], amp(AmpError::NotRecipient))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn close_without_the_recipients_signature() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let mut close = f.close_ix();
        close.accounts[0].is_signer = false;
        f.h.expect_failure(&[close], &[], anchor(ErrorCode::AccountNotSigner))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn close_in_the_transaction_that_opens() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (keys, args) = unopened(&mut f);
        f.h.watch_channel(&keys);
        let ixs = [
            ix::open(&keys, f.funder.token, args),
            ix::close(&keys, f.recipient.token, f.funder.token, false),
        ];
        f.h.expect_failure(
            &ixs,
            &[&f.funder.wallet, &f.recipient.wallet],
            amp(AmpError::ChannelTooYoung),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn final_voucher_after_the_grace_period() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        past_grace(&mut f.h);
        let ixs = [
            signed(&f, 500),
            ix::close(&f.lane.keys, f.recipient.token, f.funder.token, true),
        ];
        f.h.expect_failure(
            &ixs,
            &[&f.recipient.wallet],
            amp(AmpError::GracePeriodEnded),
        )
        .await;
        // Without the voucher the recipient may still close: all goes back.
        let close = f.close_ix();
        f.h.bank
            .process(&[close], &[&f.recipient.wallet])
            .await
            .unwrap();
        assert_eq!(f.h.tokens(&f.funder.token).await, FUNDS);
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_closed_channel_accepts_nothing() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(1, 100).await;
        let close = [f.close_ix()];
        f.h.bank
            .process(&close, &[&f.recipient.wallet])
            .await
            .unwrap();
        let gone = || anchor(ErrorCode::AccountNotInitialized);
        let settle = f.settle_ixs(2, 200);
        f.h.expect_failure(&settle, &[], gone()).await;
        f.h.expect_failure(&close, &[&f.recipient.wallet], gone())
            .await;
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, 100);
        f.h.expect_failure(&[top_up], &[&f.funder.wallet], gone())
            .await;
        let request = ix::request_close(&f.lane.keys);
        f.h.expect_failure(&[request], &[&f.funder.wallet], gone())
            .await;
        f.h.expect_failure(&[f.refund_ix()], &[], gone()).await;
        f.h.assert_conserved().await;
    }
}

// --- top-ups and close requests ----------------------------------------------

#[tokio::test]
async fn top_up_after_a_close_request() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, 100);
        f.h.expect_failure(
            &[top_up],
            &[&f.funder.wallet],
            amp(AmpError::ChannelClosing),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_and_close_request_after_expiry() {
    for kind in TokenKind::ALL {
        let mut f = expiring(kind).await;
        f.h.bank.advance_time(EXPIRY);
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, 100);
        f.h.expect_failure(
            &[top_up],
            &[&f.funder.wallet],
            amp(AmpError::ChannelClosing),
        )
        .await;
        let request = ix::request_close(&f.lane.keys);
        f.h.expect_failure(
            &[request],
            &[&f.funder.wallet],
            amp(AmpError::ChannelClosing),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_by_someone_but_the_funder() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.party(500).await;
        let top_up = tampered(
            ix::top_up_accounts(&f.lane.keys, stranger.token),
            |a| a.funder = stranger.key(),
            instruction::TopUp { amount: 100 },
        );
        f.h.expect_failure(&[top_up], &[&stranger.wallet], amp(AmpError::NotFunder))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_from_someone_elses_token_account() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let victim = f.h.party(500).await;
        let top_up = ix::top_up(&f.lane.keys, victim.token, 100);
        f.h.expect_failure(
            &[top_up],
            &[&f.funder.wallet],
            Expected::Instruction(InstructionError::Custom(TOKEN_OWNER_MISMATCH)),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_of_nothing() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, 0);
        f.h.expect_failure(&[top_up], &[&f.funder.wallet], amp(AmpError::ZeroAmount))
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn request_close_twice() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.request_close().await;
        f.h.bank.advance_time(10);
        // A second request would push the refund further out.
        let request = ix::request_close(&f.lane.keys);
        f.h.expect_failure(
            &[request],
            &[&f.funder.wallet],
            amp(AmpError::ChannelClosing),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn request_close_by_someone_but_the_funder() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.wallet().await;
        for signer in [&f.recipient.wallet, &stranger] {
            let request = tampered(
                ix::request_close_accounts(&f.lane.keys),
                |a| a.funder = signer.pubkey(),
                instruction::RequestClose {},
            );
            f.h.expect_failure(&[request], &[signer], amp(AmpError::NotFunder))
                .await;
        }
        f.h.assert_conserved().await;
    }
}

// --- amounts ------------------------------------------------------------------

#[tokio::test]
async fn deposit_of_u64_max_without_the_tokens() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (keys, mut args) = unopened(&mut f);
        args.deposit = u64::MAX;
        let expected = Expected::Instruction(InstructionError::Custom(TOKEN_INSUFFICIENT_FUNDS));
        refused_open(&mut f.h, &f.funder, &keys, args, expected).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn top_up_of_u64_max() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let top_up = ix::top_up(&f.lane.keys, f.funder.token, u64::MAX);
        f.h.expect_failure(
            &[top_up],
            &[&f.funder.wallet],
            amp(AmpError::ArithmeticOverflow),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn the_whole_u64_range_and_not_one_more() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let funder = h.party(u64::MAX).await;
        let recipient = h.party(0).await;
        let lane = h.open(&funder, &recipient, u64::MAX - 1).await;
        h.settle(
            &lane,
            &funder.wallet,
            &lane.voucher(1, u64::MAX - 1),
            &recipient.token,
        )
        .await
        .unwrap();
        // deposited = u64::MAX - 1; topping up 2 would wrap.
        let top_up = ix::top_up(&lane.keys, funder.token, 2);
        h.expect_failure(
            &[top_up],
            &[&funder.wallet],
            amp(AmpError::ArithmeticOverflow),
        )
        .await;
        let ixs = h.settle_ixs(
            &lane,
            &funder.wallet,
            &lane.voucher(2, u64::MAX),
            &recipient.token,
        );
        h.expect_failure(&ixs, &[], amp(AmpError::VoucherExceedsDeposit))
            .await;
        assert_eq!(h.tokens(&recipient.token).await, u64::MAX - 1);
        h.assert_conserved().await;
    }
}

// --- open ---------------------------------------------------------------------

#[tokio::test]
async fn open_with_a_grace_period_out_of_bounds() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        for grace_period in [0, 59, MAX_GRACE_PERIOD + 1, u32::MAX] {
            let (keys, mut args) = unopened(&mut f);
            args.grace_period = grace_period;
            refused_open(
                &mut f.h,
                &f.funder,
                &keys,
                args,
                amp(AmpError::InvalidGracePeriod),
            )
            .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_with_an_expiry_in_the_past() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let now = f.h.bank.now();
        // i64::MAX is in the future, but its refund deadline is not representable.
        for expires_at in [-1, 1, now - 1, now, i64::MAX] {
            let (keys, mut args) = unopened(&mut f);
            args.expires_at = expires_at;
            refused_open(
                &mut f.h,
                &f.funder,
                &keys,
                args,
                amp(AmpError::InvalidExpiry),
            )
            .await;
        }
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_with_zero_deposit() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (keys, mut args) = unopened(&mut f);
        args.deposit = 0;
        refused_open(&mut f.h, &f.funder, &keys, args, amp(AmpError::ZeroAmount)).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_twice_at_the_same_address() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        f.settle(1, 100).await;
        let args = f.h.open_args(&f.recipient.key(), f.lane.nonce, DEPOSIT);
        let keys = f.lane.keys;
        let expected = Expected::Amp(AmpError::AccountExists);
        let open = ix::open(&keys, f.funder.token, args);
        f.h.expect_failure(&[open], &[&f.funder.wallet], expected)
            .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_at_an_address_not_derived_from_its_terms() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (keys, mut args) = unopened(&mut f);
        args.nonce += 1;
        refused_open(
            &mut f.h,
            &f.funder,
            &keys,
            args,
            anchor(ErrorCode::ConstraintSeeds),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_from_a_token_account_of_another_mint() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let other = f.h.other_mint(kind, &[], |_| vec![]).await;
        let token = f.h.other_token_account(&other, &f.funder.key()).await;
        f.h.mint_other(&other, &token, FUNDS).await;
        let (keys, args) = unopened(&mut f);
        let funder = Party {
            wallet: f.funder.wallet.insecure_clone(),
            token,
        };
        refused_open(&mut f.h, &funder, &keys, args, amp(AmpError::WrongMint)).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn open_from_someone_elses_token_account() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let victim = f.h.party(FUNDS).await;
        let (keys, args) = unopened(&mut f);
        let thief = Party {
            wallet: f.funder.wallet.insecure_clone(),
            token: victim.token,
        };
        let expected = Expected::Instruction(InstructionError::Custom(TOKEN_OWNER_MISMATCH));
        refused_open(&mut f.h, &thief, &keys, args, expected).await;
        f.h.assert_conserved().await;
    }
}

// --- token programs and substituted accounts ----------------------------------

#[tokio::test]
async fn open_with_the_other_token_program() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (unopened_keys, args) = unopened(&mut f);
        let keys = ChannelKeys {
            token_program: other_token_program(kind),
            ..unopened_keys
        };
        refused_open(
            &mut f.h,
            &f.funder,
            &keys,
            args,
            amp(AmpError::WrongTokenProgram),
        )
        .await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn the_other_token_program() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let keys = ChannelKeys {
            token_program: other_token_program(kind),
            ..f.lane.keys
        };
        each_instruction_refused(&mut f, &keys, amp(AmpError::WrongTokenProgram)).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn an_unrelated_program_as_token_program() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let (unopened_keys, args) = unopened(&mut f);
        for program in [anchor_lang::system_program::ID, amp_channel::ID] {
            let keys = ChannelKeys {
                token_program: program,
                ..unopened_keys
            };
            refused_open(
                &mut f.h,
                &f.funder,
                &keys,
                args,
                anchor(ErrorCode::InvalidProgramId),
            )
            .await;
        }
        let keys = ChannelKeys {
            token_program: anchor_lang::system_program::ID,
            ..f.lane.keys
        };
        each_instruction_refused(&mut f, &keys, anchor(ErrorCode::InvalidProgramId)).await;
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn the_vault_of_another_channel() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let other = f.h.open(&f.funder, &f.recipient, DEPOSIT).await;
        let keys = ChannelKeys {
            vault: other.keys.vault,
            ..f.lane.keys
        };
        each_instruction_refused(&mut f, &keys, anchor(ErrorCode::ConstraintSeeds)).await;
        assert_eq!(f.h.tokens(&other.keys.vault).await, DEPOSIT);
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_channel_of_another_pair_with_this_vault() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        // The attacker funds a channel to an accomplice and points it at the victim's vault.
        let attacker = f.h.party(DEPOSIT).await;
        let accomplice = f.h.party(0).await;
        let own = f.h.open(&attacker, &accomplice, DEPOSIT).await;
        let keys = ChannelKeys {
            vault: f.lane.keys.vault,
            ..own.keys
        };
        let expected = || anchor(ErrorCode::ConstraintSeeds);
        let settle = [
            sign(&attacker.wallet, &own.voucher(1, DEPOSIT)),
            ix::settle(&keys, accomplice.token),
        ];
        f.h.expect_failure(&settle, &[], expected()).await;
        let close = ix::close(&keys, accomplice.token, attacker.token, false);
        f.h.expect_failure(&[close], &[&accomplice.wallet], expected())
            .await;
        f.h.request_close(&own, &attacker.wallet).await;
        past_grace(&mut f.h);
        let refund = ix::refund(&keys, attacker.token);
        f.h.expect_failure(&[refund], &[], expected()).await;
        assert_eq!(f.h.tokens(&f.lane.keys.vault).await, DEPOSIT);
        f.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_token_account_passed_as_the_channel() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let keys = ChannelKeys {
            channel: f.recipient.token,
            ..f.lane.keys
        };
        let settle = [signed(&f, 500), ix::settle(&keys, f.recipient.token)];
        f.h.expect_failure(&settle, &[], anchor(ErrorCode::AccountOwnedByWrongProgram))
            .await;
        f.h.assert_conserved().await;
    }
}
