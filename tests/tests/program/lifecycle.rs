//! Happy paths of every instruction, on SPL Token and Token-2022.

use amp_channel::events::{ChannelClosed, ChannelOpened, ChannelSettled};
use amp_channel::state::LaneStatus;
use amp_sdk::instructions as ix;
use amp_tests::*;
use anchor_lang::{AnchorDeserialize, Discriminator};
use solana_signer::Signer;

#[tokio::test]
async fn full_life_with_cooperative_close() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let funder = h.party(10_000).await;
        let recipient = h.party(0).await;
        let funder_lamports = h.lamports(&funder.key()).await;

        let lane = h.open(&funder, &recipient, 1_000).await;
        let channel = h.channel(&lane.keys.channel).await.unwrap();
        assert_eq!(channel.deposited, 1_000);
        assert_eq!(channel.authorized_signer, funder.key());
        assert_eq!(h.tokens(&lane.keys.vault).await, 1_000);
        assert!(
            h.lamports(&funder.key()).await < funder_lamports,
            "funder fronts the rent"
        );

        for (seq, cumulative) in [(1, 100), (2, 250), (3, 600)] {
            let v = lane.voucher(seq, cumulative);
            h.settle(&lane, &funder.wallet, &v, &recipient.token)
                .await
                .unwrap();
            assert_eq!(h.tokens(&recipient.token).await, cumulative);
        }
        h.bank
            .process(
                &[ix::top_up(&lane.keys, funder.token, 500)],
                &[&funder.wallet],
            )
            .await
            .unwrap();
        assert_eq!(
            h.channel(&lane.keys.channel).await.unwrap().deposited,
            1_500
        );
        assert_eq!(h.tokens(&lane.keys.vault).await, 900);

        let last = lane.voucher(4, 1_200);
        let close = vec![
            sign(&funder.wallet, &last),
            ix::close(&lane.keys, recipient.token, funder.token, true),
        ];
        h.bank.process(&close, &[&recipient.wallet]).await.unwrap();

        assert_eq!(h.tokens(&recipient.token).await, 1_200);
        assert_eq!(h.tokens(&funder.token).await, 10_000 - 1_200);
        assert!(h.channel(&lane.keys.channel).await.is_none());
        assert!(h.bank.account(&lane.keys.vault).await.unwrap().is_none());
        assert_eq!(
            h.lamports(&funder.key()).await,
            funder_lamports,
            "all rent back with the funder"
        );
        h.assert_conserved().await;
    }
}

#[tokio::test]
async fn request_close_settle_in_grace_then_refund() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let funder = h.party(5_000).await;
        let recipient = h.party(0).await;
        let funder_lamports = h.lamports(&funder.key()).await;
        let lane = h.open(&funder, &recipient, 2_000).await;

        h.bank
            .process(&[ix::request_close(&lane.keys)], &[&funder.wallet])
            .await
            .unwrap();
        let requested = h.bank.now();
        let channel = h.channel(&lane.keys.channel).await.unwrap();
        assert_eq!(
            channel.status(requested),
            LaneStatus::Closing {
                refundable_at: requested + i64::from(GRACE)
            }
        );

        h.bank.advance_time(i64::from(GRACE) - 1);
        let v = lane.voucher(9, 700);
        h.settle(&lane, &funder.wallet, &v, &recipient.token)
            .await
            .unwrap();

        h.bank.advance_time(1);
        // Anyone may land the refund: here only the bank's fee payer signs.
        h.bank
            .process(&[ix::refund(&lane.keys, funder.token)], &[])
            .await
            .unwrap();

        assert_eq!(h.tokens(&recipient.token).await, 700);
        assert_eq!(h.tokens(&funder.token).await, 5_000 - 700);
        assert!(h.channel(&lane.keys.channel).await.is_none());
        assert_eq!(h.lamports(&funder.key()).await, funder_lamports);
        h.assert_conserved().await;
    }
}

#[tokio::test]
async fn events_describe_every_state_change() {
    let mut h = Harness::new(TokenKind::Token2022).await;
    let funder = h.party(1_000).await;
    let recipient = h.party(0).await;
    let nonce = h.next_nonce();
    let keys = h.keys(&funder.key(), &recipient.key(), nonce);
    let args = h.open_args(&recipient.key(), nonce, 800);
    let events = h
        .bank
        .process_with_events(&[ix::open(&keys, funder.token, args)], &[&funder.wallet])
        .await
        .unwrap();
    let opened = decode::<ChannelOpened>(&events);
    assert_eq!(
        (opened.channel, opened.deposit, opened.nonce),
        (keys.channel, 800, nonce)
    );
    h.track(keys.vault);
    let generation = h.channel(&keys.channel).await.unwrap().generation;
    assert_eq!(opened.generation, generation);
    let lane = Lane {
        keys,
        nonce,
        generation,
    };

    let v = lane.voucher(1, 300);
    let ixs = h.settle_ixs(&lane, &funder.wallet, &v, &recipient.token);
    let events = h.bank.process_with_events(&ixs, &[]).await.unwrap();
    let settled = decode::<ChannelSettled>(&events);
    assert_eq!(
        (settled.amount, settled.settled, settled.lane),
        (300, 300, keys.channel)
    );
    assert_eq!(settled.destination, recipient.token);

    let close = ix::close(&keys, recipient.token, funder.token, false);
    let events = h
        .bank
        .process_with_events(&[close], &[&recipient.wallet])
        .await
        .unwrap();
    let closed = decode::<ChannelClosed>(&events);
    assert_eq!(
        (closed.settled, closed.refunded, closed.cooperative),
        (300, 500, true)
    );
    h.assert_conserved().await;
}

#[tokio::test]
async fn hot_key_signs_for_a_cold_funder() {
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(1_000).await;
    let recipient = h.party(0).await;
    let hot = solana_keypair::Keypair::new();
    let nonce = h.next_nonce();
    let mut args = h.open_args(&recipient.key(), nonce, 1_000);
    args.authorized_signer = Some(hot.pubkey());
    let lane = h.open_with(&funder, args).await.unwrap();
    let v = lane.voucher(1, 400);
    h.settle(&lane, &hot, &v, &recipient.token).await.unwrap();
    assert_eq!(h.tokens(&recipient.token).await, 400);
    h.assert_conserved().await;
}

#[tokio::test]
async fn several_channels_settle_in_one_transaction() {
    for kind in TokenKind::ALL {
        let mut h = Harness::new(kind).await;
        let recipient = h.party(0).await;
        let mut ixs = vec![];
        let mut expected = 0;
        // As many `[ed25519, settle]` pairs as one packet carries.
        let fit = amp_sdk::transactions::max_settles_per_transaction() as u64;
        for i in 1..=fit {
            let funder = h.party(1_000).await;
            let lane = h.open(&funder, &recipient, 1_000).await;
            let v = lane.voucher(1, 100 * i);
            expected += 100 * i;
            ixs.extend(h.settle_ixs(&lane, &funder.wallet, &v, &recipient.token));
        }
        h.bank.process(&ixs, &[]).await.unwrap();
        assert_eq!(h.tokens(&recipient.token).await, expected);
        h.assert_conserved().await;
    }
}

/// The first event of type `E` among the emitted ones.
fn decode<E: AnchorDeserialize + Discriminator>(events: &[Vec<u8>]) -> E {
    events
        .iter()
        .find_map(|e| e.strip_prefix(E::DISCRIMINATOR))
        .map(|mut data| E::deserialize(&mut data).expect("event data"))
        .expect("event emitted")
}
