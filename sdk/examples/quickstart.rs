//! The README's quick start: open a channel on the embedded bank and make the
//! credential headers of one paid request.
//!
//! ```text
//! cargo run -p amp-sdk --example quickstart
//! ```

use std::error::Error;

use amp_sdk::chain::{Chain, ChainExt};
use amp_sdk::embedded::EmbeddedBank;
use amp_sdk::headers::Credential;
use amp_sdk::program::instructions::OpenArgs;
use amp_sdk::program::voucher::Voucher;
use amp_sdk::transactions::{self as tx, OpenOptions};
use anchor_lang::prelude::Pubkey;
use anchor_spl::token_2022::spl_token_2022::instruction as token;
use solana_keypair::Keypair;
use solana_signer::Signer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let chain = EmbeddedBank::start().await;
    let (agent, service) = (Keypair::new(), Keypair::new());
    let mint = usdc_like_mint(&chain, &agent, 5_000_000).await?;

    // --- README snippet starts here ---
    let token_program = chain.mint_token_program(&mint).await?;
    let args = OpenArgs {
        recipient: service.pubkey(),
        nonce: rand_nonce(),
        deposit: 1_000_000, // 1 USDC
        grace_period: 3_600,
        expires_at: 0,
        authorized_signer: None, // the agent signs its own vouchers
    };
    let options = OpenOptions {
        create_token_accounts: Some(chain.fee_payer()),
        ..Default::default()
    };
    let (keys, open) = tx::open(agent.pubkey(), mint, token_program, args, options);
    chain.send(&open, &[&agent]).await?;

    let generation = chain
        .channel(&keys.channel)
        .await?
        .expect("opened")
        .generation;
    let voucher = Voucher {
        lane: keys.channel,
        generation,
        seq: 1,
        cumulative: 100,
        expires_at: 0,
    };
    let mut headers = http::HeaderMap::new();
    Credential::sign(&agent, &voucher).write(&mut headers); // AMP-Channel, AMP-Seq, AMP-Amount, AMP-Sig
                                                            // --- README snippet ends here ---

    for (name, value) in &headers {
        println!("{name}: {}", value.to_str()?);
    }
    Ok(())
}

/// A client picks a random nonce per channel (SPEC §2).
fn rand_nonce() -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&Keypair::new().pubkey().to_bytes()[..8]);
    u64::from_le_bytes(bytes)
}

/// A 6-decimal SPL Token mint with `amount` in `owner`'s associated account,
/// and 1 SOL for `owner` to front the channel's rent.
async fn usdc_like_mint(
    chain: &EmbeddedBank,
    owner: &Keypair,
    amount: u64,
) -> Result<Pubkey, Box<dyn Error>> {
    let mint = Keypair::new();
    let payer = chain.fee_payer();
    let program = anchor_spl::token::ID;
    let space = 82;
    let account =
        tx::create_token_account_idempotent(&payer, &owner.pubkey(), &mint.pubkey(), &program);
    let holder = amp_sdk::pda::associated_token(&owner.pubkey(), &mint.pubkey(), &program);
    let ixs = vec![
        anchor_lang::solana_program::system_instruction::transfer(
            &payer,
            &owner.pubkey(),
            1_000_000_000,
        ),
        anchor_lang::solana_program::system_instruction::create_account(
            &payer,
            &mint.pubkey(),
            anchor_lang::prelude::Rent::default().minimum_balance(space),
            space as u64,
            &program,
        ),
        token::initialize_mint2(&program, &mint.pubkey(), &owner.pubkey(), None, 6)?,
        account,
        token::mint_to(
            &program,
            &mint.pubkey(),
            &holder,
            &owner.pubkey(),
            &[],
            amount,
        )?,
    ];
    chain.send(&ixs, &[&mint, owner]).await?;
    Ok(mint.pubkey())
}
