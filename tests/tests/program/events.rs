//! Events (`emit_cpi!`): every state change is described by an event whose
//! fields match the accounts, read from the simulated transaction's inner
//! instructions.

use amp_channel::events::{ChannelClosed, ChannelOpened, ChannelSettled};
use amp_sdk::instructions as ix;
use amp_tests::*;
use anchor_lang::{AnchorDeserialize, Discriminator};

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

/// The first event of type `E` among the emitted ones.
fn decode<E: AnchorDeserialize + Discriminator>(events: &[Vec<u8>]) -> E {
    events
        .iter()
        .find_map(|e| e.strip_prefix(E::DISCRIMINATOR))
        .map(|mut data| E::deserialize(&mut data).expect("event data"))
        .expect("event emitted")
}
