//! What the replicas sent, and what the node landed: the audit that no
//! settlement was tried twice.

use super::*;

/// The signatures a replica's `RpcChain` logged as it `sent` or `confirmed`
/// them (`amp_sdk::rpc=debug`), in order.
pub(super) fn logged(log: &str, message: &str) -> Vec<String> {
    let needle = format!("amp_sdk::rpc: {message} ");
    log.lines()
        .filter(|line| line.contains(&needle))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix("signature="))
                .map(str::to_owned)
        })
        .collect()
}

pub(super) fn sent(log: &str) -> Vec<String> {
    logged(log, "sending")
}

pub(super) fn confirmed(log: &str) -> HashSet<String> {
    logged(log, "confirmed").into_iter().collect()
}

/// A JSON-RPC call to the node; its `result`.
pub(super) async fn rpc(node: &Localnet, method: &str, params: Value) -> Value {
    let request = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let response: Value = client()
        .post(&node.rpc_url)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(response["error"].is_null(), "{method}: {response}");
    response["result"].clone()
}

/// What the node's history says of the settlements.
pub(super) struct Audit {
    /// Settlement transactions landed.
    pub(super) transactions: usize,
    /// How many of them each replica (A, B, C) sent.
    pub(super) by_replica: [usize; 3],
    /// Which replica sent each lane's last settlement.
    pub(super) last_by: HashMap<Pubkey, usize>,
    /// What they paid the recipient.
    pub(super) paid: u64,
    /// Their signatures.
    pub(super) landed: HashSet<String>,
}

/// Checks that no settlement was tried twice, from the replicas' logs (in
/// the order A, B, C) and the node's history of every lane: no transaction
/// on a lane failed, the node refused no preflight, no replica sent a
/// transaction another sent, every settlement that landed was sent by a
/// replica, and each lane's settled vouchers only go up.
pub(super) async fn audit(
    node: &Localnet,
    lanes: &[Lane],
    recipient: &Pubkey,
    logs: &[String; 3],
) -> Audit {
    let node_log = node.process.stderr();
    let refused: Vec<&str> = node_log
        .lines()
        .filter(|line| line.contains("preflight refused"))
        .collect();
    assert!(
        refused.is_empty(),
        "the node refused preflights: {refused:#?}"
    );
    let mut sender: HashMap<String, usize> = HashMap::new();
    for (replica, log) in logs.iter().enumerate() {
        for signature in sent(log) {
            if let Some(other) = sender.insert(signature.clone(), replica) {
                panic!("{signature} was sent by replicas {other} and {replica}");
            }
        }
    }
    let ed25519 = solana_sdk_ids::ed25519_program::ID.to_string();
    let config = json!({ "commitment": "confirmed" });
    let mut settles: HashMap<Pubkey, Vec<Voucher>> = HashMap::new();
    let mut audit = Audit {
        transactions: 0,
        by_replica: [0; 3],
        last_by: HashMap::new(),
        paid: 0,
        landed: HashSet::new(),
    };
    for lane in lanes {
        let history = rpc(
            node,
            "getSignaturesForAddress",
            json!([lane.channel.to_string(), config]),
        )
        .await;
        // Newest first: oldest first.
        for entry in history.as_array().unwrap().iter().rev() {
            let signature = entry["signature"].as_str().unwrap().to_owned();
            let tx = rpc(
                node,
                "getTransaction",
                json!([signature, { "encoding": "json", "commitment": "confirmed",
                                    "maxSupportedTransactionVersion": 0 }]),
            )
            .await;
            let meta = &tx["meta"];
            assert!(
                entry["err"].is_null() && meta["err"].is_null(),
                "a transaction on lane {} failed: {signature} {}\n{:#}",
                lane.channel,
                meta["err"],
                meta["logMessages"]
            );
            let message = &tx["transaction"]["message"];
            let keys: Vec<&str> = message["accountKeys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            let vouchers: Vec<Voucher> = message["instructions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|ix| keys[ix["programIdIndex"].as_u64().unwrap() as usize] == ed25519)
                .map(|ix| {
                    let data = bs58::decode(ix["data"].as_str().unwrap())
                        .into_vec()
                        .unwrap();
                    amp_sdk::voucher::decode(&data[data.len() - VOUCHER_LEN..]).unwrap()
                })
                .collect();
            if vouchers.is_empty() {
                continue; // the lane's opening
            }
            let Some(&replica) = sender.get(&signature) else {
                panic!("settlement {signature} was sent by no replica");
            };
            for voucher in vouchers.iter().filter(|v| v.lane == lane.channel) {
                settles.entry(lane.channel).or_default().push(*voucher);
                audit.last_by.insert(lane.channel, replica);
            }
            if !audit.landed.insert(signature) {
                continue; // seen on another lane it settles
            }
            audit.transactions += 1;
            audit.by_replica[replica] += 1;
            audit.paid += token_change(meta, recipient);
        }
    }
    for (lane, vouchers) in &settles {
        assert!(
            vouchers
                .windows(2)
                .all(|w| w[0].seq < w[1].seq && w[0].cumulative < w[1].cumulative),
            "lane {lane}: a voucher settled twice, or out of order: {vouchers:?}"
        );
    }
    audit
}

/// How much `owner`'s token accounts gained in a transaction.
pub(super) fn token_change(meta: &Value, owner: &Pubkey) -> u64 {
    let sum = |balances: &Value| -> u64 {
        balances
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["owner"].as_str() == Some(&owner.to_string()))
            .map(|b| {
                b["uiTokenAmount"]["amount"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum()
    };
    sum(&meta["postTokenBalances"]) - sum(&meta["preTokenBalances"])
}
