//! Account substitution across instructions: another mint, token program,
//! vault, channel or funder passed in place of the channel's own, which
//! every instruction (top_up, settle, close, refund) must refuse with the
//! exact error and without moving a token, lamport or byte.

use amp_channel::error::AmpError;
use amp_channel::instruction;
use amp_sdk::instructions as ix;
use amp_sdk::instructions::ChannelKeys;
use amp_tests::*;
use anchor_lang::error::ErrorCode;
use solana_signer::Signer;

use crate::support::*;

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

#[tokio::test]
async fn rent_sent_to_someone_but_the_payer() {
    for kind in TokenKind::ALL {
        let mut f = Fixture::new(kind).await;
        let stranger = f.h.wallet().await.pubkey();
        let close = tampered(
            ix::close_accounts(&f.lane.keys, f.recipient.token, f.funder.token),
            |a| a.payer = stranger,
            instruction::Close {
                final_voucher: false,
            },
        );
        f.h.expect_failure(&[close], &[&f.recipient.wallet], amp(AmpError::NotPayer))
            .await;
        f.request_close().await;
        past_grace(&mut f.h);
        let refund = tampered(
            ix::refund_accounts(&f.lane.keys, f.funder.token),
            |a| a.payer = stranger,
            instruction::Refund {},
        );
        f.h.expect_failure(&[refund], &[], amp(AmpError::NotPayer))
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
