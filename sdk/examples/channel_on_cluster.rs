//! Opens a channel, settles a voucher and closes cooperatively on a real
//! cluster through `RpcChain`: the same builders and `Chain` calls the
//! embedded-bank tests (tests/tests/sdk/chain.rs) use. See docs/rpc.md.
//!
//! ```text
//! cargo run -p amp-sdk --example channel_on_cluster -- <cluster> <keypair.json> <mint>
//! ```
//!
//! The keypair pays fees, funds the channel (it must hold at least 1,000
//! smallest units of `mint` in its associated token account) and signs the
//! vouchers; a fresh key plays the recipient.

use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

use amp_sdk::chain::{Chain, ChainExt};
use amp_sdk::program::instructions::OpenArgs;
use amp_sdk::program::voucher::Voucher;
use amp_sdk::rpc::{Cluster, RpcChain};
use amp_sdk::transactions::{self as tx, OpenOptions, Settlement};
use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;
use solana_signer::Signer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cluster, keypair_path, mint] = args.as_slice() else {
        return Err("usage: channel_on_cluster <cluster> <keypair.json> <mint>".into());
    };
    let cluster: Cluster = cluster.parse()?;
    let mint: Pubkey = mint.parse()?;
    let funder = read_keypair(keypair_path)?;
    let recipient = Keypair::new();
    let chain = RpcChain::new(&cluster, funder.insecure_clone());
    println!(
        "cluster {} ({}), funder {}",
        cluster,
        cluster.url(),
        funder.pubkey()
    );

    let token_program = chain.mint_token_program(&mint).await?;
    let nonce = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let args = OpenArgs {
        recipient: recipient.pubkey(),
        nonce,
        deposit: 1_000,
        grace_period: 60,
        expires_at: 0,
        authorized_signer: None,
    };
    let options = OpenOptions {
        create_token_accounts: Some(chain.fee_payer()),
        ..OpenOptions::default()
    };
    let (keys, open) = tx::open(funder.pubkey(), mint, token_program, args, options);
    let signature = chain.send(&open, &[&funder]).await?;
    let channel = chain
        .channel(&keys.channel)
        .await?
        .ok_or("channel missing")?;
    println!("opened {} in {signature}", keys.channel);

    let voucher = |seq, cumulative| {
        let voucher = Voucher {
            lane: keys.channel,
            generation: channel.generation,
            seq,
            cumulative,
            expires_at: 0,
        };
        let signature = funder.sign_message(&voucher.to_bytes()).into();
        Settlement::new(keys, funder.pubkey(), voucher, signature)
    };
    let signature = chain.send(&tx::settle(&voucher(1, 250)), &[]).await?;
    println!("settled 250 in {signature}");

    let signature = chain
        .send(&tx::close_with_voucher(&voucher(2, 400)), &[&recipient])
        .await?;
    let paid = chain.token_balance(&tx::recipient_token(&keys)).await?;
    println!("closed in {signature}; recipient holds {paid:?}");
    Ok(())
}

/// A Solana CLI keypair file: a JSON array of 64 bytes.
fn read_keypair(path: &str) -> Result<Keypair, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let bytes = text
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|b| b.trim().parse::<u8>())
        .collect::<Result<Vec<u8>, _>>()?;
    Ok(Keypair::try_from(bytes.as_slice())?)
}
