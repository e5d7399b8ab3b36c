//! `amp localnet` as a process: Ctrl-C stops it cleanly, and a restart on
//! the same ledger keeps its accounts, its keys and its test mint.

use super::support::Localnet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_node_and_a_restart_keeps_its_accounts() {
    let mut node = Localnet::start(&[]).await;
    let wallet = node.fund("wallet.json", "12").await;
    let lamports = node.client().get_balance(&wallet).await.unwrap();
    let mint = node.mint;
    let said = node.stop().await;
    assert!(said.contains("stopped at slot"), "{said}");

    let node = node.relaunch().await;
    assert_eq!(node.mint, mint, "the same test mint");
    assert_eq!(node.tokens(&wallet).await, 12_000_000);
    assert_eq!(node.client().get_balance(&wallet).await.unwrap(), lamports);
    // And it goes on: more tokens for the same wallet.
    node.fund("wallet.json", "1").await;
    assert_eq!(node.tokens(&wallet).await, 13_000_000);
}
