//! Several server replicas on one PostgreSQL database (needs
//! `AMP_TEST_POSTGRES_URL`; without it the test says it was skipped).
//!
//! `two_replicas_in_one_process`: two paywalls, each with its own store
//! connection pool, on one embedded bank. Every credential is sent to both
//! replicas at once: each seq is accepted once, owed is exact. A metered
//! request in flight on one replica holds the lane's credit on the other. A
//! cooperative close on one replica closes the lane for both. Both settlers
//! settle at once: each lane is settled by exactly one of them, none is
//! tried twice. A replica that dies holding a lane's settlement lease hands
//! it over when the lease runs out.
//!
//! Replicas as separate processes (`amp serve` on `RpcChain` against `amp
//! localnet`, one of them SIGKILLed mid-settlement) are tested with the
//! other cross-process tests, in `app/tests/localnet/replicas.rs`.
//!
//! The hammering harness is in `support::replicas`; this file holds the test.

use std::time::{Duration, Instant};

use amp_sdk::manifest::ErrorCode;
use amp_sdk::store::{self, Durability, LaneId, VoucherStore};
use amp_tests::*;
use http::StatusCode;

use crate::support::postgres;
use crate::support::replicas::*;
use crate::support::server::{builder, client, credential_headers, Server, PER_SECOND};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_one_process() {
    let Some(scope) = postgres::Scope::new("two_replicas_in_one_process").await else {
        return;
    };
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(10_000_000).await;
    let recipient = h.party(0).await;
    let mut lanes = Vec::new();
    for _ in 0..4 {
        lanes.push(h.open(&funder, &recipient, 100_000).await);
    }
    let credit_lane = h.open(&funder, &recipient, 100_000).await;
    let url = scope.url("amp_lease=1");
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = store::open(&url, Durability::Full).await.unwrap();
        let paywall = builder(&h, &recipient.wallet)
            .credit(1_000)
            .shared_store(store)
            .start()
            .await
            .unwrap();
        replicas.push(Server::start(paywall).await);
    }
    let b = replicas.pop().unwrap();
    let a = replicas.pop().unwrap();
    let client = client();
    let paid = [a.url("/v1/call"), b.url("/v1/call")];

    // Every credential to both replicas at once, four clients per lane.
    let work = credentials(&funder.wallet, &lanes, 1, 40);
    let outcomes = hammer(&client, &paid, 2, work, 1, 4).await;
    let accepted = check_exact(&outcomes, &[0; 4]);
    for (lane, accepted) in lanes.iter().zip(&accepted) {
        let id = LaneId {
            lane: lane.keys.channel,
            generation: lane.generation,
        };
        let state = b.paywall.store().lane(id).await.unwrap().unwrap();
        assert_eq!(
            state.owed,
            accepted.count * PRICE,
            "the store agrees with the receipts"
        );
        assert_eq!(
            state.signed(),
            accepted.signed(),
            "the best voucher is kept"
        );
    }

    // A metered request in flight on A holds the lane's credit; B sees it.
    let slow = {
        let headers = credential_headers(&funder.wallet, &credit_lane.voucher(1, 0));
        let (client, url) = (client.clone(), a.url("/v1/slow?ms=700"));
        tokio::spawn(async move { pay(&client, &url, headers).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let headers = credential_headers(&funder.wallet, &credit_lane.voucher(2, 0));
    let (status, _, code) = pay(&client, &b.url("/v1/tokens?units=1"), headers).await;
    assert_eq!(
        (status, code),
        (StatusCode::PAYMENT_REQUIRED, Some(ErrorCode::Underfunded)),
        "the credit is held by the request in flight on the other replica"
    );
    assert_eq!(slow.await.unwrap().0, StatusCode::OK);
    let credit_id = LaneId {
        lane: credit_lane.keys.channel,
        generation: credit_lane.generation,
    };
    let mut owed = 0;
    for _ in 0..100 {
        let state = b.paywall.store().lane(credit_id).await.unwrap().unwrap();
        if state.reserved == 0 && state.owed > 0 {
            owed = state.owed;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        owed >= 700 * PER_SECOND.rate / 1_000,
        "charged {owed} for 700 ms"
    );
    let headers = credential_headers(&funder.wallet, &credit_lane.voucher(3, owed));
    let (status, _, _) = pay(&client, &b.url("/v1/tokens?units=1"), headers).await;
    assert_eq!(status, StatusCode::OK, "released when it finished");

    // A cooperative close on B closes the lane for A too.
    let closing = lanes[2];
    let owed_closing = accepted[2].count * PRICE;
    let headers = credential_headers(&funder.wallet, &closing.voucher(1_000, owed_closing));
    let close = client
        .post(b.url(amp_sdk::manifest::CLOSE_PATH))
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(
        close.status(),
        StatusCode::OK,
        "{}",
        close.text().await.unwrap()
    );
    let headers = credential_headers(
        &funder.wallet,
        &closing.voucher(1_001, owed_closing + PRICE),
    );
    let (status, _, code) = pay(&client, &a.url("/v1/call"), headers).await;
    assert_eq!((status, code), (StatusCode::GONE, Some(ErrorCode::Closed)));

    // Both settlers at once: every unsettled lane settled by exactly one.
    let (sa, sb) = tokio::join!(a.paywall.settle_now(), b.paywall.settle_now());
    assert_eq!(sa.lanes_settled + sb.lanes_settled, 4, "{sa:?} {sb:?}");
    assert_eq!(sa.already_settled + sb.already_settled, 0, "{sa:?} {sb:?}");
    assert_eq!(sa.failures + sb.failures, 0, "{sa:?} {sb:?}");
    for (i, lane) in lanes.iter().enumerate() {
        let channel = h.channel(&lane.keys.channel).await;
        if i == 2 {
            assert!(channel.is_none(), "closed cooperatively");
        } else {
            assert_eq!(channel.unwrap().settled, accepted[i].signed());
        }
    }

    // A replica that dies leading a lane: the other takes it over once the
    // lease runs out.
    let taken = lanes[0];
    let more = credentials(&funder.wallet, &[taken], 100, 3);
    for headers in more.into_iter().flatten() {
        assert_eq!(
            pay(&client, &a.url("/v1/call"), headers).await.0,
            StatusCode::OK
        );
    }
    let taken_id = LaneId {
        lane: taken.keys.channel,
        generation: taken.generation,
    };
    assert_eq!(
        a.paywall.store().claim(&[taken_id]).await.unwrap(),
        vec![taken_id]
    );
    a.crash().await;
    let died = Instant::now();
    let status = b.paywall.settle_now().await;
    assert_eq!(status.lanes_settled, sb.lanes_settled, "still A's lane");
    let signed_taken = 102 * PRICE;
    assert_eq!(
        h.channel(&taken.keys.channel).await.unwrap().settled,
        accepted[0].signed()
    );
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = b.paywall.settle_now().await;
        if status.lanes_settled > sb.lanes_settled {
            break;
        }
        assert!(
            died.elapsed() < Duration::from_secs(20),
            "never taken over: {status:?}"
        );
    }
    assert!(
        died.elapsed() >= Duration::from_millis(500),
        "taken over before the lease ran out"
    );
    assert_eq!(
        h.channel(&taken.keys.channel).await.unwrap().settled,
        signed_taken
    );

    let status = b.stop().await;
    assert_eq!(status.pending_lanes, 0, "{status:?}");
    // The closed lane paid its best voucher, which covers what it owed.
    assert!(accepted[2].signed() >= owed_closing);
    let mut total = signed_taken + accepted[2].signed() + owed;
    for i in [1, 3] {
        total += accepted[i].signed();
    }
    assert_eq!(h.tokens(&recipient.token).await, total);
    h.assert_conserved().await;
    scope.drop().await;
}
