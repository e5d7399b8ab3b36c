//! The settler's fees: every settlement transaction starts with a compute
//! budget under the settler's own policy (not the chain's), within the
//! packet that packing measured with room for it.

use std::sync::{Arc, Mutex};

use amp_sdk::chain::{Chain, ChainError, TxSigner};
use amp_sdk::embedded::EmbeddedBank;
use amp_sdk::fees::{self, FeePolicy};
use amp_sdk::server::{SettleConfig, Settler};
use amp_sdk::store::{LaneId, LaneState, MemoryStore, VoucherStore};
use amp_sdk::transactions as tx;
use amp_sdk::voucher::SignedVoucher;
use amp_tests::*;
use async_trait::async_trait;
use solana_account::Account;
use solana_clock::Clock;
use solana_instruction::Instruction;
use solana_pubkey::Pubkey;
use solana_signature::Signature;

use crate::support::manual_settlement;

/// The embedded bank, recording the instructions of every transaction sent.
struct Recording {
    bank: EmbeddedBank,
    sent: Mutex<Vec<Vec<Instruction>>>,
}

#[async_trait]
impl Chain for Recording {
    fn fee_payer(&self) -> Pubkey {
        self.bank.fee_payer()
    }

    async fn account(&self, address: &Pubkey) -> Result<Option<Account>, ChainError> {
        Chain::account(&self.bank, address).await
    }

    async fn clock(&self) -> Result<Clock, ChainError> {
        self.bank.clock().await
    }

    async fn send(
        &self,
        instructions: &[Instruction],
        signers: &[&TxSigner],
    ) -> Result<Signature, ChainError> {
        self.sent.lock().unwrap().push(instructions.to_vec());
        self.bank.send(instructions, signers).await
    }

    async fn compute_budget_with(
        &self,
        policy: &FeePolicy,
        fee_payer: &Pubkey,
        instructions: &[Instruction],
    ) -> Result<Vec<Instruction>, ChainError> {
        self.bank
            .compute_budget_with(policy, fee_payer, instructions)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_settlement_carries_the_settlers_compute_budget() {
    let mut h = Harness::new(TokenKind::Token).await;
    let funder = h.party(FUNDS * 4).await;
    let recipient = h.party(0).await;
    // More lanes than one full transaction holds, so packing splits them.
    let n = tx::max_settles_per_transaction() + 2;
    let store = Arc::new(MemoryStore::new());
    for _ in 0..n {
        let lane = h.open(&funder, &recipient, DEPOSIT).await;
        let signed = SignedVoucher::sign(&funder.wallet, lane.voucher(1, 10));
        let id = LaneId {
            lane: lane.keys.channel,
            generation: lane.generation,
        };
        let fresh = LaneState::new(id, lane.keys.channel, None, funder.key());
        let update = move |state: &mut LaneState| {
            state.last_seq = 1;
            state.owed = 10;
            state.best = Some(signed);
            true
        };
        store.update(fresh, Box::new(update)).await.unwrap();
    }
    // The bank's own policy has no price: the settler's must be the one paid.
    let chain = Arc::new(Recording {
        bank: h.bank.clone(),
        sent: Mutex::new(vec![]),
    });
    let config = SettleConfig {
        fees: FeePolicy::fixed(1_234),
        ..manual_settlement()
    };
    let store_dyn: Arc<dyn VoucherStore> = store.clone();
    let settler = Settler::start(chain.clone(), store_dyn, config)
        .await
        .unwrap();
    let status = settler.settle_all().await;
    assert_eq!(status.lanes_settled, n as u64, "{status:?}");
    assert_eq!(h.tokens(&recipient.token).await, 10 * n as u64);

    let sent = chain.sent.lock().unwrap().clone();
    assert_eq!(sent.len() as u64, status.transactions);
    assert!(sent.len() >= 2, "{} transactions", sent.len());
    for batch in &sent {
        let limit = fees::limit_of(&batch[0]).expect("a limit first");
        assert!(
            (fees::MIN_COMPUTE_UNIT_LIMIT..fees::MAX_COMPUTE_UNIT_LIMIT).contains(&limit),
            "{limit}"
        );
        assert_eq!(fees::price_of(&batch[1]), Some(1_234));
        assert!(!fees::has_compute_budget(&batch[2..]));
        let payer = chain.fee_payer();
        assert!(tx::instructions_size(&payer, batch) <= tx::MAX_TRANSACTION_SIZE);
    }
    settler.shutdown().await;
}
