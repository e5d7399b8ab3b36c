//! The node's USDC-like test mint (6 decimals), created at first start, and
//! the instructions that fund a wallet with it.

use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::Transaction;

use crate::ledger::{Commitment, Ledger};

/// The test mint's decimals, as USDC's.
pub const DECIMALS: u8 = 6;
/// SOL the mint authority gets at creation, for the fees of funding wallets.
const AUTHORITY_LAMPORTS: u64 = 100_000_000_000;

/// Creates the test mint (and funds its authority) unless it exists.
pub(crate) fn ensure(ledger: &Ledger, mint: &Keypair, authority: &Keypair) -> Result<(), String> {
    if ledger
        .account(&mint.pubkey(), Commitment::Processed)
        .is_some()
    {
        return Ok(());
    }
    let faucet = ledger.faucet();
    let bank = ledger.bank(Commitment::Processed);
    let space = <spl_token_interface::state::Mint as solana_program_pack::Pack>::LEN;
    let rent = bank.get_minimum_balance_for_rent_exemption(space);
    let instructions = [
        solana_system_interface::instruction::create_account(
            &faucet.pubkey(),
            &mint.pubkey(),
            rent,
            space as u64,
            &spl_token_interface::ID,
        ),
        spl_token_interface::instruction::initialize_mint2(
            &spl_token_interface::ID,
            &mint.pubkey(),
            &authority.pubkey(),
            None,
            DECIMALS,
        )
        .map_err(|e| e.to_string())?,
        solana_system_interface::instruction::transfer(
            &faucet.pubkey(),
            &authority.pubkey(),
            AUTHORITY_LAMPORTS,
        ),
    ];
    let transaction = Transaction::new_signed_with_payer(
        &instructions,
        Some(&faucet.pubkey()),
        &[faucet, mint],
        bank.last_blockhash(),
    );
    let signature = ledger.send(transaction.into()).map_err(|e| e.to_string())?;
    match ledger.transaction(&signature).map(|r| r.status) {
        Some(Ok(())) => Ok(()),
        Some(Err(error)) => Err(error.to_string()),
        None => Err("the mint transaction did not land".into()),
    }
}

/// Creates `wallet`'s associated token account for `mint` if missing, and
/// mints `amount` base units to it. `authority` pays and signs.
pub fn fund_instructions(
    mint: &Pubkey,
    authority: &Pubkey,
    wallet: &Pubkey,
    amount: u64,
) -> Result<Vec<Instruction>, solana_program_error::ProgramError> {
    let token_account = amp_sdk::pda::associated_token(wallet, mint, &spl_token_interface::ID);
    Ok(vec![
        spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent(
            authority,
            wallet,
            mint,
            &spl_token_interface::ID,
        ),
        spl_token_interface::instruction::mint_to_checked(
            &spl_token_interface::ID,
            mint,
            &token_account,
            authority,
            &[],
            amount,
            DECIMALS,
        )?,
    ])
}
