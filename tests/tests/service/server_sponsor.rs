//! Sponsored opening: an agent holding no SOL posts an `open` (or `top_up`)
//! it signed as funder; the service checks it, co-signs as fee and rent
//! payer, and sends it. Every hostile request is refused with its code
//! before the service signs anything: its lamports do not move.

use amp_channel::instructions::OpenArgs;
use amp_sdk::chain::Chain;
use amp_sdk::instructions::{self as ix, ChannelKeys};
use amp_sdk::manifest::{ErrorCode, Manifest, MANIFEST_PATH};
use amp_sdk::server::{ServiceStatus, SponsorConfig, STATUS_PATH};
use amp_sdk::sponsor::{self, SponsorAnswer, SponsorRequest, Sponsorship, OPEN_PATH, TOP_UP_PATH};
use amp_sdk::transactions::{self, OpenOptions};
use amp_tests::*;
use anchor_lang::prelude::Pubkey;
use http::{HeaderMap, StatusCode};
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;

use crate::support::server::{builder, client, credential_headers, send, Reply, Server};

/// Deposits a sponsored open may have.
const MAX_DEPOSIT: u64 = 5_000;
const MAX_PRICE: u64 = 1_000;
const MAX_LIMIT: u32 = 100_000;
/// Two signatures, no priority fee.
const BASE_FEE: u64 = 10_000;

fn config() -> SponsorConfig {
    SponsorConfig {
        max_deposit: MAX_DEPOSIT,
        max_compute_unit_price: MAX_PRICE,
        max_compute_unit_limit: MAX_LIMIT,
        funder_opens_per_minute: 100,
        opens_per_minute: 100,
        funder_exposure: u64::MAX,
        exposure: u64::MAX,
        ..SponsorConfig::default()
    }
}

struct Scene {
    h: Harness,
    service: Party,
    server: Server,
    client: reqwest::Client,
    sponsorship: Sponsorship,
    /// The service's lamports once it started: what it must end with, less fees.
    service_lamports: u64,
}

impl Scene {
    async fn new(config: SponsorConfig) -> Self {
        let mut h = Harness::new(TokenKind::Token).await;
        let service = h.party(0).await;
        let paywall = builder(&h, &service.wallet)
            .sponsor(config)
            .start()
            .await
            .unwrap();
        let server = Server::start(paywall).await;
        let client = client();
        let manifest: Manifest = server.get_json(&client, MANIFEST_PATH).await;
        let sponsorship = manifest
            .sponsor
            .expect("the manifest advertises sponsorship");
        let service_lamports = h.lamports(&service.key()).await;
        Self {
            h,
            service,
            server,
            client,
            sponsorship,
            service_lamports,
        }
    }

    /// An agent with tokens and not one lamport.
    async fn agent(&mut self) -> Party {
        let wallet = Keypair::new();
        let token = self.h.token_account(&wallet.pubkey()).await;
        self.h.mint_to(&token, FUNDS).await;
        assert_eq!(self.h.lamports(&wallet.pubkey()).await, 0);
        Party { wallet, token }
    }

    fn args(&mut self, deposit: u64) -> OpenArgs {
        let nonce = self.h.next_nonce();
        self.h.open_args(&self.service.key(), nonce, deposit)
    }

    async fn blockhash(&self) -> Hash {
        self.h.bank.latest_blockhash().await.unwrap().0
    }

    /// The agent's sponsored open of `deposit`, as the SDK builds it.
    async fn open_tx(&mut self, agent: &Party, deposit: u64) -> (ChannelKeys, Transaction) {
        let args = self.args(deposit);
        let blockhash = self.blockhash().await;
        sponsor::open_transaction(
            &agent.wallet,
            &self.sponsorship,
            self.h.mint,
            self.h.token_program(),
            args,
            &[],
            blockhash,
        )
        .unwrap()
    }

    /// `instructions` with the service as fee payer, signed by `signers` only.
    async fn tx(&self, instructions: &[Instruction], signers: &[&Keypair]) -> Transaction {
        let mut tx = Transaction::new_with_payer(instructions, Some(&self.service.key()));
        tx.try_partial_sign(signers, self.blockhash().await)
            .unwrap();
        tx
    }

    /// The instructions of a sponsored open of `args` by `agent`.
    fn open_ixs(&self, agent: &Party, args: OpenArgs) -> (ChannelKeys, Vec<Instruction>) {
        let options = OpenOptions {
            payer: Some(self.service.key()),
            ..Default::default()
        };
        transactions::open(
            agent.key(),
            self.h.mint,
            self.h.token_program(),
            args,
            options,
        )
    }

    async fn post(&self, path: &str, tx: &Transaction) -> Reply {
        self.post_body(path, serde_json::to_vec(&SponsorRequest::new(tx)).unwrap())
            .await
    }

    async fn post_body(&self, path: &str, body: Vec<u8>) -> Reply {
        let request = self.client.post(self.server.url(path)).body(body);
        send(&self.client, request, HeaderMap::new()).await
    }

    /// Posts a hostile request: refused with `code`, and the service signed
    /// nothing (its lamports did not move).
    async fn refused(&mut self, path: &str, tx: &Transaction, code: ErrorCode) {
        let before = self.h.lamports(&self.service.key()).await;
        self.post(path, tx).await.expect(code);
        assert_eq!(self.h.lamports(&self.service.key()).await, before, "{code}");
    }

    async fn status(&self) -> ServiceStatus {
        self.server.get_json(&self.client, STATUS_PATH).await
    }
}

fn answer(reply: &Reply) -> SponsorAnswer {
    reply.ok();
    serde_json::from_slice(reply.body.as_deref().unwrap()).unwrap()
}

fn compute_unit_price(micro_lamports: u64) -> Instruction {
    let mut data = vec![3];
    data.extend_from_slice(&micro_lamports.to_le_bytes());
    Instruction::new_with_bytes(solana_sdk_ids::compute_budget::ID, &data, vec![])
}

fn compute_unit_limit(units: u32) -> Instruction {
    let mut data = vec![2];
    data.extend_from_slice(&units.to_le_bytes());
    Instruction::new_with_bytes(solana_sdk_ids::compute_budget::ID, &data, vec![])
}

#[tokio::test]
async fn an_agent_without_sol_opens_and_tops_up_through_the_sponsor() {
    let mut s = Scene::new(config()).await;
    assert_eq!(s.sponsorship.payer, s.service.key());
    assert_eq!(s.sponsorship.mints, vec![s.h.mint]);
    assert_eq!(
        (s.sponsorship.min_deposit, s.sponsorship.max_deposit),
        (100, MAX_DEPOSIT)
    );
    let agent = s.agent().await;
    let (keys, tx) = s.open_tx(&agent, 1_000).await;
    let opened = answer(&s.post(OPEN_PATH, &tx).await);
    assert_eq!(opened.channel, keys.channel);

    let channel = s.h.channel(&keys.channel).await.expect("opened");
    assert_eq!(
        (channel.funder, channel.payer),
        (agent.key(), s.service.key())
    );
    assert_eq!(channel.deposited, 1_000);
    let rent = s.h.lamports(&keys.channel).await + s.h.lamports(&keys.vault).await;
    assert_eq!(opened.rent, rent);
    assert_eq!(s.h.lamports(&agent.key()).await, 0);
    let spent = rent + BASE_FEE;
    assert_eq!(
        s.h.lamports(&s.service.key()).await,
        s.service_lamports - spent
    );
    let status = s.status().await.sponsor.expect("sponsor status");
    assert_eq!(
        (status.opened, status.channels, status.exposure),
        (1, 1, rent)
    );
    assert_eq!(status.fees, BASE_FEE);

    // A top-up: the service pays the fee only.
    let blockhash = s.blockhash().await;
    let tx = sponsor::top_up_transaction(&agent.wallet, &s.sponsorship, &keys, 500, &[], blockhash)
        .unwrap();
    let topped = answer(&s.post(TOP_UP_PATH, &tx).await);
    assert_eq!((topped.channel, topped.rent), (keys.channel, 0));
    assert_eq!(s.h.channel(&keys.channel).await.unwrap().deposited, 1_500);
    assert_eq!(
        s.h.lamports(&s.service.key()).await,
        s.service_lamports - spent - BASE_FEE
    );
    assert_eq!(s.h.lamports(&agent.key()).await, 0);

    // One paid call, then the cooperative close: the rent comes back to the
    // service, the tokens to the agent (the bank's payer pays the close's fee).
    let lane = Lane {
        keys,
        nonce: channel.nonce,
        generation: channel.generation,
    };
    let call = send(
        &s.client,
        s.client.get(s.server.url("/v1/call")),
        credential_headers(&agent.wallet, &lane.voucher(1, 10)),
    )
    .await;
    call.ok();
    let close = send(
        &s.client,
        s.client.post(s.server.url(amp_sdk::manifest::CLOSE_PATH)),
        credential_headers(&agent.wallet, &lane.voucher(2, 10)),
    )
    .await;
    assert_eq!(close.status, StatusCode::OK, "{}", close.text());
    assert!(s.h.channel(&keys.channel).await.is_none());
    assert_eq!(
        s.h.lamports(&s.service.key()).await,
        s.service_lamports - 2 * BASE_FEE
    );
    assert_eq!(s.h.tokens(&agent.token).await, FUNDS - 10);
    assert_eq!(s.h.lamports(&agent.key()).await, 0);
    let status = s.status().await.sponsor.unwrap();
    assert_eq!((status.channels, status.exposure), (0, 0));
}

#[tokio::test]
async fn refuses_transactions_it_does_not_cosign() {
    let mut s = Scene::new(config()).await;
    let agent = s.agent().await;
    let service = s.service.key();

    // Something beyond the open: a transfer out of the service, an
    // `assign` of its wallet, a second open.
    let args = s.args(1_000);
    let (_, mut ixs) = s.open_ixs(&agent, args);
    ixs.push(solana_system_interface::instruction::transfer(
        &service,
        &agent.key(),
        1_000_000,
    ));
    let tx = s.tx(&ixs, &[&agent.wallet]).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTransaction)
        .await;

    let (_, mut ixs) = s.open_ixs(&agent, args);
    ixs.insert(
        0,
        solana_system_interface::instruction::assign(&service, &Pubkey::new_unique()),
    );
    let tx = s.tx(&ixs, &[&agent.wallet]).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTransaction)
        .await;

    let second = s.args(1_000);
    let (_, mut ixs) = s.open_ixs(&agent, args);
    ixs.extend(s.open_ixs(&agent, second).1);
    let tx = s.tx(&ixs, &[&agent.wallet]).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTransaction)
        .await;

    // Another fee payer: the agent's own key first.
    let (_, ixs) = s.open_ixs(&agent, args);
    let mut tx = Transaction::new_with_payer(&ixs, Some(&agent.key()));
    tx.try_partial_sign(&[&agent.wallet], s.blockhash().await)
        .unwrap();
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTransaction)
        .await;

    // The funder's signature made by someone else.
    let (_, ixs) = s.open_ixs(&agent, args);
    let mut tx = s.tx(&ixs, &[&agent.wallet]).await;
    tx.signatures[1] = Keypair::new().sign_message(&tx.message_data());
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTransaction)
        .await;

    // The service's key in the open's accounts beyond its payer slot.
    let (_, ixs) = s.open_ixs(&agent, args);
    let mut edited = ixs.clone();
    edited[0].accounts[4].pubkey = service; // funder_token
    let tx = s.tx(&edited, &[&agent.wallet]).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTransaction)
        .await;

    // A top_up posted as an open, and not a transaction at all.
    let (keys, _) = s.open_ixs(&agent, args);
    let top_up = ix::top_up(&keys, agent.token, 10);
    let tx = s.tx(&[top_up], &[&agent.wallet]).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTransaction)
        .await;
    s.post_body(OPEN_PATH, b"{\"transaction\": \"AAAA\"}".to_vec())
        .await
        .expect(ErrorCode::SponsorTransaction);
    s.post_body(OPEN_PATH, vec![b' '; 64 * 1024])
        .await
        .expect(ErrorCode::SponsorTransaction);

    // None of it opened anything; the genuine transaction still works.
    let (keys, _) = s.open_ixs(&agent, args);
    assert!(s.h.channel(&keys.channel).await.is_none());
    let (_, ixs) = s.open_ixs(&agent, args);
    let tx = s.tx(&ixs, &[&agent.wallet]).await;
    answer(&s.post(OPEN_PATH, &tx).await);
    let status = s.status().await.sponsor.unwrap();
    assert_eq!((status.refused, status.opened), (9, 1));
}

#[tokio::test]
async fn refuses_terms_it_does_not_advertise() {
    let mut s = Scene::new(config()).await;
    let agent = s.agent().await;

    let mut args = s.args(1_000);
    args.recipient = Pubkey::new_unique();
    let (_, ixs) = s.open_ixs(&agent, args);
    let tx = s.tx(&ixs, &[&agent.wallet]).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTerms).await;

    let other = s.h.other_mint(TokenKind::Token, &[], |_| vec![]).await;
    let args = s.args(1_000);
    let options = OpenOptions {
        payer: Some(s.service.key()),
        ..Default::default()
    };
    let (_, ixs) = transactions::open(agent.key(), other.mint, other.token_program, args, options);
    let tx = s.tx(&ixs, &[&agent.wallet]).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTerms).await;

    for deposit in [99, MAX_DEPOSIT + 1] {
        let args = s.args(deposit);
        let (_, ixs) = s.open_ixs(&agent, args);
        let tx = s.tx(&ixs, &[&agent.wallet]).await;
        s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTerms).await;
    }

    let mut args = s.args(1_000);
    args.grace_period = GRACE - 1;
    let (_, ixs) = s.open_ixs(&agent, args);
    let tx = s.tx(&ixs, &[&agent.wallet]).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTerms).await;

    let args = s.args(1_000);
    let (_, open) = s.open_ixs(&agent, args);
    for budget in [
        vec![compute_unit_price(MAX_PRICE + 1)],
        vec![compute_unit_limit(MAX_LIMIT + 1)],
        // No limit: the default 200,000 units are above the cap.
        vec![compute_unit_price(1)],
    ] {
        let ixs: Vec<Instruction> = budget.into_iter().chain(open.clone()).collect();
        let tx = s.tx(&ixs, &[&agent.wallet]).await;
        s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTerms).await;
    }
    // At the caps it is taken.
    let ixs: Vec<Instruction> = [compute_unit_limit(MAX_LIMIT), compute_unit_price(MAX_PRICE)]
        .into_iter()
        .chain(open)
        .collect();
    let tx = s.tx(&ixs, &[&agent.wallet]).await;
    answer(&s.post(OPEN_PATH, &tx).await);
    let status = s.status().await.sponsor.unwrap();
    // The priority fee: 100,000 units at 1,000 micro-lamports.
    assert_eq!(status.fees, BASE_FEE + 100);
}

#[tokio::test]
async fn refuses_replays_stale_blockhashes_and_failing_transactions() {
    let mut s = Scene::new(config()).await;
    let agent = s.agent().await;
    let (_, tx) = s.open_tx(&agent, 1_000).await;
    answer(&s.post(OPEN_PATH, &tx).await);
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorReplay).await;

    let args = s.args(1_000);
    let (_, ixs) = s.open_ixs(&agent, args);
    let mut tx = Transaction::new_with_payer(&ixs, Some(&s.service.key()));
    tx.try_partial_sign(&[&agent.wallet], Hash::new_unique())
        .unwrap();
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorStale).await;

    // A deposit the agent does not have fails in simulation, unsigned.
    let poor = s.agent().await;
    let (_, tx) = s.open_tx(&poor, 1_000).await;
    // The tokens leave first: the open would fail in the token program.
    s.h.transfer(&poor, &agent.token, FUNDS).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorTransaction)
        .await;
}

#[tokio::test]
async fn limits_per_funder_and_in_total() {
    // Opens per minute: two per funder, three in all.
    let mut s = Scene::new(SponsorConfig {
        funder_opens_per_minute: 2,
        opens_per_minute: 3,
        ..config()
    })
    .await;
    let agent = s.agent().await;
    for _ in 0..2 {
        let (_, tx) = s.open_tx(&agent, 1_000).await;
        answer(&s.post(OPEN_PATH, &tx).await);
    }
    let (_, tx) = s.open_tx(&agent, 1_000).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorFunderRate)
        .await;
    let other = s.agent().await;
    let (_, tx) = s.open_tx(&other, 1_000).await;
    answer(&s.post(OPEN_PATH, &tx).await);
    let third = s.agent().await;
    let (_, tx) = s.open_tx(&third, 1_000).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorRate).await;

    // Rent fronted: room for one channel per funder, and two in all.
    let one = rent_of_one();
    let mut s = Scene::new(SponsorConfig {
        funder_exposure: one + one / 2,
        exposure: 2 * one + one / 2,
        ..config()
    })
    .await;
    let agent = s.agent().await;
    let (keys, tx) = s.open_tx(&agent, 1_000).await;
    answer(&s.post(OPEN_PATH, &tx).await);
    let (_, tx) = s.open_tx(&agent, 1_000).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorFunderExposure)
        .await;
    let other = s.agent().await;
    let (_, tx) = s.open_tx(&other, 1_000).await;
    answer(&s.post(OPEN_PATH, &tx).await);
    let third = s.agent().await;
    let (_, tx) = s.open_tx(&third, 1_000).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorExposure).await;
    let status = s.status().await.sponsor.unwrap();
    assert_eq!(status.exposure, 2 * one);

    // Once a channel closes (here: refunded by anyone after its grace
    // period), its rent is back and the limit lets the next one through.
    s.h.bank
        .process(&[ix::request_close(&keys)], &[&agent.wallet])
        .await
        .unwrap();
    s.h.bank.advance_time(i64::from(GRACE));
    s.h.bank
        .process(&[ix::refund(&keys, agent.token)], &[])
        .await
        .unwrap();
    let (_, tx) = s.open_tx(&third, 1_000).await;
    answer(&s.post(OPEN_PATH, &tx).await);
    let (_, tx) = s.open_tx(&agent, 1_000).await;
    s.refused(OPEN_PATH, &tx, ErrorCode::SponsorExposure).await;
}

/// The rent of one sponsored channel in the test mint (a Channel and an SPL
/// Token vault) at the bank's (mainnet) rent.
fn rent_of_one() -> u64 {
    let rent = anchor_lang::prelude::Rent::default();
    // An SPL Token account is 165 bytes.
    rent.minimum_balance(amp_channel::constants::MAX_CHANNEL_ACCOUNT_LEN)
        + rent.minimum_balance(165)
}
