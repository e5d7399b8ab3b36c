//! The paywall on a real axum server on loopback, against the embedded bank:
//! discovery, every paid flow, settlement and cooperative close.

use std::time::Duration;

use crate::support::server::*;
use amp_channel::state::DelegationTerms;
use amp_sdk::instructions as ix;
use amp_sdk::manifest::{ErrorCode, Manifest, MANIFEST_PATH};
use amp_sdk::pda;
use amp_sdk::voucher::Voucher;
use amp_tests::*;
use http::HeaderMap;
use solana_keypair::Keypair;
use solana_signer::Signer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_free_routes() {
    let s = Scene::new().await;
    let reply = s.get(MANIFEST_PATH, HeaderMap::new()).await;
    reply.ok();
    let manifest: Manifest = serde_json::from_slice(reply.body.as_deref().unwrap()).unwrap();
    assert_eq!(&manifest, s.server.paywall.manifest());
    assert_eq!(manifest.recipient, s.recipient.key());
    assert_eq!(manifest.program_id, amp_channel::ID);
    assert_eq!(manifest.mints[0].mint, s.h.mint);
    assert_eq!(manifest.mints[0].decimals, DECIMALS);
    assert_eq!(manifest.pricing.default, PER_CALL);
    assert_eq!(manifest.pricing.routes["/v1/tokens"], PER_TOKEN);
    assert_eq!(
        (manifest.credit, manifest.min_grace_period),
        (CREDIT, GRACE)
    );

    assert_eq!(s.get("/free", HeaderMap::new()).await.ok().text(), "free");

    // A paid route without a credential: 402 with the same manifest.
    let body = s
        .get("/v1/call", HeaderMap::new())
        .await
        .expect(ErrorCode::NoChannel);
    assert_eq!(body.manifest.as_ref(), Some(&manifest));
    // So is an unknown path (priced by default), and the settler's status is served.
    s.get("/nope", HeaderMap::new())
        .await
        .expect(ErrorCode::NoChannel);
    let status = s.get(amp_sdk::server::STATUS_PATH, HeaderMap::new()).await;
    let json: serde_json::Value =
        serde_json::from_slice(status.ok().body.as_deref().unwrap()).unwrap();
    assert_eq!(json["amount_settled"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_charges_settles_and_reports() {
    let mut s = Scene::new().await;
    for seq in 1..=5u64 {
        let reply = s.get("/v1/call", s.credential(seq, seq * 10)).await;
        assert_eq!(
            reply.ok().text(),
            format!("{} {seq} {}", s.lane.keys.channel, seq * 10),
            "the handler sees the paying lane"
        );
        let receipt = reply.receipt();
        assert_eq!(receipt.owed, seq * 10);
        assert_eq!(receipt.remaining, DEPOSIT - seq * 10);
    }
    let status = s.server.paywall.settle_now().await;
    assert_eq!((status.lanes_settled, status.amount_settled), (1, 50));
    assert_eq!(s.h.tokens(&s.recipient.token).await, 50);
    assert_eq!(s.h.channel(&s.lane.keys.channel).await.unwrap().settled, 50);

    // Settling again pays nothing; a voucher settled by someone else is skipped.
    s.get("/v1/call", s.credential(6, 60)).await.ok();
    let v = s.lane.voucher(6, 60);
    s.h.settle(&s.lane, &s.funder.wallet, &v, &s.recipient.token)
        .await
        .unwrap();
    let status = s.server.paywall.settle_now().await;
    assert_eq!(status.already_settled, 1);
    assert_eq!(status.amount_settled, 50);
    assert_eq!(s.h.tokens(&s.recipient.token).await, 60);
    assert_eq!(status.pending_lanes, 0);
    s.h.assert_conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code() {
    let mut s = Scene::new().await;
    s.get("/v1/call", s.credential(1, 10)).await.ok();

    // AMP_MALFORMED: part of a credential.
    let mut partial = s.credential(2, 20);
    partial.remove("amp-sig");
    let body = s
        .get("/v1/call", partial)
        .await
        .expect(ErrorCode::Malformed);
    assert!(body.message.contains("AMP-Sig"), "{}", body.message);

    // AMP_NO_CHANNEL: nothing at the lane address.
    let nowhere = Voucher {
        lane: random_key(),
        ..s.lane.voucher(2, 20)
    };
    s.get("/v1/call", credential_headers(&s.funder.wallet, &nowhere))
        .await
        .expect(ErrorCode::NoChannel);

    // AMP_UNDERFUNDED: below owed + price, and above what the lane can pay.
    let body = s
        .get("/v1/call", s.credential(2, 19))
        .await
        .expect(ErrorCode::Underfunded);
    assert_eq!((body.required, body.owed), (Some(20), Some(10)));
    s.get("/v1/call", s.credential(2, DEPOSIT + 1))
        .await
        .expect(ErrorCode::Underfunded);

    // AMP_INVALID_SIG: another key, or another generation.
    let stranger = Keypair::new();
    let forged = credential_headers(&stranger, &s.lane.voucher(2, 20));
    s.get("/v1/call", forged)
        .await
        .expect(ErrorCode::InvalidSig);
    let old = Voucher {
        generation: s.lane.generation - 1,
        ..s.lane.voucher(2, 20)
    };
    s.get("/v1/call", credential_headers(&s.funder.wallet, &old))
        .await
        .expect(ErrorCode::InvalidSig);

    // AMP_EXPIRED: dead, or too close to death to be settled.
    let now = s.h.bank.now();
    for expires_at in [now - 1, now + 30] {
        let v = Voucher {
            expires_at,
            ..s.lane.voucher(2, 20)
        };
        s.get("/v1/call", credential_headers(&s.funder.wallet, &v))
            .await
            .expect(ErrorCode::Expired);
    }
    let lasting = Voucher {
        expires_at: now + 3_600,
        ..s.lane.voucher(2, 20)
    };
    s.get("/v1/call", credential_headers(&s.funder.wallet, &lasting))
        .await
        .ok();

    // AMP_INVALID_SEQ: a replay.
    let body = s
        .get("/v1/call", s.credential(2, 30))
        .await
        .expect(ErrorCode::InvalidSeq);
    assert_eq!(body.owed, Some(20));

    // AMP_WRONG_CHANNEL: another recipient, an unaccepted mint, a short grace period.
    let other = s.h.party(0).await;
    let elsewhere = s.h.open(&s.funder, &other, 500).await;
    let v = elsewhere.voucher(1, 10);
    s.get("/v1/call", credential_headers(&s.funder.wallet, &v))
        .await
        .expect(ErrorCode::WrongChannel);

    let nonce = s.h.next_nonce();
    let mut args = s.h.open_args(&s.recipient.key(), nonce, 500);
    args.grace_period = 60;
    let short = s.h.open_with(&s.funder, args).await.unwrap();
    let v = short.voucher(1, 10);
    let body = s
        .get("/v1/call", credential_headers(&s.funder.wallet, &v))
        .await
        .expect(ErrorCode::WrongChannel);
    assert!(body.message.contains("grace"), "{}", body.message);

    let foreign = s.h.other_mint(TokenKind::Token2022, &[], |_| vec![]).await;
    let funder_foreign = s.h.other_token_account(&foreign, &s.funder.key()).await;
    s.h.mint_other(&foreign, &funder_foreign, 1_000).await;
    let nonce = s.h.next_nonce();
    let keys = ix::ChannelKeys::new(
        s.funder.key(),
        s.recipient.key(),
        nonce,
        foreign.mint,
        foreign.token_program,
    );
    let open = ix::open(
        &keys,
        funder_foreign,
        s.h.open_args(&s.recipient.key(), nonce, 500),
    );
    s.h.bank
        .process(&[open], &[&s.funder.wallet])
        .await
        .unwrap();
    let generation = s.h.channel(&keys.channel).await.unwrap().generation;
    let v = Voucher {
        lane: keys.channel,
        generation,
        seq: 1,
        cumulative: 10,
        expires_at: 0,
    };
    let body = s
        .get("/v1/call", credential_headers(&s.funder.wallet, &v))
        .await
        .expect(ErrorCode::WrongChannel);
    assert!(body.message.contains("mint"), "{}", body.message);

    // AMP_CLOSED: the funder asked to close; the settler is told at once.
    s.h.request_close(&s.lane, &s.funder.wallet).await;
    s.server.paywall.refresh().await.unwrap();
    s.get("/v1/call", s.credential(3, 30))
        .await
        .expect(ErrorCode::Closed);
    eventually("the closing lane to be settled", async || {
        s.server.paywall.status().lanes_settled == 1
    })
    .await;
    assert_eq!(s.h.tokens(&s.recipient.token).await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_429() {
    let s = Scene::with(|b| {
        b.rate_limit(amp_sdk::server::RateLimit {
            per_second: 0.01,
            burst: 2,
        })
    })
    .await;
    s.get("/v1/call", s.credential(1, 10)).await.ok();
    s.get("/v1/call", s.credential(2, 20)).await.ok();
    s.get("/v1/call", s.credential(3, 30))
        .await
        .expect(ErrorCode::RateExceeded);
    // A refused request charged nothing.
    s.server.paywall.refresh().await.unwrap();
    let state = s
        .server
        .paywall
        .store()
        .find(amp_sdk::store::LaneQuery::Unsettled)
        .await
        .unwrap();
    assert_eq!(state[0].owed, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_token_uses_the_credit_and_no_more() {
    let s = Scene::new().await;
    // Nothing signed yet beyond 0: the credit pays for the first request.
    let reply = s.get("/v1/tokens?units=5", s.credential(1, 0)).await;
    assert_eq!(
        reply.ok().text(),
        format!("reported; at most Some({})", CREDIT / 2)
    );
    assert_eq!(
        reply.receipt().owed,
        10,
        "units reported before the response count"
    );
    // The next voucher must cover the 10 charged.
    let body = s
        .get("/v1/tokens?units=1", s.credential(2, 9))
        .await
        .expect(ErrorCode::Underfunded);
    assert_eq!((body.required, body.owed), (Some(10), Some(10)));
    // A handler that overshoots is charged at most amount + credit.
    let reply = s.get("/v1/tokens?units=1000", s.credential(3, 10)).await;
    assert_eq!(reply.ok().receipt().owed, 10 + CREDIT);
    let body = s
        .get("/v1/call", s.credential(4, 10 + CREDIT))
        .await
        .expect(ErrorCode::Underfunded);
    assert_eq!(body.required, Some(10 + CREDIT + 10));
    s.get("/v1/call", s.credential(5, 120)).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_byte_and_per_second() {
    let s = Scene::new().await;
    let reply = s.get("/v1/bytes?n=40", s.credential(1, 40)).await;
    assert_eq!(reply.ok().body.as_ref().unwrap().len(), 40);
    assert_eq!(
        reply.receipt().owed,
        40,
        "a sized body is charged in the head"
    );
    // 60 + credit 100 = 160 payable, 40 owed: at most 120 more bytes.
    let cut = s
        .client
        .get(s.server.url("/v1/bytes?n=500"))
        .headers(s.credential(2, 60))
        .send()
        .await;
    let received = match cut {
        Ok(response) => response.bytes().await.ok(),
        Err(_) => None,
    };
    assert!(
        received.is_none(),
        "the body is cut where the allowance ends"
    );
    let body = s
        .get("/v1/call", s.credential(3, 100))
        .await
        .expect(ErrorCode::Underfunded);
    assert_eq!(body.owed, Some(160));

    // per_second: 1 per millisecond; 50 ms is charged at least 50.
    let reply = s.get("/v1/slow?ms=50", s.credential(4, 160)).await;
    reply.ok();
    let body = s
        .get("/v1/call", s.credential(5, 160))
        .await
        .expect(ErrorCode::Underfunded);
    let owed = body.owed.unwrap();
    assert!((160 + 50..=160 + CREDIT).contains(&owed), "{owed}");
    // A request longer than its allowance is stopped.
    let cut = s.get("/v1/slow?ms=5000", s.credential(6, owed)).await;
    let body = cut.expect(ErrorCode::Underfunded);
    assert_eq!(body.owed, Some(owed + CREDIT));
    let body = s
        .get("/v1/call", s.credential(7, owed))
        .await
        .expect(ErrorCode::Underfunded);
    assert_eq!(body.owed, Some(owed + CREDIT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegate_lanes_pay_up_to_their_cap_and_settle() {
    let mut s = Scene::new().await;
    let delegate = Keypair::new();
    let terms = DelegationTerms {
        delegate: delegate.pubkey(),
        cap: 300,
        expires_at: 0,
    };
    s.h.bank
        .process(
            &[ix::delegate(&s.lane.keys, s.funder.token, terms)],
            &[&s.funder.wallet],
        )
        .await
        .unwrap();
    let address = pda::delegation(&s.lane.keys.channel, &delegate.pubkey()).0;
    let account = s.h.bank.account(&address).await.unwrap().unwrap();
    let delegation: amp_channel::state::Delegation =
        anchor_lang::AccountDeserialize::try_deserialize(&mut account.data.as_slice()).unwrap();
    let voucher = |seq, cumulative| Voucher {
        lane: address,
        generation: delegation.generation,
        seq,
        cumulative,
        expires_at: 0,
    };
    let reply = s
        .get("/v1/call", credential_headers(&delegate, &voucher(1, 10)))
        .await;
    assert!(reply.ok().text().starts_with(&address.to_string()));
    assert_eq!(reply.receipt().remaining, 290, "the cap is the limit");
    s.get("/v1/call", credential_headers(&delegate, &voucher(2, 301)))
        .await
        .expect(ErrorCode::Underfunded);
    // The funder's key does not sign for the delegate's lane.
    s.get(
        "/v1/call",
        credential_headers(&s.funder.wallet, &voucher(2, 20)),
    )
    .await
    .expect(ErrorCode::InvalidSig);
    // The own lane is unaffected, and both settle.
    s.get("/v1/call", s.credential(1, 10)).await.ok();
    let status = s.server.paywall.settle_now().await;
    assert_eq!((status.lanes_settled, status.amount_settled), (2, 20));
    assert_eq!(
        status.transactions, 1,
        "own and delegated lanes pack together"
    );
    assert_eq!(s.h.tokens(&s.recipient.token).await, 20);

    // Closing the channel cooperatively settles and closes the delegation first.
    s.get("/v1/call", credential_headers(&delegate, &voucher(3, 50)))
        .await
        .ok();
    s.close(s.credential(2, 10)).await.ok();
    assert!(s.h.bank.account(&address).await.unwrap().is_none());
    assert!(s.h.channel(&s.lane.keys.channel).await.is_none());
    assert_eq!(s.h.tokens(&s.recipient.token).await, 60);
    assert_eq!(s.h.tokens(&s.funder.token).await, FUNDS - 60);
    s.h.assert_conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_close_refunds_at_once() {
    let mut s = Scene::new().await;
    for seq in 1..=3u64 {
        s.get("/v1/call", s.credential(seq, seq * 10)).await.ok();
    }
    // The final voucher must cover what is owed, and carry a new seq.
    s.close(s.credential(4, 29))
        .await
        .expect(ErrorCode::Underfunded);
    s.close(s.credential(3, 30))
        .await
        .expect(ErrorCode::InvalidSeq);
    s.close(HeaderMap::new()).await.expect(ErrorCode::NoChannel);
    let reply = s.close(s.credential(4, 30)).await;
    let json: serde_json::Value =
        serde_json::from_slice(reply.ok().body.as_deref().unwrap()).unwrap();
    assert_eq!(json["closed"], true);
    assert_eq!(json["settled"], "30");
    assert_eq!(reply.receipt().owed, 30);
    assert!(s.h.channel(&s.lane.keys.channel).await.is_none());
    assert_eq!(s.h.tokens(&s.recipient.token).await, 30);
    assert_eq!(s.h.tokens(&s.funder.token).await, FUNDS - 30);
    // Nothing is served on the closed lane (the store remembers why its
    // account is gone: 410, not 402); nothing is left to settle.
    s.get("/v1/call", s.credential(5, 40))
        .await
        .expect(ErrorCode::Closed);
    let status = s.server.paywall.settle_now().await;
    assert_eq!((status.lanes_settled, status.pending_lanes), (0, 0));
    s.h.assert_conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_by_threshold_interval_and_at_shutdown() {
    let threshold = amp_sdk::server::SettleConfig {
        threshold: 30,
        ..manual_settlement()
    };
    let s = Scene::with(|b| b.settle(threshold)).await;
    for seq in 1..=2u64 {
        s.get("/v1/call", s.credential(seq, seq * 10)).await.ok();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        s.server.paywall.status().lanes_settled,
        0,
        "below the threshold"
    );
    s.get("/v1/call", s.credential(3, 30)).await.ok();
    eventually("the threshold settlement", async || {
        s.server.paywall.status().amount_settled == 30
    })
    .await;

    let interval = amp_sdk::server::SettleConfig {
        interval: Duration::from_millis(200),
        ..manual_settlement()
    };
    let mut t = Scene::with(|b| b.settle(interval)).await;
    t.get("/v1/call", t.credential(1, 10)).await.ok();
    eventually("the interval settlement", async || {
        t.server.paywall.status().amount_settled == 10
    })
    .await;
    assert_eq!(t.h.tokens(&t.recipient.token).await, 10);

    s.get("/v1/call", s.credential(4, 40)).await.ok();
    let Scene {
        server,
        mut h,
        recipient,
        ..
    } = s;
    let status = server.stop().await;
    assert_eq!(status.amount_settled, 40, "shutdown settles the rest");
    assert_eq!(h.tokens(&recipient.token).await, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toml_configuration_starts_a_paywall() {
    let s = Scene::new().await;
    let text = format!(
        r#"
min_deposit = "100"
min_grace_period = {GRACE}
credit = "5"
free = ["/free"]
refresh = 0.5

[[mints]]
mint = "{}"

[pricing.default]
mode = "per_call"
rate = "7"

[settle]
enabled = false
"#,
        s.h.mint
    );
    let file =
        format!("wallet = \"id.json\"\ncluster = \"localnet\"\nstore = \"v.sqlite\"\n{text}");
    let config = amp_sdk::server::FileConfig::from_toml(&file)
        .unwrap()
        .service;
    let chain: std::sync::Arc<dyn amp_sdk::chain::Chain> = std::sync::Arc::new(s.h.bank.clone());
    let paywall = amp_sdk::server::Paywall::builder(chain, s.recipient.wallet.insecure_clone())
        .config(config)
        .start()
        .await
        .unwrap();
    let server = Server::start(paywall).await;
    let client = client();
    let url = server.url("/v1/call");
    let reply = send(&client, client.get(url), s.credential(1, 7)).await;
    assert_eq!(reply.ok().receipt().owed, 7);
}
