//! A service that vanishes does not keep the agent's money: the agent
//! requests the close on-chain and takes the refund after the grace period.

use crate::support::client::*;
use amp_sdk::client::CloseOutcome;
use amp_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_service_refunds_after_the_grace_period() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let origin = server.origin();
    let agent = Agent::new(&mut h).await;
    let client = agent.client(&h, policy(&h, 100_000, 3_000)).await;
    call(&client, &server.url("/v1/call"), 30).await;
    // The service settles part of it, then disappears for good.
    server.paywall.settle_now().await;
    let recipient = server.recipient.token;
    server.vanish().await;
    assert_eq!(h.tokens(&recipient).await, 300);
    let lane = client.lane(&origin).unwrap().record;

    let outcome = client.close(&origin).await.unwrap();
    let CloseOutcome::Closing { refundable_at } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(refundable_at, h.bank.now() + i64::from(GRACE));
    let channel = h.channel(&lane.lane).await.unwrap();
    assert_ne!(channel.close_requested_at, 0);

    // Not before the grace period is over...
    assert!(client.refund_due().await.unwrap().is_empty());
    h.bank.advance_time(i64::from(GRACE) - 1);
    assert!(client.refund_due().await.unwrap().is_empty());
    assert!(h.channel(&lane.lane).await.is_some());

    // ...and across a restart of the agent, right after it.
    drop(client);
    h.bank.advance_time(1);
    let client = agent.client(&h, policy(&h, 100_000, 3_000)).await;
    assert_eq!(client.refund_due().await.unwrap(), vec![lane.lane]);
    assert!(h.channel(&lane.lane).await.is_none());
    assert_eq!(h.tokens(&agent.party.token).await, AGENT_FUNDS - 300);
    assert!(client.lanes().is_empty());
    assert_eq!(client.budget().spent, 300, "what was settled stays spent");
}
