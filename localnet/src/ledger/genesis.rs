//! The node's first bank: a cluster's fees, rent and slot length, every
//! feature on, the released SPL programs, and the AMP programs as builtins.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agave_feature_set::FeatureSet;
use amp_sdk::embedded::NativeProgram;
use solana_account::AccountSharedData;
use solana_accounts_db::accounts_db::ACCOUNTS_DB_CONFIG_FOR_TESTING;
use solana_cluster_type::ClusterType;
use solana_epoch_schedule::EpochSchedule;
use solana_fee_calculator::{FeeRateGovernor, DEFAULT_TARGET_LAMPORTS_PER_SIGNATURE};
use solana_keypair::Keypair;
use solana_native_token::LAMPORTS_PER_SOL;
use solana_poh_config::PohConfig;
use solana_program_runtime::loaded_programs::ProgramCacheEntry;
use solana_pubkey::Pubkey;
use solana_rent::Rent;
use solana_runtime::bank::Bank;
use solana_runtime::bank_forks::BankForks;
use solana_runtime::genesis_utils::create_genesis_config_with_leader_ex;
use solana_runtime::runtime_config::RuntimeConfig;
use solana_signer::Signer;

/// A cluster's slot: 64 ticks of 6.25 ms (the default; tests may run faster
/// slots, so that a blockhash's 150 slots pass sooner).
pub const SLOT_DURATION: Duration = Duration::from_millis(400);
const TICKS_PER_SLOT: u64 = 64;
/// What the faucet holds at genesis: enough for any number of airdrops.
const FAUCET_LAMPORTS: u64 = 500_000_000 * LAMPORTS_PER_SOL;

/// Builds the genesis bank and the forks that hold it.
///
/// The faucet keypair is the genesis mint, so a restarted node with the same
/// faucet keeps answering `requestAirdrop` from the same account.
pub(crate) fn genesis_bank(
    faucet: &Keypair,
    programs: Vec<NativeProgram>,
    slot_duration: Duration,
) -> Arc<RwLock<BankForks>> {
    // Builtins call other programs and read sysvars through the stubs.
    amp_sdk::embedded::install_syscall_stubs();

    let rent = Rent::default();
    let fee_rate_governor = FeeRateGovernor {
        // What mainnet charges: 5,000 lamports a signature.
        lamports_per_signature: DEFAULT_TARGET_LAMPORTS_PER_SIGNATURE / 2,
        ..FeeRateGovernor::default()
    };
    let validator = Keypair::new();
    // The bootstrap validator's stake: far more than its vote account's rent.
    let stake = 1_000_000 * LAMPORTS_PER_SOL;
    let mut genesis = create_genesis_config_with_leader_ex(
        FAUCET_LAMPORTS,
        &faucet.pubkey(),
        &validator.pubkey(),
        &Pubkey::new_unique(),
        &Pubkey::new_unique(),
        None,
        stake,
        42,
        fee_rate_governor,
        rent.clone(),
        ClusterType::Development,
        &FeatureSet::all_enabled(),
        Vec::<(Pubkey, AccountSharedData)>::new(),
    );
    genesis.poh_config = PohConfig::new_sleep(slot_duration / TICKS_PER_SLOT as u32);
    genesis.ticks_per_slot = TICKS_PER_SLOT;
    // One long epoch, as solana-test-validator has: no epoch boundary (and
    // its reward pass) ever interrupts a development session.
    genesis.epoch_schedule = EpochSchedule::without_warmup();
    genesis.creation_time = unix_now();

    let bank = Bank::new_from_genesis(
        &genesis,
        Arc::new(RuntimeConfig::default()),
        Vec::new(),
        None,
        ACCOUNTS_DB_CONFIG_FOR_TESTING,
        None,
        None,
        Arc::new(AtomicBool::new(false)),
        None,
        None,
    );
    for (program_id, account) in solana_program_binaries::spl_programs(&rent) {
        bank.store_account(&program_id, &account);
    }
    for (program_id, account) in solana_program_binaries::core_bpf_programs(&rent, |feature| {
        genesis.accounts.contains_key(feature)
    }) {
        bank.store_account(&program_id, &account);
    }
    for program in amp_sdk::embedded::native_programs(programs) {
        bank.add_builtin(
            program.id,
            program.name,
            ProgramCacheEntry::new_builtin(0, program.name.len(), program.function),
        );
    }
    bank.set_capitalization_for_tests(bank.calculate_capitalization_for_tests());
    BankForks::new_rw_arc(bank)
}

/// The wall clock's unix time, in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
