//! The operator metrics and the status per mint: known traffic on two
//! routes of a paywall on loopback, a settlement, then a scrape over HTTP
//! whose counters must be exactly that traffic.

use std::collections::BTreeMap;

use crate::support::server::*;
use amp_sdk::manifest::ErrorCode;
use amp_sdk::server::{MetricsConfig, ServiceStatus, SettleReason, METRICS_PATH, STATUS_PATH};
use http::{HeaderMap, StatusCode};

const TOKEN: &str = "metrics-test-token-0123";

/// A scrape: each series (`name{labels}`) and its value.
type Scrape = BTreeMap<String, f64>;

async fn scrape(s: &Scene, token: Option<&str>) -> (StatusCode, String) {
    let mut request = s.client.get(s.server.url(METRICS_PATH));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    if status == StatusCode::OK {
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            amp_sdk::server::METRICS_CONTENT_TYPE
        );
    }
    (status, response.text().await.unwrap())
}

fn parse(text: &str) -> Scrape {
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// The series of `scrape` whose name starts with `prefix`.
fn family(scrape: &Scrape, prefix: &str) -> BTreeMap<String, f64> {
    scrape
        .iter()
        .filter(|(series, _)| series.starts_with(prefix))
        .map(|(series, value)| (series.clone(), *value))
        .collect()
}

fn series<const N: usize>(entries: [(String, f64); N]) -> BTreeMap<String, f64> {
    entries.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_known_traffic_exactly() {
    let s = Scene::with(|b| {
        b.route("/v1/call", PER_CALL)
            .metrics(MetricsConfig::with_token(TOKEN))
    })
    .await;
    let mint = s.h.mint;

    // On /v1/call: three paid (30 charged), a replay and an underpaid voucher.
    for seq in 1..=3u64 {
        s.get("/v1/call", s.credential(seq, seq * 10)).await.ok();
    }
    s.get("/v1/call", s.credential(3, 40))
        .await
        .expect(ErrorCode::InvalidSeq);
    s.get("/v1/call", s.credential(4, 30))
        .await
        .expect(ErrorCode::Underfunded);
    // On /v1/tokens: one paid, 5 tokens at 2 each; one without a credential.
    let reply = s.get("/v1/tokens?units=5", s.credential(5, 40)).await;
    assert_eq!(reply.ok().receipt().owed, 40);
    s.get("/v1/tokens", HeaderMap::new())
        .await
        .expect(ErrorCode::NoChannel);
    // A path priced by the default counts under `default`, never its path.
    s.get("/nope/7", HeaderMap::new())
        .await
        .expect(ErrorCode::NoChannel);
    // Free paths are not counted.
    s.get("/free", HeaderMap::new()).await.ok();

    // The metered charge is recorded as its body ends: wait for it.
    eventually("the metered charge", async || {
        let scrape = parse(&s.server.paywall.metrics_text());
        scrape.contains_key(&format!(
            "amp_charged_amount_total{{route=\"/v1/tokens\",mint=\"{mint}\"}}"
        ))
    })
    .await;
    let status = s.server.paywall.settle_now().await;
    assert_eq!((status.transactions, status.amount_settled), (1, 40));

    // Not without the token, nor with a wrong one.
    for token in [None, Some("metrics-test-token-0124"), Some("short")] {
        let (status, body) = scrape(&s, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
    }
    let (code, text) = scrape(&s, Some(TOKEN)).await;
    assert_eq!(code, StatusCode::OK);
    let scrape = parse(&text);

    assert_eq!(
        family(&scrape, "amp_requests_paid_total"),
        series([
            ("amp_requests_paid_total{route=\"/v1/call\"}".into(), 3.0),
            ("amp_requests_paid_total{route=\"/v1/tokens\"}".into(), 1.0),
        ])
    );
    assert_eq!(
        family(&scrape, "amp_requests_refused_total"),
        series([
            (
                "amp_requests_refused_total{route=\"/v1/call\",code=\"AMP_INVALID_SEQ\"}".into(),
                1.0
            ),
            (
                "amp_requests_refused_total{route=\"/v1/call\",code=\"AMP_UNDERFUNDED\"}".into(),
                1.0
            ),
            (
                "amp_requests_refused_total{route=\"/v1/tokens\",code=\"AMP_NO_CHANNEL\"}".into(),
                1.0
            ),
            (
                "amp_requests_refused_total{route=\"default\",code=\"AMP_NO_CHANNEL\"}".into(),
                1.0
            ),
        ])
    );
    assert_eq!(
        family(&scrape, "amp_charged_amount_total"),
        series([
            (
                format!("amp_charged_amount_total{{route=\"/v1/call\",mint=\"{mint}\"}}"),
                30.0
            ),
            (
                format!("amp_charged_amount_total{{route=\"/v1/tokens\",mint=\"{mint}\"}}"),
                10.0
            ),
        ])
    );
    assert_eq!(
        family(&scrape, "amp_charged_units_total"),
        series([
            (
                "amp_charged_units_total{route=\"/v1/call\",unit=\"call\"}".into(),
                3.0
            ),
            (
                "amp_charged_units_total{route=\"/v1/tokens\",unit=\"token\"}".into(),
                5.0
            ),
        ])
    );
    for (name, value) in [
        ("amp_settlements_sent_total".to_owned(), 1.0),
        ("amp_settlements_confirmed_total".to_owned(), 1.0),
        ("amp_settlements_failed_total".to_owned(), 0.0),
        ("amp_settlement_seconds_count".to_owned(), 1.0),
        (format!("amp_settled_amount_total{{mint=\"{mint}\"}}"), 40.0),
        (format!("amp_unsettled_amount{{mint=\"{mint}\"}}"), 0.0),
        ("amp_lanes_cached".to_owned(), 1.0),
        // Each credential that reached its lane: 4 paid, the replay, the underpaid.
        ("amp_credential_verify_seconds_count".to_owned(), 6.0),
    ] {
        assert_eq!(scrape.get(&name), Some(&value), "{name} in\n{text}");
    }
    assert!(
        scrape
            .get("amp_store_operation_seconds_count{op=\"transact\"}")
            .is_some_and(|n| *n >= 6.0),
        "{text}"
    );
    assert!(
        !text.contains(&s.lane.keys.channel.to_string()),
        "no lane in a label"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_served_unless_configured() {
    let s = Scene::new().await;
    s.get("/v1/call", s.credential(1, 10)).await.ok();
    // The path is an ordinary paid path, with or without a token.
    let reply = s.get(METRICS_PATH, HeaderMap::new()).await;
    reply.expect(ErrorCode::NoChannel);
    let (code, _) = scrape(&s, Some(TOKEN)).await;
    assert_eq!(code, StatusCode::PAYMENT_REQUIRED);
    // A program that embeds the paywall can still render them itself.
    let scrape = parse(&s.server.paywall.metrics_text());
    assert_eq!(
        scrape.get("amp_requests_paid_total{route=\"default\"}"),
        Some(&1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_shows_each_mint_owed_settled_and_pending() {
    let s = Scene::new().await;
    let mint = s.h.mint;
    s.get("/v1/call", s.credential(1, 10)).await.ok();
    s.get("/v1/call", s.credential(2, 20)).await.ok();
    // The settler counts after each pass (every 20 ms in these tests).
    eventually("the pending lane in the status", async || {
        let status: ServiceStatus = s.server.get_json(&s.client, STATUS_PATH).await;
        status
            .settler
            .mints
            .first()
            .is_some_and(|m| m.pending == 20)
    })
    .await;
    let status: ServiceStatus = s.server.get_json(&s.client, STATUS_PATH).await;
    let [row] = status.settler.mints.as_slice() else {
        panic!("one row per accepted mint: {status:?}");
    };
    assert_eq!(row.mint, mint);
    assert_eq!(
        (row.owed, row.pending, row.pending_lanes, row.settled),
        (20, 20, 1, 0)
    );
    let next = row.next_settlement.expect("a settlement is due");
    // The test settler's threshold is never reached: the interval (an hour).
    assert_eq!(next.reason, SettleReason::Interval);
    assert!(next.in_seconds <= 3_600, "{next:?}");

    s.server.paywall.settle_now().await;
    let status: ServiceStatus = s.server.get_json(&s.client, STATUS_PATH).await;
    let row = &status.settler.mints[0];
    assert_eq!(
        (row.owed, row.pending, row.pending_lanes, row.settled),
        (0, 0, 0, 20)
    );
    assert_eq!(row.next_settlement, None);
    // The JSON names the reason and keeps amounts as decimal strings.
    let json: serde_json::Value = s.server.get_json(&s.client, STATUS_PATH).await;
    assert_eq!(json["mints"][0]["settled"], "20");
    assert_eq!(json["mints"][0]["mint"], mint.to_string());
}
