//! `amp demo`, run in-process with a few calls: its report must add up.

use amp_cli::demo::metered::TxKind;
use amp_cli::demo::{self, DemoOptions, CHAT_ROUTE, STREAM_ROUTE, WEATHER_ROUTE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_report_adds_up() {
    let options = DemoOptions {
        calls: 40,
        // Low enough that the settler settles during the calls.
        settle_threshold: 1_500,
        ..DemoOptions::default()
    };
    let report = demo::run(options).await.unwrap();

    // Calls, by route.
    assert_eq!(report.calls, 40);
    let calls = |route: &str| {
        report
            .routes
            .iter()
            .find(|r| r.route == route)
            .map_or(0, |r| r.calls)
    };
    assert_eq!(
        (calls(CHAT_ROUTE), calls(WEATHER_ROUTE), calls(STREAM_ROUTE)),
        (20, 16, 4)
    );

    // One channel's whole life: open, settlements by the settler, close.
    assert_eq!(report.count(TxKind::Open), 1);
    assert_eq!(report.count(TxKind::Close), 1);
    assert!(
        report.count(TxKind::Settle) >= 1,
        "{:?}",
        report.transactions
    );
    assert_eq!(report.count(TxKind::TopUp), 0);
    assert_eq!(report.failed_transactions, 0, "{:?}", report.transactions);
    assert_eq!(
        report.transaction_count,
        report.transactions.iter().map(|t| t.count).sum::<u32>()
    );
    assert_eq!(
        report.transaction_count,
        2 + report.count(TxKind::Settle),
        "nothing but open, settle and close: {:?}",
        report.transactions
    );

    // Balances: what the agent lost, the service got; the rest came back.
    assert!(report.paid > 0);
    assert_eq!(
        report.agent_tokens_before - report.agent_tokens_after,
        report.paid
    );
    assert_eq!(report.service_tokens, report.paid);
    assert_eq!(report.refunded, report.deposit - report.paid);
    assert_eq!(report.deposit, 5_000_000);
    // At least the per-call price of every per-call request, and two base
    // units per token of at least 16 tokens per completion.
    assert!(
        report.paid >= 16 * 100 + 20 * 16 * 2,
        "paid {}",
        report.paid
    );

    // Rent is all returned; fees are measured, and the comparison computed.
    assert!(report.rent_paid > 0);
    assert_eq!(report.rent_reclaimed, report.rent_paid);
    assert!(report.fees > 0);
    assert!(report.transfer_fee > 0);
    assert_eq!(report.per_request_fees, 40 * report.transfer_fee);
    let open_fee = report
        .transactions
        .iter()
        .find(|t| t.kind == TxKind::Open)
        .unwrap()
        .fees;
    assert!(open_fee >= report.transfer_fee);

    // Timings were taken for the paid calls.
    assert_eq!(report.call_latency.samples, 36, "streams are not timed");
    assert!(report.payment_overhead.samples >= 40);
    assert!(report.payment_overhead.p50_us <= report.payment_overhead.p99_us);

    // Both outputs render.
    let text = report.to_string();
    assert!(text.contains("40 paid calls"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["calls"], 40);
    assert_eq!(json["paid"], report.paid.to_string());
}

#[tokio::test]
async fn no_calls_is_a_usage_error() {
    let options = DemoOptions {
        calls: 0,
        ..DemoOptions::default()
    };
    assert!(matches!(
        demo::run(options).await,
        Err(amp_cli::CliError::Usage(_))
    ));
}
