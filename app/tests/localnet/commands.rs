//! Every cluster command of `amp`, each a process, on `amp localnet`, each
//! checked against on-chain balances.

use std::time::Duration;

use amp_sdk::voucher::{SignedVoucher, Voucher};
use anchor_lang::prelude::Pubkey;
use serde_json::Value;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::support::Localnet;

const USDC: u64 = 1_000_000;

fn address(value: &Value) -> Pubkey {
    value
        .as_str()
        .expect("an address")
        .parse()
        .expect("an address")
}

fn units(value: &Value) -> u64 {
    value
        .as_str()
        .expect("a decimal string")
        .parse()
        .expect("a number")
}

/// `--seq N --amount A --sig S` for a voucher `signer` signs on `lane`.
fn voucher_args(
    signer: &Keypair,
    lane: &Pubkey,
    generation: u64,
    seq: u64,
    cumulative: u64,
) -> Vec<String> {
    let signed = SignedVoucher::sign(
        signer,
        Voucher {
            lane: *lane,
            generation,
            seq,
            cumulative,
            expires_at: 0,
        },
    );
    vec![
        "--seq".into(),
        seq.to_string(),
        "--amount".into(),
        cumulative.to_string(),
        "--sig".into(),
        bs58::encode(signed.signature).into_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cluster_command_against_a_local_node() {
    let node = Localnet::start(&[]).await;
    let funder = node.fund("funder.json", "100").await;
    let recipient = node.fund("recipient.json", "0").await;
    let funder_key = amp_sdk::keypair::read(node.path("funder.json")).unwrap();
    let mint = node.mint.to_string();
    assert_eq!(node.tokens(&funder).await, 100 * USDC);

    // open, with the shortest grace period the program allows.
    let opened = node
        .json(
            "funder.json",
            &[
                "open",
                "--recipient",
                &recipient.to_string(),
                "--mint",
                &mint,
                "--amount",
                "10",
                "--grace",
                "60s",
            ],
        )
        .await;
    let channel = address(&opened["channel"]);
    let vault = address(&opened["vault"]);
    let generation = opened["generation"].as_u64().unwrap();
    assert_eq!(node.tokens(&funder).await, 90 * USDC);
    assert_eq!(node.token_account(&vault).await, 10 * USDC);

    let shown = node
        .json("funder.json", &["channel", "show", &channel.to_string()])
        .await;
    assert_eq!(units(&shown["channel"]["deposited"]), 10 * USDC);
    assert_eq!(address(&shown["channel"]["recipient"]), recipient);

    node.json("funder.json", &["top-up", &channel.to_string(), "5"])
        .await;
    assert_eq!(node.token_account(&vault).await, 15 * USDC);

    // settle: the funder's voucher, sent by the recipient.
    let mut args = vec!["settle".to_string(), channel.to_string()];
    args.extend(voucher_args(&funder_key, &channel, generation, 1, 3 * USDC));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let settled = node.json("recipient.json", &args).await;
    assert_eq!(units(&settled["paid"]), 3 * USDC);
    assert_eq!(node.tokens(&recipient).await, 3 * USDC);
    // The same voucher again pays nothing, and says so.
    let again = node.output("recipient.json", &args).await;
    assert!(!again.status.success());
    assert!(
        again.stderr.contains("nothing to settle"),
        "{}",
        again.stderr
    );

    // delegate, settle the delegate's voucher, revoke, close the delegation.
    let sub_agent = Keypair::new();
    let delegated = node
        .json(
            "funder.json",
            &[
                "delegate",
                &channel.to_string(),
                &sub_agent.pubkey().to_string(),
                "2",
            ],
        )
        .await;
    let delegation = address(&delegated["delegation"]);
    assert_eq!(units(&delegated["cap"]), 2 * USDC);
    // The cap is deposited beside the channel's own deposit.
    assert_eq!(node.tokens(&funder).await, 83 * USDC);
    assert_eq!(node.token_account(&vault).await, 14 * USDC);
    let shown = node
        .json("funder.json", &["channel", "show", &delegation.to_string()])
        .await;
    let delegation_generation = shown["delegation"]["generation"].as_u64().unwrap();
    let mut args = vec!["settle".to_string(), delegation.to_string()];
    args.extend(voucher_args(
        &sub_agent,
        &delegation,
        delegation_generation,
        1,
        USDC / 2,
    ));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    node.json("recipient.json", &args).await;
    assert_eq!(node.tokens(&recipient).await, 3 * USDC + USDC / 2);
    node.json("funder.json", &["revoke", &delegation.to_string()])
        .await;
    let closed = node
        .json(
            "recipient.json",
            &["close-delegation", &delegation.to_string()],
        )
        .await;
    assert_eq!(units(&closed["unspent"]), 2 * USDC - USDC / 2);
    assert!(!node.exists(&delegation).await);

    // request-close, wait out the grace period, refund.
    node.json("funder.json", &["request-close", &channel.to_string()])
        .await;
    let early = node
        .output("funder.json", &["refund", &channel.to_string()])
        .await;
    assert!(
        !early.status.success(),
        "refund before the grace period ends"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let refunded = loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let out = node
            .output(
                "funder.json",
                &["--output", "json", "refund", &channel.to_string()],
            )
            .await;
        if out.status.success() {
            break out.json();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refund still refused: {}",
            out.stderr
        );
    };
    // The deposit and the cap, less what was settled.
    assert_eq!(
        units(&refunded["refunded"]),
        17 * USDC - 3 * USDC - USDC / 2
    );
    assert!(!node.exists(&channel).await);
    assert!(!node.exists(&vault).await);
    // Conserved to the base unit: 100 tokens between the two wallets.
    assert_eq!(node.tokens(&funder).await, 100 * USDC - 3 * USDC - USDC / 2);
    assert_eq!(
        node.tokens(&funder).await + node.tokens(&recipient).await,
        100 * USDC
    );
}

/// A transaction `amp` sent, read back from the node: the compute budget
/// first (a limit from simulation, the price `--with-compute-unit-price`
/// names), paid by `--fee-payer` while the wallet signs as the funder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_transaction_carries_the_compute_budget_asked_for() {
    let node = Localnet::start(&[]).await;
    node.fund("funder.json", "10").await;
    let recipient = node.fund("recipient.json", "0").await;
    let payer = node.fund("payer.json", "0").await;
    let opened = node
        .json(
            "funder.json",
            &[
                "open",
                "--recipient",
                &recipient.to_string(),
                "--mint",
                &node.mint.to_string(),
                "--amount",
                "1",
                "--with-compute-unit-price",
                "4321",
                "--fee-payer",
                "payer.json",
                "--commitment",
                "confirmed",
            ],
        )
        .await;
    let signature: solana_signature::Signature =
        opened["signature"].as_str().unwrap().parse().unwrap();
    let landed = node
        .client()
        .get_transaction(
            &signature,
            solana_transaction_status_client_types::UiTransactionEncoding::Base64,
        )
        .await
        .unwrap();
    let transaction = landed.transaction.transaction.decode().expect("base64");
    let message = &transaction.message;
    let keys = message.static_account_keys();
    assert_eq!(keys[0], payer, "the fee payer pays and signs first");
    let funder = amp_sdk::keypair::read(node.path("funder.json")).unwrap();
    assert!(
        keys[..usize::from(message.header().num_required_signatures)].contains(&funder.pubkey())
    );
    let budget: Vec<Instruction> = message
        .instructions()
        .iter()
        .take(2)
        .map(|ix| {
            Instruction::new_with_bytes(keys[usize::from(ix.program_id_index)], &ix.data, vec![])
        })
        .collect();
    let limit = amp_sdk::fees::limit_of(&budget[0]).expect("a compute unit limit first");
    assert!(
        (amp_sdk::fees::MIN_COMPUTE_UNIT_LIMIT..amp_sdk::fees::MAX_COMPUTE_UNIT_LIMIT)
            .contains(&limit),
        "{limit}"
    );
    assert_eq!(amp_sdk::fees::price_of(&budget[1]), Some(4_321));
    let meta = landed.transaction.meta.expect("status meta");
    let consumed: Option<u64> = meta.compute_units_consumed.into();
    assert!(
        consumed.is_some_and(|units| units <= u64::from(limit)),
        "{consumed:?} of {limit}"
    );
    // The fee: two signatures, and the price of every unit of the limit.
    let priority = (u64::from(limit) * 4_321).div_ceil(1_000_000);
    assert_eq!(meta.fee, 2 * 5_000 + priority);
}
