//! `amp serve`'s metrics on a listener of their own (`[metrics] listen`),
//! scraped over HTTP after an `amp pay` process paid through it: the
//! counters say exactly what happened.

use std::time::Duration;

use super::service::{cli_pay, prices, upstream, Serve, PRICE};
use super::support::{free_port, Localnet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amp_serve_exposes_its_metrics_on_their_own_listener() {
    let node = Localnet::start(&[]).await;
    node.fund("agent.json", "100").await;
    node.fund("service.json", "0").await;
    let port = free_port();
    let config = node.path("prices.toml");
    let file =
        prices(&node, "vouchers.sqlite") + &format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    std::fs::write(&config, file).unwrap();
    let serve = Serve::start(&node, upstream().await, config).await;
    let hello = format!("{}/v1/hello", serve.url);
    for _ in 0..2 {
        cli_pay(
            &node,
            "agent.json",
            &hello,
            "lanes.json",
            "hello from upstream",
        )
        .await;
    }

    let scrape = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let text = scrape
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("the metrics listener answers")
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("amp_requests_paid_total{route=\"default\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("amp_charged_units_total{route=\"default\",unit=\"call\"} 2\n"),
        "{text}"
    );
    let charged = format!("{}\n", 2 * PRICE);
    assert!(
        text.lines().any(
            |l| l.starts_with("amp_charged_amount_total{route=\"default\"")
                && format!("{}\n", l.rsplit(' ').next().unwrap_or("")) == charged
        ),
        "{text}"
    );
    // Not on the service's own port.
    let public = scrape
        .get(format!("{}/.well-known/amp/metrics", serve.url))
        .send()
        .await
        .unwrap();
    assert_ne!(public.status(), 200);
}
