//! Setting up tokens and wallets on a chain where the caller may mint: the
//! demo's USDC-like mint and funded wallets on the embedded bank, and the
//! same for tests. Everything goes through [`Chain`], the fee payer paying
//! fees and rent.

use amp_sdk::chain::{Chain, ChainError, TxSigner};
use amp_sdk::transactions;
use anchor_lang::prelude::{Pubkey, Rent};
use anchor_lang::solana_program::system_instruction;
use anchor_spl::token_2022::spl_token_2022::instruction as token;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Size of an SPL Token mint account.
const MINT_LEN: usize = 82;

/// Creates an SPL Token mint with `decimals`, `authority` minting.
pub async fn create_mint(
    chain: &dyn Chain,
    authority: &Pubkey,
    decimals: u8,
) -> Result<Pubkey, ChainError> {
    let mint = Keypair::new();
    let program = anchor_spl::token::ID;
    let instructions = vec![
        system_instruction::create_account(
            &chain.fee_payer(),
            &mint.pubkey(),
            Rent::default().minimum_balance(MINT_LEN),
            MINT_LEN as u64,
            &program,
        ),
        token::initialize_mint2(&program, &mint.pubkey(), authority, None, decimals)
            .map_err(|e| ChainError::Bank(e.to_string()))?,
    ];
    let signer: &TxSigner = &mint;
    chain.send(&instructions, &[signer]).await?;
    Ok(mint.pubkey())
}

/// Mints `amount` base units into `owner`'s associated token account,
/// creating it if needed. `authority` is the mint's authority.
pub async fn mint_to(
    chain: &dyn Chain,
    mint: &Pubkey,
    authority: &Keypair,
    owner: &Pubkey,
    amount: u64,
) -> Result<Pubkey, ChainError> {
    let program = anchor_spl::token::ID;
    let account = amp_sdk::pda::associated_token(owner, mint, &program);
    let instructions = vec![
        transactions::create_token_account_idempotent(&chain.fee_payer(), owner, mint, &program),
        token::mint_to(&program, mint, &account, &authority.pubkey(), &[], amount)
            .map_err(|e| ChainError::Bank(e.to_string()))?,
    ];
    let signer: &TxSigner = authority;
    chain.send(&instructions, &[signer]).await?;
    Ok(account)
}

/// Creates `owner`'s associated token account for `mint` if missing.
pub async fn token_account(
    chain: &dyn Chain,
    mint: &Pubkey,
    owner: &Pubkey,
) -> Result<Pubkey, ChainError> {
    let program = anchor_spl::token::ID;
    let account = amp_sdk::pda::associated_token(owner, mint, &program);
    if chain.account(&account).await?.is_none() {
        let create = transactions::create_token_account_idempotent(
            &chain.fee_payer(),
            owner,
            mint,
            &program,
        );
        chain.send(&[create], &[]).await?;
    }
    Ok(account)
}

/// Sends `lamports` from the fee payer to `to` (channel rent is the funder's).
pub async fn airdrop(chain: &dyn Chain, to: &Pubkey, lamports: u64) -> Result<(), ChainError> {
    let transfer = system_instruction::transfer(&chain.fee_payer(), to, lamports);
    chain.send(&[transfer], &[]).await?;
    Ok(())
}

/// An SPL token transfer of `amount` from `from`'s associated account to
/// `to`'s, `from` signing: what paying per request on-chain would send.
pub fn transfer_instruction(
    mint: &Pubkey,
    from: &Pubkey,
    to: &Pubkey,
    amount: u64,
    decimals: u8,
) -> Result<solana_instruction::Instruction, ChainError> {
    let program = anchor_spl::token::ID;
    token::transfer_checked(
        &program,
        &amp_sdk::pda::associated_token(from, mint, &program),
        mint,
        &amp_sdk::pda::associated_token(to, mint, &program),
        from,
        &[],
        amount,
        decimals,
    )
    .map_err(|e| ChainError::Bank(e.to_string()))
}
