//! The agent's spend policy against real services: limits over rolling
//! windows that concurrent requests and restarts never pass, services it
//! may not pay refused before they are called, price ceilings held when a
//! service raises its price, a cap on what channels hold, the approval
//! hook, and the spend log that records every payment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::client::*;
use crate::support::eventually_within;
use amp_sdk::client::spend::{
    read_spend_log, spend_log_path, Approval, ApprovalKind, Approver, ServiceFilter, SpendEntry,
    SpendLimit,
};
use amp_sdk::client::{ClientError, Policy, PriceCeilings};
use amp_sdk::manifest::{Price, PricingMode};
use amp_sdk::store::{MemoryStore, VoucherStore};
use amp_tests::*;

const HOUR: Duration = Duration::from_secs(3_600);

fn logged(agent: &Agent) -> Vec<SpendEntry> {
    read_spend_log(&spend_log_path(&agent.file())).unwrap()
}

fn sum(entries: &[SpendEntry], service: Option<&str>) -> u64 {
    entries
        .iter()
        .filter(|e| service.is_none_or(|s| e.service == s))
        .map(|e| e.amount)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_for_concurrent_requests_and_after_a_restart() {
    let mut h = Harness::new(TokenKind::Token).await;
    let a = Server::start(&mut h, |b| b).await;
    let b = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let limited = |total: u64| Policy {
        limits: vec![SpendLimit {
            period: HOUR,
            total: Some(total),
            per_service: Some(60),
        }],
        ..policy(&h, 100_000, 1_000)
    };
    let client = agent.client(&h, limited(100)).await;

    let mut workers = Vec::new();
    for server in [&a, &b] {
        for _ in 0..6 {
            let (client, url) = (client.clone(), server.url("/v1/call"));
            workers.push(tokio::spawn(async move {
                let mut served = 0u64;
                loop {
                    match client.get(&url).await {
                        Ok(response) => {
                            response.text().await.unwrap();
                            served += 1;
                        }
                        Err(ClientError::SpendLimit { .. }) => return served,
                        Err(other) => panic!("{other}"),
                    }
                }
            }));
        }
    }
    let mut served = 0;
    for worker in workers {
        served += worker.await.unwrap();
    }
    // Demand beyond both limits: the total fills exactly, no service passes 60.
    assert_eq!(served * PER_CALL.rate, 100);
    let log = logged(&agent);
    assert_eq!(log.len() as u64, served, "one entry a payment");
    assert_eq!(sum(&log, None), 100);
    assert!(sum(&log, Some(&a.origin())) <= 60);
    assert!(sum(&log, Some(&b.origin())) <= 60);
    assert_eq!(client.budget().spent, 100);
    assert!(log.iter().all(|e| e.route == "/v1/call"
        && e.units == Some(1)
        && e.mode == Some(PricingMode::PerCall)));

    // A restart counts what the log holds: nothing more within the hour.
    drop(client);
    let client = agent.client(&h, limited(100)).await;
    let refused = client.get(&a.url("/v1/call")).await.unwrap_err();
    let ClientError::SpendLimit { exceeded, .. } = refused else {
        panic!("{refused}");
    };
    assert_eq!((exceeded.spent, exceeded.limit), (100, 100));
    assert_eq!(logged(&agent).len() as u64, served, "nothing more signed");
    // The limit, not anything else, stopped it.
    drop(client);
    let client = agent.client(&h, limited(110)).await;
    let service = [&a, &b]
        .into_iter()
        .find(|s| sum(&log, Some(&s.origin())) < 60)
        .unwrap();
    call(&client, &service.url("/v1/call"), 1).await;
    assert_eq!(sum(&logged(&agent), None), 110);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_frees_up_as_time_passes() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let terms = Policy {
        limits: vec![SpendLimit::total(20, Duration::from_secs(2))],
        ..policy(&h, 100_000, 1_000)
    };
    let client = agent.client(&h, terms).await;
    let url = server.url("/v1/call");
    call(&client, &url, 2).await;
    let refused = client.get(&url).await.unwrap_err();
    assert!(
        matches!(refused, ClientError::SpendLimit { .. }),
        "{refused}"
    );
    // Counted by sixtieths of the period: free again at most 1/60 late.
    let paid_at = logged(&agent)[1].at;
    let free_at = paid_at + 2_000 + 2_000 / 60 + 1;
    eventually_within(
        "the window to move past the payments",
        Duration::from_secs(5),
        async || client.get(&url).await.is_ok(),
    )
    .await;
    let third = &logged(&agent)[2];
    assert!(
        third.at >= paid_at + 2_000 - 2_000 / 60,
        "not before the window moved"
    );
    assert!(third.at <= free_at + 1_000, "soon after it did");
}

fn filtered(h: &Harness, allow: Vec<String>, deny: Vec<String>) -> Policy {
    Policy {
        services: ServiceFilter { allow, deny },
        ..policy(h, 100_000, 1_000)
    }
}

async fn refused_as_not_allowed(client: &amp_sdk::client::AmpClient, url: &str) {
    let refused = client.get(url).await.unwrap_err();
    assert!(
        matches!(refused, ClientError::NotAllowed { .. }),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_outside_the_filter_are_never_paid() {
    let mut h = Harness::new(TokenKind::Token).await;
    let allowed = Server::start(&mut h, |b| b).await;
    let other = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;

    // By origin: the other service is refused before any call to it.
    let by_origin = filtered(&h, vec![allowed.origin()], vec![]);
    let client = agent.client(&h, by_origin).await;
    call(&client, &allowed.url("/v1/call"), 1).await;
    refused_as_not_allowed(&client, &other.url("/v1/call")).await;
    assert_eq!(client.lanes().len(), 1);
    drop(client);

    // By recipient key: known only from the manifest, so discovery is the
    // one call made; no channel is opened.
    let by_key = filtered(&h, vec![allowed.recipient.key().to_string()], vec![]);
    let client = agent.client(&h, by_key).await;
    call(&client, &allowed.url("/v1/call"), 1).await;
    refused_as_not_allowed(&client, &other.url("/v1/call")).await;
    assert_eq!(client.lanes().len(), 1);
    drop(client);

    // Denied later: even the lane it holds is not used any more.
    let denied = filtered(&h, vec![], vec![allowed.origin()]);
    let client = agent.client(&h, denied).await;
    refused_as_not_allowed(&client, &allowed.url("/v1/call")).await;
    assert_eq!(sum(&logged(&agent), None), 2 * PER_CALL.rate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_raises_its_price_is_refused_before_signing() {
    let mut h = Harness::new(TokenKind::Token).await;
    let store: Arc<dyn VoucherStore> = Arc::new(MemoryStore::new());
    let first = Arc::clone(&store);
    let server = Server::start(&mut h, |b| b.shared_store(first)).await;
    let agent = Agent::new(&mut h).await;
    let terms = Policy {
        max_prices: PriceCeilings {
            per_call: Some(15),
            ..PriceCeilings::default()
        },
        ..policy(&h, 100_000, 1_000)
    };
    let client = agent.client(&h, terms).await;
    call(&client, &server.url("/v1/call"), 2).await;

    // The same service (recipient, store, address) now asks 20 a call.
    let dear = Price {
        mode: PricingMode::PerCall,
        rate: 20,
    };
    let server = server
        .restart(&h, |b| b.shared_store(store).price(dear))
        .await;
    let refused = client.get(&server.url("/v1/call")).await.unwrap_err();
    let ClientError::Terms { reason, .. } = &refused else {
        panic!("{refused}");
    };
    assert!(reason.contains("above the policy's 15"), "{reason}");
    // The third call's credential (30, at the old price) was refused; the
    // 40 the service asks for was never signed.
    assert_eq!(client.budget().spent, 30);
    assert_eq!(sum(&logged(&agent), None), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_hold_no_more_than_the_cap() {
    let mut h = Harness::new(TokenKind::Token).await;
    let a = Server::start(&mut h, |b| b).await;
    let b = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let terms = Policy {
        max_in_channels: Some(1_500),
        ..policy(&h, 100_000, 1_000)
    };
    let client = agent.client(&h, terms).await;
    call(&client, &a.url("/v1/call"), 1).await;
    let refused = client.get(&b.url("/v1/call")).await.unwrap_err();
    let ClientError::ChannelsFull {
        held, amount, max, ..
    } = refused
    else {
        panic!("{refused}");
    };
    assert_eq!((held, amount, max), (1_000, 1_000, 1_500));
    assert_eq!(client.lanes().len(), 1);
}

/// An approval hook that records every question and approves the first
/// `approve` of them.
fn recording(approve: usize) -> (Arc<Mutex<Vec<Approval>>>, Approver) {
    let asked: Arc<Mutex<Vec<Approval>>> = Arc::default();
    let seen = Arc::clone(&asked);
    let hook: Approver = Arc::new(move |question: Approval| {
        let mut seen = seen.lock().unwrap();
        seen.push(question);
        let approved = seen.len() <= approve;
        Box::pin(async move { approved })
    });
    (asked, hook)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approval_hook_is_asked_and_obeyed() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    // Approves the open and one payment, then nothing more.
    let (asked, hook) = recording(2);
    let client = agent
        .builder(&h, policy(&h, 100_000, 1_000))
        .approval(PER_CALL.rate, hook)
        .build()
        .await
        .unwrap();
    call(&client, &server.url("/v1/call"), 1).await;
    let refused = client.get(&server.url("/v1/call")).await.unwrap_err();
    assert!(
        matches!(
            refused,
            ClientError::NotApproved {
                kind: ApprovalKind::Payment,
                amount: 10,
                ..
            }
        ),
        "{refused}"
    );
    let asked = asked.lock().unwrap().clone();
    let kinds: Vec<_> = asked.iter().map(|q| (q.kind, q.amount)).collect();
    assert_eq!(
        kinds,
        [
            (ApprovalKind::Open, 1_000),
            (ApprovalKind::Payment, 10),
            (ApprovalKind::Payment, 10)
        ]
    );
    assert_eq!(
        client.budget().spent,
        10,
        "the refused payment was not signed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_ups_are_asked_about_too() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let (asked, hook) = recording(usize::MAX);
    // A deposit of 100 pays ten calls: the eleventh needs a top-up.
    let client = agent
        .builder(&h, policy(&h, 100_000, 100))
        .approval(50, hook)
        .build()
        .await
        .unwrap();
    call(&client, &server.url("/v1/call"), 12).await;
    let lane = client.lanes()[0].record.lane;
    let asked = asked.lock().unwrap().clone();
    assert_eq!((asked[0].kind, asked[0].amount), (ApprovalKind::Open, 100));
    assert!(
        asked
            .iter()
            .any(|q| q.kind == ApprovalKind::TopUp && q.lane == Some(lane) && q.amount >= 50),
        "{asked:?}"
    );
    // Payments of 10 are below the threshold: never asked.
    assert!(asked.iter().all(|q| q.kind != ApprovalKind::Payment));
}
