//! Agent supply chains: service A pays service B out of the agent's budget
//! with `settle_into`, without the tokens ever leaving channel custody.

use amp_channel::error::AmpError;
use amp_channel::events::SettledInto;
use amp_channel::state::DelegationTerms;
use amp_channel::voucher::Voucher;
use amp_sdk::instructions::{self as ix, ChannelKeys};
use amp_sdk::pda;
use amp_tests::*;
use anchor_lang::{AnchorDeserialize, Discriminator};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Agent → A (upstream) and A → B (downstream).
struct Chain {
    h: Harness,
    agent: Party,
    a: Party,
    b: Party,
    upstream: Lane,
    downstream: Lane,
}

impl Chain {
    async fn new(kind: TokenKind) -> Self {
        let mut h = Harness::new(kind).await;
        let agent = h.party(10_000).await;
        let a = h.party(1_000).await;
        let b = h.party(0).await;
        let upstream = h.open(&agent, &a, 2_000).await;
        let downstream = h.open(&a, &b, 100).await;
        Self {
            h,
            agent,
            a,
            b,
            upstream,
            downstream,
        }
    }

    /// `[ed25519(upstream voucher by signer), settle_into(downstream)]`.
    fn settle_into_ixs(
        &self,
        signer: &Keypair,
        voucher: &Voucher,
        downstream: &ChannelKeys,
    ) -> Vec<Instruction> {
        vec![
            sign(signer, voucher),
            ix::settle_into(&self.upstream.keys, None, downstream),
        ]
    }
}

#[tokio::test]
async fn service_b_is_paid_from_the_agents_deposit() {
    for kind in TokenKind::ALL {
        let mut c = Chain::new(kind).await;

        // The agent paid A 500; A forwards all of it into its channel to B.
        let v = c.upstream.voucher(7, 500);
        let ixs = c.settle_into_ixs(&c.agent.wallet, &v, &c.downstream.keys);
        let events =
            c.h.bank
                .process_with_events(&ixs, &[&c.a.wallet])
                .await
                .unwrap();
        let hop = events
            .iter()
            .find_map(|e| e.strip_prefix(SettledInto::DISCRIMINATOR))
            .map(|mut d| SettledInto::deserialize(&mut d).unwrap())
            .expect("SettledInto emitted");
        assert_eq!(
            (
                hop.upstream,
                hop.lane,
                hop.downstream,
                hop.amount,
                hop.settled,
                hop.downstream_deposited
            ),
            (
                c.upstream.keys.channel,
                c.upstream.keys.channel,
                c.downstream.keys.channel,
                500,
                500,
                600
            )
        );
        assert_eq!(c.h.tokens(&c.upstream.keys.vault).await, 1_500);
        assert_eq!(c.h.tokens(&c.downstream.keys.vault).await, 600);
        assert_eq!(
            c.h.tokens(&c.a.token).await,
            900,
            "A's tokens never moved for the hop"
        );

        // B settles A's voucher: 550 of which 500 came from the agent.
        let w = c.downstream.voucher(1, 550);
        c.h.settle(&c.downstream, &c.a.wallet, &w, &c.b.token)
            .await
            .unwrap();
        assert_eq!(c.h.tokens(&c.b.token).await, 550);

        // Both close cooperatively; every lamport of rent is back.
        let close_down = ix::close(&c.downstream.keys, c.b.token, c.a.token, false);
        c.h.bank
            .process(&[close_down], &[&c.b.wallet])
            .await
            .unwrap();
        let close_up = ix::close(&c.upstream.keys, c.a.token, c.agent.token, false);
        c.h.bank.process(&[close_up], &[&c.a.wallet]).await.unwrap();
        assert_eq!(c.h.tokens(&c.agent.token).await, 10_000 - 500);
        assert_eq!(c.h.tokens(&c.a.token).await, 1_000 - 50);
        // Wallets never pay fees here, so each holds exactly what it started with.
        assert_eq!(c.h.lamports(&c.agent.key()).await, WALLET_LAMPORTS);
        assert_eq!(c.h.lamports(&c.a.key()).await, WALLET_LAMPORTS);
        c.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_delegates_voucher_settles_into_downstream() {
    let mut c = Chain::new(TokenKind::Token2022).await;
    let delegate = Keypair::new();
    let terms = DelegationTerms {
        delegate: delegate.pubkey(),
        cap: 300,
        expires_at: 0,
    };
    c.h.bank
        .process(
            &[ix::delegate(&c.upstream.keys, c.agent.token, terms)],
            &[&c.agent.wallet],
        )
        .await
        .unwrap();
    let address = pda::delegation(&c.upstream.keys.channel, &delegate.pubkey()).0;
    let account = c.h.bank.account(&address).await.unwrap().unwrap();
    let generation =
        <amp_channel::state::Delegation as anchor_lang::AccountDeserialize>::try_deserialize(
            &mut account.data.as_slice(),
        )
        .unwrap()
        .generation;
    let v = Voucher {
        lane: address,
        generation,
        seq: 1,
        cumulative: 120,
        expires_at: 0,
    };
    let pk = delegate.pubkey();
    let ixs = vec![
        sign(&delegate, &v),
        ix::settle_into(&c.upstream.keys, Some(&pk), &c.downstream.keys),
    ];
    c.h.bank.process(&ixs, &[&c.a.wallet]).await.unwrap();
    assert_eq!(c.h.tokens(&c.downstream.keys.vault).await, 220);
    c.h.assert_conserved().await;
}

#[tokio::test]
async fn only_the_upstream_recipient_settles_into() {
    for kind in TokenKind::ALL {
        let mut c = Chain::new(kind).await;
        let v = c.upstream.voucher(1, 100);
        let mut into = ix::settle_into_accounts(&c.upstream.keys, None, &c.downstream.keys);
        into.recipient = c.b.key();
        let ixs = vec![
            sign(&c.agent.wallet, &v),
            ix::build(into, amp_channel::instruction::SettleInto {}),
        ];
        c.h.expect_failure(&ixs, &[&c.b.wallet], Expected::Amp(AmpError::NotRecipient))
            .await;
        c.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn downstream_must_be_funded_by_the_upstream_recipient() {
    for kind in TokenKind::ALL {
        let mut c = Chain::new(kind).await;
        // A channel B → A: A receives on it, it does not fund it.
        let b = c.b_with_tokens().await;
        let wrong = c.h.open(&b, &c.a, 10).await;
        let v = c.upstream.voucher(1, 100);
        let ixs = c.settle_into_ixs(&c.agent.wallet, &v, &wrong.keys);
        c.h.expect_failure(&ixs, &[&c.a.wallet], Expected::Amp(AmpError::NotDownstream))
            .await;
        c.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn settle_into_the_upstream_itself_is_refused() {
    for kind in TokenKind::ALL {
        let mut c = Chain::new(kind).await;
        let v = c.upstream.voucher(1, 100);
        let upstream = c.upstream.keys;
        let ixs = c.settle_into_ixs(&c.agent.wallet, &v, &upstream);
        c.h.expect_failure(
            &ixs,
            &[&c.a.wallet],
            Expected::Anchor(anchor_lang::error::ErrorCode::ConstraintDuplicateMutableAccount),
        )
        .await;
        c.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_cycle_back_to_the_upstream_funder_is_refused() {
    for kind in TokenKind::ALL {
        let mut c = Chain::new(kind).await;
        // A → agent: settling the agent's voucher into it would pay the agent back.
        let back = c.h.open(&c.a, &c.agent, 10).await;
        let v = c.upstream.voucher(1, 100);
        let ixs = c.settle_into_ixs(&c.agent.wallet, &v, &back.keys);
        c.h.expect_failure(
            &ixs,
            &[&c.a.wallet],
            Expected::Amp(AmpError::SupplyChainCycle),
        )
        .await;
        c.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn downstream_of_another_mint_is_refused() {
    for kind in TokenKind::ALL {
        let mut c = Chain::new(kind).await;
        let authority = Keypair::new();
        let other_mint = create_mint(&mut c.h.bank, kind, &authority, &[], |_| vec![]).await;
        let a_other = other_mint_account(&mut c.h, &c.a, &other_mint, &authority, 50).await;
        let nonce = c.h.next_nonce();
        let keys = ChannelKeys::new(c.a.key(), c.b.key(), nonce, other_mint, kind.program_id());
        let args = c.h.open_args(&c.b.key(), nonce, 50);
        c.h.bank
            .process(&[ix::open(&keys, a_other, args)], &[&c.a.wallet])
            .await
            .unwrap();

        let v = c.upstream.voucher(1, 100);
        let ixs = c.settle_into_ixs(&c.agent.wallet, &v, &keys);
        c.h.expect_failure(&ixs, &[&c.a.wallet], Expected::Amp(AmpError::WrongMint))
            .await;
        c.h.assert_conserved().await;
    }
}

#[tokio::test]
async fn a_closing_downstream_takes_no_more_deposits() {
    for kind in TokenKind::ALL {
        let mut c = Chain::new(kind).await;
        c.h.bank
            .process(&[ix::request_close(&c.downstream.keys)], &[&c.a.wallet])
            .await
            .unwrap();
        let v = c.upstream.voucher(1, 100);
        let ixs = c.settle_into_ixs(&c.agent.wallet, &v, &c.downstream.keys);
        c.h.expect_failure(
            &ixs,
            &[&c.a.wallet],
            Expected::Amp(AmpError::ChannelClosing),
        )
        .await;
        c.h.assert_conserved().await;
    }
}

impl Chain {
    /// B with some tokens, so that it can fund a channel of its own.
    async fn b_with_tokens(&mut self) -> Party {
        let b = Party {
            wallet: self.b.wallet.insecure_clone(),
            token: self.b.token,
        };
        self.h.mint_to(&b.token, 10).await;
        b
    }
}

/// A token account of `owner` for a second mint, holding `amount`.
async fn other_mint_account(
    h: &mut Harness,
    owner: &Party,
    mint: &anchor_lang::prelude::Pubkey,
    authority: &Keypair,
    amount: u64,
) -> anchor_lang::prelude::Pubkey {
    let program = h.token_program();
    let payer = h.bank.payer().pubkey();
    let create = anchor_spl::associated_token::spl_associated_token_account::instruction::create_associated_token_account_idempotent(
        &payer, &owner.key(), mint, &program,
    );
    let account = pda::associated_token(&owner.key(), mint, &program);
    let mint_to = spl_token_2022_interface::instruction::mint_to_checked(
        &program,
        mint,
        &account,
        &authority.pubkey(),
        &[],
        amount,
        DECIMALS,
    )
    .unwrap();
    h.bank
        .process(&[create, mint_to], &[authority])
        .await
        .unwrap();
    account
}
