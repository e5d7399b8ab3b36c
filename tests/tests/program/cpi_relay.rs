//! AMP called from another program: `amp-relay`, whose PDA is the recipient
//! of an upstream channel and the funder of a downstream one, forwards a share
//! of each upstream settlement downstream in the same instruction.

use amp_channel::instructions::OpenArgs;
use amp_relay::constants::{AUTHORITY_SEED, RELAY_SEED};
use amp_sdk::instructions::ChannelKeys;
use amp_sdk::{native_program, pda};
use amp_tests::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_lang::{AccountDeserialize, InstructionData, ToAccountMetas};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

const SHARE_BPS: u16 = 2_500;
const DOWNSTREAM_DEPOSIT: u64 = 100;

/// Agent → relay PDA (upstream), relay PDA → service (downstream).
struct Relay {
    h: Harness,
    agent: Party,
    service: Party,
    operator: Keypair,
    /// Signs the downstream channel's vouchers for the relay.
    hot_key: Keypair,
    relay: Pubkey,
    authority: Pubkey,
    authority_token: Pubkey,
    upstream: Lane,
    downstream: ChannelKeys,
}

impl Relay {
    async fn new(kind: TokenKind) -> Self {
        let programs = vec![native_program!(
            "amp_relay",
            amp_relay::ID,
            amp_relay::entry
        )];
        let mut h = Harness::with_programs(kind, programs).await;
        let operator = h.wallet().await;
        let hot_key = Keypair::new();
        let relay =
            Pubkey::find_program_address(&[RELAY_SEED, operator.pubkey().as_ref()], &amp_relay::ID)
                .0;
        let authority =
            Pubkey::find_program_address(&[AUTHORITY_SEED, relay.as_ref()], &amp_relay::ID).0;
        let init = relay_ix(
            amp_relay::accounts::InitRelay {
                operator: operator.pubkey(),
                relay,
                authority,
                system_program: anchor_lang::system_program::ID,
            },
            amp_relay::instruction::InitRelay {
                share_bps: SHARE_BPS,
            },
        );
        h.bank.process(&[init], &[&operator]).await.unwrap();

        // The PDA pays the downstream channel's rent and deposit.
        h.transfer_lamports(&authority, 1_000_000_000).await;
        let authority_token = h.token_account(&authority).await;
        h.mint_to(&authority_token, DOWNSTREAM_DEPOSIT).await;
        let service = h.party(0).await;
        let nonce = h.next_nonce();
        let downstream = h.keys(&authority, &service.key(), nonce);
        let open = relay_ix(
            amp_relay::accounts::OpenDownstream {
                operator: operator.pubkey(),
                relay,
                authority,
                authority_token,
                channel: downstream.channel,
                vault: downstream.vault,
                mint: h.mint,
                token_program: h.token_program(),
                system_program: anchor_lang::system_program::ID,
                amp_event_authority: pda::event_authority(),
                amp_program: amp_channel::ID,
            },
            amp_relay::instruction::OpenDownstream {
                args: OpenArgs {
                    authorized_signer: Some(hot_key.pubkey()),
                    ..h.open_args(&service.key(), nonce, DOWNSTREAM_DEPOSIT)
                },
            },
        );
        h.bank.process(&[open], &[&operator]).await.unwrap();
        h.track(downstream.vault);

        // An agent pays the relay's PDA through an ordinary channel.
        let agent = h.party(10_000).await;
        let nonce = h.next_nonce();
        let upstream = h
            .open_with(&agent, h.open_args(&authority, nonce, 5_000))
            .await
            .unwrap();
        Self {
            h,
            agent,
            service,
            operator,
            hot_key,
            relay,
            authority,
            authority_token,
            upstream,
            downstream,
        }
    }

    fn distribute_accounts(&self) -> amp_relay::accounts::Distribute {
        amp_relay::accounts::Distribute {
            relay: self.relay,
            authority: self.authority,
            authority_token: self.authority_token,
            downstream: self.downstream.channel,
            downstream_vault: self.downstream.vault,
            mint: self.h.mint,
            token_program: self.h.token_program(),
            amp_event_authority: pda::event_authority(),
            amp_program: amp_channel::ID,
        }
    }

    fn forward_accounts(&self) -> amp_relay::accounts::Forward {
        amp_relay::accounts::Forward {
            upstream: self.upstream.keys.channel,
            upstream_vault: self.upstream.keys.vault,
            instructions: solana_sdk_ids::sysvar::instructions::ID,
            distribute: self.distribute_accounts(),
        }
    }

    fn distribute_ix(&self) -> Instruction {
        relay_ix(
            self.distribute_accounts(),
            amp_relay::instruction::Distribute {},
        )
    }

    fn withdraw_ix(&self, destination: Pubkey, amount: u64) -> Instruction {
        relay_ix(
            amp_relay::accounts::Withdraw {
                operator: self.operator.pubkey(),
                relay: self.relay,
                authority: self.authority,
                authority_token: self.authority_token,
                destination,
                mint: self.h.mint,
                token_program: self.h.token_program(),
            },
            amp_relay::instruction::Withdraw { amount },
        )
    }

    /// The agent's upstream voucher for `cumulative`, settled straight to
    /// `destination` (an account of the relay's authority) by anyone.
    async fn settle_directly(&mut self, cumulative: u64, destination: Pubkey) {
        let voucher = self.upstream.voucher(cumulative, cumulative);
        self.h
            .settle(&self.upstream, &self.agent.wallet, &voucher, &destination)
            .await
            .expect("a direct settle");
    }

    async fn operator_share(&mut self) -> u64 {
        let account = self.h.bank.account(&self.relay).await.unwrap().unwrap();
        let relay = amp_relay::state::Relay::try_deserialize(&mut account.data.as_slice()).unwrap();
        relay.operator_share
    }

    /// `[ed25519(agent's upstream voucher), relay.forward]`.
    fn forward_ixs(
        &self,
        cumulative: u64,
        accounts: amp_relay::accounts::Forward,
    ) -> Vec<Instruction> {
        let voucher = self.upstream.voucher(cumulative, cumulative);
        vec![
            sign(&self.agent.wallet, &voucher),
            relay_ix(accounts, amp_relay::instruction::Forward {}),
        ]
    }
}

fn relay_ix(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: amp_relay::ID,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

#[tokio::test]
async fn a_pda_funds_and_receives_and_forwards_a_share_through_cpi() {
    for kind in TokenKind::ALL {
        let mut r = Relay::new(kind).await;
        let downstream = r.h.channel(&r.downstream.channel).await.unwrap();
        assert_eq!(
            (downstream.funder, downstream.authorized_signer),
            (r.authority, r.hot_key.pubkey())
        );

        let ixs = r.forward_ixs(1_000, r.forward_accounts());
        r.h.bank.process(&ixs, &[]).await.unwrap();
        assert_eq!(
            r.h.tokens(&r.authority_token).await,
            750,
            "the relay keeps 75%"
        );
        assert_eq!(
            r.h.channel(&r.downstream.channel).await.unwrap().deposited,
            DOWNSTREAM_DEPOSIT + 250
        );
        assert_eq!(
            r.h.tokens(&r.downstream.vault).await,
            DOWNSTREAM_DEPOSIT + 250
        );

        // A second settlement forwards the share of the increase only.
        let ixs = r.forward_ixs(1_400, r.forward_accounts());
        r.h.bank.process(&ixs, &[]).await.unwrap();
        assert_eq!(r.h.tokens(&r.authority_token).await, 750 + 300);
        assert_eq!(
            r.h.tokens(&r.downstream.vault).await,
            DOWNSTREAM_DEPOSIT + 350
        );

        // The service is paid from the agent's money, on the hot key's voucher.
        let lane = Lane {
            keys: r.downstream,
            nonce: 0,
            generation: r.h.channel(&r.downstream.channel).await.unwrap().generation,
        };
        let v = lane.voucher(1, 300);
        r.h.settle(&lane, &r.hot_key, &v, &r.service.token)
            .await
            .unwrap();
        assert_eq!(r.h.tokens(&r.service.token).await, 300);
        r.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_cpi_caller_passing_a_wrong_amp_program_is_refused() {
    for kind in TokenKind::ALL {
        let mut r = Relay::new(kind).await;
        for impostor in [r.h.token_program(), amp_relay::ID, Keypair::new().pubkey()] {
            let mut accounts = r.forward_accounts();
            accounts.distribute.amp_program = impostor;
            let ixs = r.forward_ixs(500, accounts);
            r.h.expect_failure(&ixs, &[], Expected::Anchor(ErrorCode::InvalidProgramId))
                .await;
        }
        r.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn the_relay_forwards_only_into_its_own_downstream() {
    let mut r = Relay::new(TokenKind::Token).await;
    // Another channel the agent funds: the relay must not top it up.
    let other = r.h.open(&r.agent, &r.service, 10).await;
    let mut accounts = r.forward_accounts();
    accounts.distribute.downstream = other.keys.channel;
    accounts.distribute.downstream_vault = other.keys.vault;
    let ixs = r.forward_ixs(500, accounts);
    let wrong_downstream = u32::from(amp_relay::error::RelayError::WrongDownstream);
    r.h.expect_failure(&ixs, &[], Expected::Custom(wrong_downstream))
        .await;
    r.h.assert_conserved().await;
}

#[tokio::test]
async fn upstream_vouchers_keep_their_checks_under_cpi() {
    let mut r = Relay::new(TokenKind::Token2022).await;
    // A voucher signed by someone other than the agent: AMP's own error surfaces.
    let voucher = r.upstream.voucher(1, 100);
    let ixs = vec![
        sign(&r.operator, &voucher),
        relay_ix(r.forward_accounts(), amp_relay::instruction::Forward {}),
    ];
    r.h.expect_failure(
        &ixs,
        &[],
        Expected::Amp(amp_channel::error::AmpError::WrongSigner),
    )
    .await;
    // Settling the same voucher twice: the second is stale.
    let ixs = r.forward_ixs(200, r.forward_accounts());
    r.h.bank.process(&ixs, &[]).await.unwrap();
    let ixs = r.forward_ixs(200, r.forward_accounts());
    r.h.expect_failure(
        &ixs,
        &[],
        Expected::Amp(amp_channel::error::AmpError::StaleVoucher),
    )
    .await;
    r.h.assert_conserved().await;
}

#[tokio::test]
async fn a_direct_settle_to_the_relay_is_still_shared() {
    for kind in TokenKind::ALL {
        let mut r = Relay::new(kind).await;
        // Anyone may land the agent's voucher straight to the relay's account,
        // skipping `forward`, which then finds the voucher stale.
        r.settle_directly(1_000, r.authority_token).await;
        let ixs = r.forward_ixs(1_000, r.forward_accounts());
        r.h.expect_failure(
            &ixs,
            &[],
            Expected::Amp(amp_channel::error::AmpError::StaleVoucher),
        )
        .await;
        // What arrived is split all the same.
        let distribute = r.distribute_ix();
        r.h.bank.process(&[distribute], &[]).await.unwrap();
        assert_eq!(
            r.h.tokens(&r.downstream.vault).await,
            DOWNSTREAM_DEPOSIT + 250
        );
        assert_eq!(r.h.tokens(&r.authority_token).await, 750);
        assert_eq!(r.operator_share().await, 750);
        // Splitting again finds nothing new; `forward` shares only the increase.
        let distribute = r.distribute_ix();
        r.h.bank.process(&[distribute], &[]).await.unwrap();
        let ixs = r.forward_ixs(1_400, r.forward_accounts());
        r.h.bank.process(&ixs, &[]).await.unwrap();
        assert_eq!(
            r.h.tokens(&r.downstream.vault).await,
            DOWNSTREAM_DEPOSIT + 350
        );
        assert_eq!(r.operator_share().await, 1_050);
        r.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn the_operator_withdraws_its_share_and_no_more() {
    for kind in TokenKind::ALL {
        let mut r = Relay::new(kind).await;
        let ixs = r.forward_ixs(1_000, r.forward_accounts());
        r.h.bank.process(&ixs, &[]).await.unwrap();
        let wallet = r.operator.pubkey();
        let payout = r.h.token_account(&wallet).await;

        let too_much = r.withdraw_ix(payout, 751);
        let insufficient = u32::from(amp_relay::error::RelayError::InsufficientOperatorShare);
        let operator = r.operator.insecure_clone();
        r.h.expect_failure(&[too_much], &[&operator], Expected::Custom(insufficient))
            .await;
        // Only the operator signs a withdrawal.
        let thief = r.h.wallet().await;
        let mut stolen = r.withdraw_ix(payout, 100);
        stolen.accounts[0].pubkey = thief.pubkey();
        r.h.expect_failure(
            &[stolen],
            &[&thief],
            Expected::Anchor(ErrorCode::ConstraintHasOne),
        )
        .await;

        let withdraw = r.withdraw_ix(payout, 700);
        r.h.bank.process(&[withdraw], &[&operator]).await.unwrap();
        assert_eq!(r.h.tokens(&payout).await, 700);
        assert_eq!(r.operator_share().await, 50);
        // The share forwarded later is unaffected.
        let ixs = r.forward_ixs(1_400, r.forward_accounts());
        r.h.bank.process(&ixs, &[]).await.unwrap();
        assert_eq!(r.operator_share().await, 50 + 300);
        assert_eq!(r.h.tokens(&r.authority_token).await, 350);
        r.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_settle_into_a_stray_account_of_the_relay_is_swept_and_shared() {
    for kind in TokenKind::ALL {
        let mut r = Relay::new(kind).await;
        // Another token account owned by the relay's authority, made by anyone.
        let stray_owner = Keypair::new();
        let stray = stray_account(&mut r, &stray_owner).await;
        r.settle_directly(1_000, stray).await;
        let sweep = relay_ix(
            amp_relay::accounts::Sweep {
                relay: r.relay,
                authority: r.authority,
                authority_token: r.authority_token,
                stray,
                mint: r.h.mint,
                token_program: r.h.token_program(),
            },
            amp_relay::instruction::Sweep {},
        );
        r.h.bank.process(&[sweep], &[]).await.unwrap();
        assert_eq!(r.h.tokens(&stray).await, 0);
        let distribute = r.distribute_ix();
        r.h.bank.process(&[distribute], &[]).await.unwrap();
        assert_eq!(
            r.h.tokens(&r.downstream.vault).await,
            DOWNSTREAM_DEPOSIT + 250
        );
        assert_eq!(r.operator_share().await, 750);
        r.h.assert_conserved().await;
    }
}

/// A token account of the test mint owned by the relay's authority, other
/// than the relay's own (a keypair account: the associated one is taken).
async fn stray_account(r: &mut Relay, account: &Keypair) -> Pubkey {
    // The test mints need no account extensions: the plain size for both programs.
    let len = <spl_token_interface::state::Account as Pack>::LEN;
    let payer = r.h.bank.payer().pubkey();
    let create = solana_system_interface::instruction::create_account(
        &payer,
        &account.pubkey(),
        rent_exempt(len),
        len as u64,
        &r.h.token_program(),
    );
    let init = spl_token_2022_interface::instruction::initialize_account3(
        &r.h.token_program(),
        &account.pubkey(),
        &r.h.mint,
        &r.authority,
    )
    .unwrap();
    r.h.bank.process(&[create, init], &[account]).await.unwrap();
    r.h.track(account.pubkey());
    account.pubkey()
}

#[tokio::test]
async fn once_the_downstream_channel_is_closed_everything_is_the_operators() {
    for kind in TokenKind::ALL {
        let mut r = Relay::new(kind).await;
        // The service closes the downstream channel: its deposit comes back
        // to the relay, which has nowhere to forward anything any more.
        let close =
            amp_sdk::instructions::close(&r.downstream, r.service.token, r.authority_token, false);
        let service = r.service.wallet.insecure_clone();
        r.h.bank.process(&[close], &[&service]).await.unwrap();
        assert_eq!(r.h.tokens(&r.authority_token).await, DOWNSTREAM_DEPOSIT);
        let ixs = r.forward_ixs(1_000, r.forward_accounts());
        r.h.bank.process(&ixs, &[]).await.unwrap();
        let all = DOWNSTREAM_DEPOSIT + 1_000;
        assert_eq!(r.operator_share().await, all);
        let payout = r.h.token_account(&r.operator.pubkey()).await;
        let withdraw = r.withdraw_ix(payout, all);
        let operator = r.operator.insecure_clone();
        r.h.bank.process(&[withdraw], &[&operator]).await.unwrap();
        assert_eq!(r.h.tokens(&r.authority_token).await, 0);
        assert_eq!(r.h.tokens(&payout).await, all);
        r.h.assert_conserved().await;
    }
}
