//! The budget holds whatever the agent does: several services, many
//! requests at once, and it is never passed, not even by one token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::support::client::*;
use amp_sdk::client::{ClientError, CloseOutcome};
use amp_sdk::manifest::ErrorCode;
use amp_sdk::store::LaneQuery;
use amp_tests::*;

const BUDGET: u64 = 2_345;
const WORKERS_PER_SERVICE: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_is_never_exceeded_across_services_and_concurrent_requests() {
    let mut h = Harness::new(TokenKind::Token).await;
    let mut servers = Vec::new();
    for rate in [7, 10, 13] {
        let price = amp_sdk::manifest::Price {
            mode: amp_sdk::manifest::PricingMode::PerCall,
            rate,
        };
        servers.push(Server::start(&mut h, |b| b.price(price)).await);
    }
    let agent = Agent::new(&mut h).await;
    let mut terms = policy(&h, BUDGET, 1_000);
    terms.seq_retries = 16;
    terms.lease = 8;
    let client = agent.client(&h, terms).await;

    let served = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for server in &servers {
        for _ in 0..WORKERS_PER_SERVICE {
            let (client, url, served) =
                (client.clone(), server.url("/v1/call"), Arc::clone(&served));
            workers.push(tokio::spawn(async move {
                loop {
                    match client.get(&url).await {
                        Ok(response) => {
                            response.text().await.unwrap();
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ClientError::BudgetExceeded { .. }) => return,
                        Err(ClientError::Refused { body, .. })
                            if body.error == ErrorCode::InvalidSeq => {}
                        Err(other) => panic!("{other}"),
                    }
                }
            }));
        }
    }
    for worker in workers {
        worker.await.unwrap();
    }

    // Every service now refuses to be paid more, whatever the price.
    for server in &servers {
        let mut extra = 0;
        loop {
            match client.get(&server.url("/v1/call")).await {
                Ok(response) => {
                    response.text().await.unwrap();
                    extra += 1;
                    assert!(extra < 5, "the budget let too many calls through");
                }
                Err(ClientError::BudgetExceeded { .. }) => break,
                Err(other) => panic!("{other}"),
            }
        }
    }

    // What the services can collect: the best voucher each holds.
    let mut collectable = 0;
    let mut owed = 0;
    for server in &servers {
        for lane in server
            .paywall
            .store()
            .find(LaneQuery::Unsettled)
            .await
            .unwrap()
        {
            collectable += lane.signed();
            owed += lane.owed;
        }
    }
    let status = client.budget();
    assert!(
        collectable <= BUDGET,
        "services hold vouchers for {collectable} > {BUDGET}"
    );
    assert!(
        status.spent <= BUDGET && status.held <= BUDGET,
        "{status:?}"
    );
    assert!(collectable >= owed, "every charge is covered by a voucher");
    // The budget was used, not abandoned early.
    assert!(
        collectable > BUDGET - 3 * 13,
        "only {collectable} of {BUDGET} used"
    );
    assert!(served.load(Ordering::Relaxed) > 150);

    // Settled on-chain: the same, never more.
    let mut settled = 0;
    for server in servers {
        server.paywall.settle_now().await;
        settled += h.tokens(&server.recipient.token).await;
    }
    assert_eq!(settled, collectable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_never_frees_budget() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let mut terms = policy(&h, 100, 1_000);
    terms.lease = 4;
    let client = agent.client(&h, terms.clone()).await;
    call(&client, &server.url("/v1/call"), 3).await;
    let before = client.budget();
    assert_eq!(before.spent, 30);
    assert!(before.held > 30, "a lease is held ahead: {before:?}");
    drop(client);

    // After a restart what was leased counts as signed: it may have been.
    let client = agent.client(&h, terms).await;
    let after = client.budget();
    assert_eq!(after.spent, before.held);
    let mut paid = 3;
    while let Ok(response) = client.get(&server.url("/v1/call")).await {
        response.text().await.unwrap();
        paid += 1;
    }
    assert!(paid * 10 <= 100);
    server.paywall.settle_now().await;
    assert!(h.tokens(&server.recipient.token).await <= 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_one_lane_pay_exactly_what_they_owe() {
    let mut h = Harness::new(TokenKind::Token).await;
    let server = Server::start(&mut h, |b| b).await;
    let agent = Agent::new(&mut h).await;
    let mut terms = policy(&h, 100_000, 10_000);
    terms.seq_retries = 32;
    let client = agent.client(&h, terms).await;

    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, url) = (client.clone(), server.url("/v1/call"));
        workers.push(tokio::spawn(async move {
            call(&client, &url, 50).await;
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    // 400 calls at 10, whatever order the credentials arrived in: the best
    // voucher is exactly what is owed, and so is the settlement.
    let lane = client.lane(&server.origin()).unwrap();
    assert_eq!(lane.record.owed, 4_000);
    assert_eq!(
        lane.signed, 4_000,
        "no credential signed beyond what was owed"
    );
    let outcome = client.close(&server.origin()).await.unwrap();
    assert!(
        matches!(outcome, CloseOutcome::Closed { settled: 4_000, .. }),
        "{outcome:?}"
    );
    assert_eq!(h.tokens(&server.recipient.token).await, 4_000);
}
