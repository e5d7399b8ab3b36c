//! The program driven only through the SDK: transaction builders, the
//! settlement packer and the `Chain` trait, on an embedded bank shared as
//! `Arc<dyn Chain>`.

use std::sync::Arc;

use amp_channel::error::AmpError;
use amp_channel::state::{Delegation, DelegationTerms};
use amp_channel::voucher::Voucher;
use amp_sdk::chain::{Chain, ChainError, ChainExt};
use amp_sdk::instructions::{self as ix, ChannelKeys};
use amp_sdk::pda;
use amp_sdk::transactions::{self as tx, OpenOptions, Settlement};
use amp_tests::*;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A channel opened through the SDK, with its funder's wallet.
struct Opened {
    keys: ChannelKeys,
    generation: u64,
    funder: Keypair,
}

impl Opened {
    /// The funder's signed voucher for `cumulative`, paid to the recipient's ATA.
    fn settlement(&self, seq: u64, cumulative: u64) -> Settlement {
        let voucher = Voucher {
            lane: self.keys.channel,
            generation: self.generation,
            seq,
            cumulative,
            expires_at: 0,
        };
        let signature = self.funder.sign_message(&voucher.to_bytes()).into();
        Settlement::new(self.keys, self.funder.pubkey(), voucher, signature)
    }
}

/// Opens `n` channels of `deposit` from fresh funders to `recipient` through
/// the builders; the first creates the recipient's token account.
async fn open_channels(
    h: &mut Harness,
    chain: &Arc<dyn Chain>,
    recipient: &Keypair,
    n: usize,
    deposit: u64,
) -> Vec<Opened> {
    let mut opened = vec![];
    for _ in 0..n {
        let funder = h.party(deposit * 2).await;
        let nonce = h.next_nonce();
        let args = h.open_args(&recipient.pubkey(), nonce, deposit);
        let options = OpenOptions {
            create_token_accounts: Some(chain.fee_payer()),
            ..OpenOptions::default()
        };
        let (keys, instructions) = tx::open(funder.key(), h.mint, h.token_program(), args, options);
        chain
            .send(&instructions, &[&funder.wallet])
            .await
            .expect("open");
        h.track(keys.vault);
        h.track(tx::recipient_token(&keys));
        h.watch(keys.channel);
        h.watch(keys.vault);
        let channel = chain.channel(&keys.channel).await.unwrap().expect("opened");
        assert_eq!(
            (channel.deposited, channel.funder, channel.recipient),
            (deposit, funder.key(), recipient.pubkey())
        );
        opened.push(Opened {
            keys,
            generation: channel.generation,
            funder: funder.wallet,
        });
    }
    opened
}

#[tokio::test]
async fn open_settle_a_batch_close_and_refund_through_the_sdk() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
        assert_eq!(
            chain.mint_token_program(&h.mint).await.unwrap(),
            kind.program_id()
        );
        let recipient = h.wallet().await;
        let max = tx::max_settles_per_transaction();
        let n = 2 * max + 1;
        let channels = open_channels(&mut h, &chain, &recipient, n, 1_000).await;
        let recipient_token = tx::recipient_token(&channels[0].keys);
        assert_eq!(
            chain.token_balance(&recipient_token).await.unwrap(),
            Some(0)
        );

        // Settle every channel, in as few transactions as the packer says.
        let settlements: Vec<Settlement> = channels
            .iter()
            .enumerate()
            .map(|(i, c)| c.settlement(1, 100 + i as u64))
            .collect();
        let batches = tx::pack_settlements(&chain.fee_payer(), &[], &settlements).unwrap();
        assert_eq!(batches.len(), n.div_ceil(max));
        for batch in &batches {
            chain.send(batch, &[]).await.expect("settle batch");
        }
        let paid: u64 = (0..n as u64).map(|i| 100 + i).sum();
        assert_eq!(
            chain.token_balance(&recipient_token).await.unwrap(),
            Some(paid)
        );
        for (i, c) in channels.iter().enumerate() {
            let channel = chain.channel(&c.keys.channel).await.unwrap().unwrap();
            assert_eq!(channel.settled, 100 + i as u64);
            assert_eq!(
                chain.token_balance(&c.keys.vault).await.unwrap(),
                Some(1_000 - 100 - i as u64)
            );
        }

        // Cooperative close with a final voucher: the recipient signs.
        let first = &channels[0];
        let funder_token = tx::funder_token(&first.keys);
        let before = chain.token_balance(&funder_token).await.unwrap().unwrap();
        chain
            .send(
                &tx::close_with_voucher(&first.settlement(2, 400)),
                &[&recipient],
            )
            .await
            .expect("close");
        assert_eq!(chain.channel(&first.keys.channel).await.unwrap(), None);
        assert_eq!(chain.token_balance(&first.keys.vault).await.unwrap(), None);
        assert_eq!(
            chain.token_balance(&funder_token).await.unwrap(),
            Some(before + 600)
        );
        assert_eq!(
            chain.token_balance(&recipient_token).await.unwrap(),
            Some(paid + 300)
        );

        // Cooperative close without a voucher.
        let second = &channels[1];
        chain
            .send(&tx::close(&second.keys), &[&recipient])
            .await
            .expect("plain close");
        assert_eq!(chain.channel(&second.keys.channel).await.unwrap(), None);

        // The funder leaves alone: request, wait out the grace period, refund.
        let third = &channels[2];
        let funder_token = tx::funder_token(&third.keys);
        let before = chain.token_balance(&funder_token).await.unwrap().unwrap();
        chain
            .send(&tx::top_up(&third.keys, 500), &[&third.funder])
            .await
            .expect("top up");
        chain
            .send(&tx::request_close(&third.keys), &[&third.funder])
            .await
            .expect("request close");
        let err = chain.send(&tx::refund(&third.keys), &[]).await.unwrap_err();
        assert!(err.is_amp_error(AmpError::GracePeriodNotOver), "{err}");
        h.bank.advance_time(i64::from(GRACE));
        assert_eq!(chain.clock().await.unwrap().unix_timestamp, h.bank.now());
        chain
            .send(&tx::refund(&third.keys), &[])
            .await
            .expect("refund");
        assert_eq!(chain.channel(&third.keys.channel).await.unwrap(), None);
        // Deposit 1,000 + top-up 500 - settled (100 + 2).
        assert_eq!(
            chain.token_balance(&funder_token).await.unwrap(),
            Some(before - 500 + 1_500 - 102)
        );
        h.assert_conserved().await;
    }
}

#[tokio::test]
async fn the_computed_max_lands_and_one_more_does_not_fit() {
    let mut h = Harness::new(TokenKind::Token2022).await;
    let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
    let recipient = h.wallet().await;
    let max = tx::max_settles_per_transaction();
    let channels = open_channels(&mut h, &chain, &recipient, max + 1, 1_000).await;
    let pairs = |channels: &[Opened]| -> Vec<_> {
        channels
            .iter()
            .flat_map(|c| c.settlement(1, 10).instructions())
            .collect()
    };

    let err = chain.send(&pairs(&channels), &[]).await.unwrap_err();
    assert!(
        matches!(err, ChainError::TransactionTooLarge { size, max } if size > max),
        "{err}"
    );
    chain
        .send(&pairs(&channels[..max]), &[])
        .await
        .expect("the max fits");
    chain
        .send(&pairs(&channels[max..]), &[])
        .await
        .expect("the rest");
    let recipient_token = tx::recipient_token(&channels[0].keys);
    assert_eq!(
        chain.token_balance(&recipient_token).await.unwrap(),
        Some(10 * (max as u64 + 1))
    );
    h.assert_conserved().await;
}

#[tokio::test]
async fn delegated_and_own_settlements_pack_together() {
    let mut h = Harness::new(TokenKind::Token).await;
    let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
    let recipient = h.wallet().await;
    let channel = open_channels(&mut h, &chain, &recipient, 1, 10_000)
        .await
        .pop()
        .unwrap();
    let funder_token = tx::funder_token(&channel.keys);

    // Four delegates, each paying 10 + i from its own capped lane.
    let mut settlements = vec![channel.settlement(1, 5)];
    let mut lanes = vec![];
    for i in 0..4u64 {
        let delegate = Keypair::new();
        let terms = DelegationTerms {
            delegate: delegate.pubkey(),
            cap: 100,
            expires_at: 0,
        };
        chain
            .send(
                &[ix::delegate(&channel.keys, funder_token, terms)],
                &[&channel.funder],
            )
            .await
            .expect("delegate");
        let address = pda::delegation(&channel.keys.channel, &delegate.pubkey()).0;
        h.watch(address);
        let delegation: Delegation = chain.anchor_account(&address).await.unwrap().unwrap();
        let voucher = Voucher {
            lane: address,
            generation: delegation.generation,
            seq: 1,
            cumulative: 10 + i,
            expires_at: 0,
        };
        let signature = delegate.sign_message(&voucher.to_bytes()).into();
        let settlement = Settlement::delegated(channel.keys, delegate.pubkey(), voucher, signature);
        assert_eq!(settlement.lane(), address);
        settlements.push(settlement);
        lanes.push(address);
    }

    let groups = tx::group_settlements(&chain.fee_payer(), &[], &settlements).unwrap();
    let batches = tx::pack_settlements(&chain.fee_payer(), &[], &settlements).unwrap();
    assert_eq!(groups.len(), batches.len());
    assert!(
        batches.len() < settlements.len(),
        "{} settlements in {} transactions",
        settlements.len(),
        batches.len()
    );
    for batch in &batches {
        chain.send(batch, &[]).await.expect("settle batch");
    }
    let own = chain.channel(&channel.keys.channel).await.unwrap().unwrap();
    assert_eq!(own.settled, 5);
    for (i, address) in lanes.iter().enumerate() {
        let delegation: Delegation = chain.anchor_account(address).await.unwrap().unwrap();
        assert_eq!(delegation.settled, 10 + i as u64);
    }
    let recipient_token = tx::recipient_token(&channel.keys);
    assert_eq!(
        chain.token_balance(&recipient_token).await.unwrap(),
        Some(5 + 10 + 11 + 12 + 13)
    );
    h.assert_conserved().await;
}

#[tokio::test]
async fn refusals_keep_the_program_error() {
    let mut h = Harness::new(TokenKind::Token).await;
    let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
    let recipient = h.wallet().await;
    let c = open_channels(&mut h, &chain, &recipient, 1, 1_000)
        .await
        .remove(0);
    chain
        .send(&tx::settle(&c.settlement(1, 300)), &[])
        .await
        .unwrap();

    let before = h.snapshot().await;
    let stale = chain
        .send(&tx::settle(&c.settlement(2, 300)), &[])
        .await
        .unwrap_err();
    assert!(stale.is_amp_error(AmpError::StaleVoucher), "{stale}");
    assert!(stale.to_string().contains("StaleVoucher"), "{stale}");

    let mut forged = c.settlement(3, 900);
    let impostor = Keypair::new();
    forged.signer = impostor.pubkey();
    forged.signature = impostor.sign_message(&forged.voucher.to_bytes()).into();
    let err = chain.send(&tx::settle(&forged), &[]).await.unwrap_err();
    assert!(err.is_amp_error(AmpError::WrongSigner), "{err}");

    // A stranger cannot sign for the recipient, nor close in its own name.
    let stranger = Keypair::new();
    let err = chain
        .send(&tx::close(&c.keys), &[&stranger])
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::Signing(_)), "{err}");
    let mut accounts = ix::close_accounts(
        &c.keys,
        tx::recipient_token(&c.keys),
        tx::funder_token(&c.keys),
    );
    accounts.recipient = stranger.pubkey();
    let close = ix::build(
        accounts,
        amp_channel::instruction::Close {
            final_voucher: false,
        },
    );
    let err = chain.send(&[close], &[&stranger]).await.unwrap_err();
    assert!(err.is_amp_error(AmpError::NotRecipient), "{err}");
    assert_eq!(h.snapshot().await, before, "refusals changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bank_serves_concurrent_tasks() {
    let mut h = Harness::new(TokenKind::Token).await;
    let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
    let recipient = h.wallet().await;
    let channels = open_channels(&mut h, &chain, &recipient, 4, 1_000).await;
    let tasks: Vec<_> = channels
        .into_iter()
        .map(|c| {
            let chain = chain.clone();
            tokio::spawn(async move {
                for seq in 1..=3 {
                    let settlement = c.settlement(seq, 100 * seq);
                    chain.send(&tx::settle(&settlement), &[]).await?;
                }
                Ok::<_, ChainError>(c.keys)
            })
        })
        .collect();
    for task in tasks {
        let keys = task.await.unwrap().unwrap();
        assert_eq!(
            chain.channel(&keys.channel).await.unwrap().unwrap().settled,
            300
        );
    }
    let recipient_token = pda_recipient_token(&h, &recipient);
    assert_eq!(
        chain.token_balance(&recipient_token).await.unwrap(),
        Some(1_200)
    );
    h.assert_conserved().await;
}

fn pda_recipient_token(h: &Harness, recipient: &Keypair) -> solana_pubkey::Pubkey {
    amp_sdk::pda::associated_token(&recipient.pubkey(), &h.mint, &h.token_program())
}

/// A transaction built and signed outside the chain (an agent's, co-signed
/// by the fee payer) lands through `send_transaction` with `send`'s errors.
#[tokio::test]
async fn sends_a_transaction_signed_elsewhere() {
    let mut h = Harness::new(TokenKind::Token).await;
    let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
    let recipient = h.wallet().await;
    let c = open_channels(&mut h, &chain, &recipient, 1, 1_000)
        .await
        .remove(0);
    let (blockhash, last_valid) = chain.latest_blockhash().await.unwrap();
    let clock = chain.clock().await.unwrap();
    assert!(
        last_valid > clock.slot,
        "{last_valid} vs slot {}",
        clock.slot
    );

    // The funder signs first, the fee payer co-signs: both keys required.
    let payer = h.bank.payer().insecure_clone();
    let mut signed = solana_transaction::Transaction::new_with_payer(
        &tx::request_close(&c.keys),
        Some(&payer.pubkey()),
    );
    signed.partial_sign(&[&c.funder], blockhash);
    let err = chain.send_transaction(&signed).await.unwrap_err();
    assert!(matches!(err, ChainError::Signing(_)), "{err}");
    signed.partial_sign(&[&payer], blockhash);
    let signature = chain.send_transaction(&signed).await.unwrap();
    assert_eq!(signature, signed.signatures[0]);
    let channel = chain.channel(&c.keys.channel).await.unwrap().unwrap();
    assert!(channel.close_requested_at > 0, "request_close landed");

    // A refusal names the failing program, as `send`'s do.
    let mut again = solana_transaction::Transaction::new_with_payer(
        &tx::request_close(&c.keys),
        Some(&payer.pubkey()),
    );
    let (blockhash, _) = chain.latest_blockhash().await.unwrap();
    again.sign(&[&payer, &c.funder], blockhash);
    let err = chain.send_transaction(&again).await.unwrap_err();
    let ChainError::Transaction(failure) = &err else {
        panic!("{err}")
    };
    assert_eq!(failure.program, Some(amp_channel::ID), "{err}");
    assert_eq!(failure.signature, again.signatures[0]);
}

/// `send` sets a compute budget on the bank too: a limit from a simulation
/// and the policy's fixed price, which the payer pays as on a cluster.
#[tokio::test]
async fn the_bank_charges_the_compute_budget_send_sets() {
    let mut h = Harness::new(TokenKind::Token).await;
    let chain: Arc<dyn Chain> = Arc::new(h.bank.clone());
    let recipient = h.wallet().await;
    let c = open_channels(&mut h, &chain, &recipient, 1, 1_000)
        .await
        .remove(0);
    let payer = chain.fee_payer();
    let request = tx::request_close(&c.keys);

    // No fee market here: no price unless the policy fixes one.
    let budget = chain.compute_budget(&payer, &request).await.unwrap();
    let limit = amp_sdk::fees::limit_of(&budget[0]).unwrap();
    assert_eq!(amp_sdk::fees::price_of(&budget[1]), Some(0));
    assert!(
        (amp_sdk::fees::MIN_COMPUTE_UNIT_LIMIT..200_000).contains(&limit),
        "{limit}"
    );

    // One lamport a unit: the fee is the signatures' and the limit's.
    h.bank
        .set_fee_policy(amp_sdk::fees::FeePolicy::fixed(1_000_000));
    let budget = chain.compute_budget(&payer, &request).await.unwrap();
    assert_eq!(amp_sdk::fees::limit_of(&budget[0]), Some(limit));
    assert_eq!(amp_sdk::fees::price_of(&budget[1]), Some(1_000_000));
    let before = h.bank.lamports(&payer).await.unwrap();
    chain.send(&request, &[&c.funder]).await.unwrap();
    let paid = before - h.bank.lamports(&payer).await.unwrap();
    assert_eq!(paid, 2 * 5_000 + u64::from(limit));
}
