//! Shared helpers for the integration tests: one embedded bank with a mint of
//! the chosen token program, funded wallets, channels, signed vouchers, clock
//! moves, and the checks every test ends with (exact errors, nothing moved,
//! conservation of tokens and rent).

use amp_channel::error::AmpError;
use amp_channel::instructions::OpenArgs;
use amp_channel::state::Channel;
use amp_channel::voucher::Voucher;
use amp_sdk::embedded::{BankError, EmbeddedBank, NativeProgram};
use amp_sdk::instructions::{self as ix, ChannelKeys};
use amp_sdk::pda;
use anchor_lang::prelude::Pubkey;
use anchor_lang::{AccountDeserialize, Discriminator};
use anchor_spl::associated_token::spl_associated_token_account::instruction::create_associated_token_account_idempotent;
use solana_instruction::{error::InstructionError, Instruction};
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;
use spl_token_2022_interface::extension::{ExtensionType, StateWithExtensions};
use spl_token_2022_interface::state::{Account as TokenAccount, Mint};

pub use amp_sdk;

/// Lamports each test wallet starts with (they never pay fees: the bank's payer does).
pub const WALLET_LAMPORTS: u64 = 10_000_000_000;
/// Decimals of the test mint (USDC-like).
pub const DECIMALS: u8 = 6;
/// A grace period comfortably inside the allowed bounds.
pub const GRACE: u32 = 3_600;

/// Which SPL token program the test mint belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Token,
    Token2022,
}

impl TokenKind {
    pub const ALL: [TokenKind; 2] = [TokenKind::Token, TokenKind::Token2022];

    pub fn program_id(self) -> Pubkey {
        match self {
            TokenKind::Token => spl_token_interface::ID,
            TokenKind::Token2022 => spl_token_2022_interface::ID,
        }
    }
}

/// A wallet with a token account of the test mint.
pub struct Party {
    pub wallet: Keypair,
    pub token: Pubkey,
}

impl Party {
    pub fn key(&self) -> Pubkey {
        self.wallet.pubkey()
    }
}

/// An open channel as the tests see it.
#[derive(Clone, Copy, Debug)]
pub struct Lane {
    pub keys: ChannelKeys,
    pub nonce: u64,
    pub generation: u64,
}

impl Lane {
    /// A voucher for this lane's current incarnation.
    pub fn voucher(&self, seq: u64, cumulative: u64) -> Voucher {
        Voucher {
            lane: self.keys.channel,
            generation: self.generation,
            seq,
            cumulative,
            expires_at: 0,
        }
    }
}

/// How a failing transaction must fail.
#[derive(Clone, Debug)]
pub enum Expected {
    /// One of the program's own errors.
    Amp(AmpError),
    /// One of Anchor's framework errors (account constraints and the like).
    Anchor(anchor_lang::error::ErrorCode),
    /// Another program's custom error code (for example a CPI caller's).
    Custom(u32),
    /// A whole-transaction error from the runtime.
    Transaction(fn(&TransactionError) -> bool),
    /// An instruction error other than a custom code (for example from SPL Token).
    Instruction(InstructionError),
}

impl Expected {
    fn matches(&self, err: &TransactionError) -> bool {
        let custom = match err {
            TransactionError::InstructionError(_, InstructionError::Custom(code)) => Some(*code),
            _ => None,
        };
        match self {
            Expected::Amp(e) => custom == Some(u32::from(*e)),
            Expected::Anchor(e) => custom == Some(u32::from(*e)),
            Expected::Custom(code) => custom == Some(*code),
            Expected::Transaction(pred) => pred(err),
            Expected::Instruction(expected) => {
                matches!(err, TransactionError::InstructionError(_, e) if e == expected)
            }
        }
    }
}

/// Everything a test may want to compare before and after a transaction.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub token_balances: Vec<(Pubkey, Option<u64>)>,
    pub lamports: Vec<(Pubkey, u64)>,
    pub accounts: Vec<(Pubkey, Option<Vec<u8>>)>,
}

/// One embedded bank, one mint, and the bookkeeping for the final checks.
pub struct Harness {
    pub bank: EmbeddedBank,
    pub kind: TokenKind,
    pub mint: Pubkey,
    mint_authority: Keypair,
    /// Every token account of the mint the test has made or seen (vaults included).
    token_accounts: Vec<Pubkey>,
    /// Every wallet and program account whose lamports a test may compare.
    watched: Vec<Pubkey>,
    minted: u64,
    next_nonce: u64,
}

impl Harness {
    pub async fn new(kind: TokenKind) -> Self {
        Self::with_programs(kind, vec![]).await
    }

    /// A harness whose bank also runs `programs` natively (callers of AMP through CPI).
    pub async fn with_programs(kind: TokenKind, programs: Vec<NativeProgram>) -> Self {
        let mut bank = EmbeddedBank::start_with(programs).await;
        let mint_authority = Keypair::new();
        let mint = create_mint(&mut bank, kind, &mint_authority, &[], |_| vec![]).await;
        Self {
            bank,
            kind,
            mint,
            mint_authority,
            token_accounts: vec![],
            watched: vec![],
            minted: 0,
            next_nonce: 1,
        }
    }

    pub fn token_program(&self) -> Pubkey {
        self.kind.program_id()
    }

    /// Sends lamports from the bank's payer to any address (a "gift" no
    /// instruction of the program asked for).
    pub async fn transfer_lamports(&mut self, to: &Pubkey, lamports: u64) {
        let payer = self.bank.payer().pubkey();
        let gift = solana_system_interface::instruction::transfer(&payer, to, lamports);
        self.bank
            .process(&[gift], &[])
            .await
            .expect("sending lamports");
    }

    /// A new wallet holding [`WALLET_LAMPORTS`].
    pub async fn wallet(&mut self) -> Keypair {
        let wallet = Keypair::new();
        let payer = self.bank.payer().pubkey();
        self.bank
            .process(
                &[solana_system_interface::instruction::transfer(
                    &payer,
                    &wallet.pubkey(),
                    WALLET_LAMPORTS,
                )],
                &[],
            )
            .await
            .expect("funding a wallet");
        self.watched.push(wallet.pubkey());
        wallet
    }

    /// The associated token account of `owner` for the test mint (created if needed).
    pub async fn token_account(&mut self, owner: &Pubkey) -> Pubkey {
        let mint = self.main_mint();
        let address = self.associated_account(&mint, owner).await;
        self.track(address);
        address
    }

    /// Mints new tokens of the test mint into `account`.
    pub async fn mint_to(&mut self, account: &Pubkey, amount: u64) {
        let mint = self.main_mint();
        self.mint_into(&mint, account, amount).await;
        self.minted += amount;
    }

    /// The harness's own mint, in the form [`OtherMint`] helpers take.
    fn main_mint(&self) -> OtherMint {
        OtherMint {
            mint: self.mint,
            token_program: self.token_program(),
        }
    }

    /// Authority over minting and freezing of the test mint and of every [`Harness::other_mint`].
    pub fn mint_authority(&self) -> &Keypair {
        &self.mint_authority
    }

    /// Another mint of `kind` (same authority as the test mint), for attacks
    /// with a wrong mint and for Token-2022 extensions; see [`create_mint`].
    /// Its tokens stay outside [`Harness::assert_conserved`].
    pub async fn other_mint(
        &mut self,
        kind: TokenKind,
        extensions: &[ExtensionType],
        init: impl FnOnce(&Pubkey) -> Vec<Instruction>,
    ) -> OtherMint {
        let authority = self.mint_authority.insecure_clone();
        let mint = create_mint(&mut self.bank, kind, &authority, extensions, init).await;
        OtherMint {
            mint,
            token_program: kind.program_id(),
        }
    }

    /// The associated token account of `owner` for another mint (created if
    /// needed), watched so that [`Harness::expect_failure`] sees any change to it.
    pub async fn other_token_account(&mut self, mint: &OtherMint, owner: &Pubkey) -> Pubkey {
        let address = self.associated_account(mint, owner).await;
        self.watch(address);
        address
    }

    /// Mints tokens of another mint into `account` (not counted as minted).
    pub async fn mint_other(&mut self, mint: &OtherMint, account: &Pubkey, amount: u64) {
        self.mint_into(mint, account, amount).await;
    }

    async fn associated_account(&mut self, mint: &OtherMint, owner: &Pubkey) -> Pubkey {
        let payer = self.bank.payer().pubkey();
        self.bank
            .process(
                &[create_associated_token_account_idempotent(
                    &payer,
                    owner,
                    &mint.mint,
                    &mint.token_program,
                )],
                &[],
            )
            .await
            .expect("creating a token account");
        pda::associated_token(owner, &mint.mint, &mint.token_program)
    }

    async fn mint_into(&mut self, mint: &OtherMint, account: &Pubkey, amount: u64) {
        let ix = spl_token_2022_interface::instruction::mint_to_checked(
            &mint.token_program,
            &mint.mint,
            account,
            &self.mint_authority.pubkey(),
            &[],
            amount,
            DECIMALS,
        )
        .expect("mint_to instruction");
        let authority = self.mint_authority.insecure_clone();
        self.bank
            .process(&[ix], &[&authority])
            .await
            .expect("minting");
    }

    /// A funded wallet with a token account holding `tokens`.
    pub async fn party(&mut self, tokens: u64) -> Party {
        let wallet = self.wallet().await;
        let token = self.token_account(&wallet.pubkey()).await;
        if tokens > 0 {
            self.mint_to(&token, tokens).await;
        }
        Party { wallet, token }
    }

    /// Adds a token account of the test mint to the conservation check.
    pub fn track(&mut self, token_account: Pubkey) {
        if !self.token_accounts.contains(&token_account) {
            self.token_accounts.push(token_account);
        }
    }

    /// Adds an address to the lamport comparisons of [`Harness::snapshot`].
    pub fn watch(&mut self, address: Pubkey) {
        if !self.watched.contains(&address) {
            self.watched.push(address);
        }
    }

    /// Watches a channel's accounts (before or after they exist): their
    /// lamports and bytes, and the vault's balance when it holds the test mint.
    pub fn watch_channel(&mut self, keys: &ChannelKeys) {
        if keys.mint == self.mint {
            self.track(keys.vault);
        }
        self.watch(keys.channel);
        self.watch(keys.vault);
    }

    pub fn next_nonce(&mut self) -> u64 {
        self.next_nonce += 1;
        self.next_nonce
    }

    /// Token balance of an account (`None` when it does not exist).
    pub async fn balance(&mut self, token_account: &Pubkey) -> Option<u64> {
        let account = self.bank.account(token_account).await.expect("bank")?;
        let state = StateWithExtensions::<TokenAccount>::unpack(&account.data).ok()?;
        Some(state.base.amount)
    }

    /// Token balance, 0 for a missing account.
    pub async fn tokens(&mut self, token_account: &Pubkey) -> u64 {
        self.balance(token_account).await.unwrap_or(0)
    }

    pub async fn lamports(&mut self, address: &Pubkey) -> u64 {
        self.bank.lamports(address).await.expect("bank")
    }

    /// The decoded Channel account (`None` once closed).
    pub async fn channel(&mut self, address: &Pubkey) -> Option<Channel> {
        let account = self.bank.account(address).await.expect("bank")?;
        assert_eq!(&account.data[..8], Channel::DISCRIMINATOR);
        Some(Channel::try_deserialize(&mut account.data.as_slice()).expect("channel data"))
    }

    /// Keys of a channel from `funder` to `recipient` in the test mint.
    pub fn keys(&self, funder: &Pubkey, recipient: &Pubkey, nonce: u64) -> ChannelKeys {
        ChannelKeys::new(*funder, *recipient, nonce, self.mint, self.token_program())
    }

    /// Default open arguments: the funder signs its own vouchers, no expiry.
    pub fn open_args(&self, recipient: &Pubkey, nonce: u64, deposit: u64) -> OpenArgs {
        OpenArgs {
            recipient: *recipient,
            nonce,
            deposit,
            grace_period: GRACE,
            expires_at: 0,
            authorized_signer: None,
        }
    }

    /// Opens a channel with `args`; tracks its vault and returns its lane.
    pub async fn open_with(&mut self, funder: &Party, args: OpenArgs) -> Result<Lane, BankError> {
        let keys = self.keys(&funder.key(), &args.recipient, args.nonce);
        self.open_keys(funder, keys, args, &[]).await
    }

    /// As [`Harness::open_with`] with `payer` fronting the rent (a sponsored
    /// open): both sign.
    pub async fn open_sponsored(
        &mut self,
        funder: &Party,
        payer: &Keypair,
        args: OpenArgs,
    ) -> Result<Lane, BankError> {
        let keys = self
            .keys(&funder.key(), &args.recipient, args.nonce)
            .with_payer(payer.pubkey());
        self.open_keys(funder, keys, args, &[payer]).await
    }

    async fn open_keys(
        &mut self,
        funder: &Party,
        keys: ChannelKeys,
        args: OpenArgs,
        payer: &[&Keypair],
    ) -> Result<Lane, BankError> {
        let open = ix::open(&keys, funder.token, args);
        let signers: Vec<&Keypair> = std::iter::once(&funder.wallet)
            .chain(payer.iter().copied())
            .collect();
        self.bank.process(&[open], &signers).await?;
        self.watch_channel(&keys);
        let generation = self
            .channel(&keys.channel)
            .await
            .expect("opened")
            .generation;
        Ok(Lane {
            keys,
            nonce: args.nonce,
            generation,
        })
    }

    /// Opens a channel from `funder` to `recipient` with a deposit and default terms.
    pub async fn open(&mut self, funder: &Party, recipient: &Party, deposit: u64) -> Lane {
        let nonce = self.next_nonce();
        let args = self.open_args(&recipient.key(), nonce, deposit);
        self.open_with(funder, args).await.expect("open")
    }

    /// `[ed25519(voucher signed by signer), settle]` paying into `destination`.
    pub fn settle_ixs(
        &self,
        lane: &Lane,
        signer: &Keypair,
        voucher: &Voucher,
        destination: &Pubkey,
    ) -> Vec<Instruction> {
        vec![sign(signer, voucher), ix::settle(&lane.keys, *destination)]
    }

    /// Settles a voucher signed by `signer` into the recipient's `destination`.
    pub async fn settle(
        &mut self,
        lane: &Lane,
        signer: &Keypair,
        voucher: &Voucher,
        destination: &Pubkey,
    ) -> Result<(), BankError> {
        let ixs = self.settle_ixs(lane, signer, voucher, destination);
        self.bank.process(&ixs, &[]).await
    }

    /// A plain token transfer of the test mint by `from` (a payment, a donation).
    pub async fn transfer(&mut self, from: &Party, to: &Pubkey, amount: u64) {
        let ix = spl_token_2022_interface::instruction::transfer_checked(
            &self.token_program(),
            &from.token,
            &self.mint,
            to,
            &from.key(),
            &[],
            amount,
            DECIMALS,
        )
        .expect("transfer instruction");
        self.bank
            .process(&[ix], &[&from.wallet])
            .await
            .expect("transfer");
    }

    /// The funder's close request, which must succeed.
    pub async fn request_close(&mut self, lane: &Lane, funder: &Keypair) {
        self.bank
            .process(&[ix::request_close(&lane.keys)], &[funder])
            .await
            .expect("request_close");
    }

    /// Balances of every tracked token account, lamports of every watched
    /// address, and the raw data of every watched account.
    pub async fn snapshot(&mut self) -> Snapshot {
        let mut token_balances = vec![];
        for account in self.token_accounts.clone() {
            token_balances.push((account, self.balance(&account).await));
        }
        let mut lamports = vec![];
        let mut accounts = vec![];
        for address in self.watched.clone() {
            lamports.push((address, self.lamports(&address).await));
            let data = self
                .bank
                .account(&address)
                .await
                .expect("bank")
                .map(|a| a.data);
            accounts.push((address, data));
        }
        Snapshot {
            token_balances,
            lamports,
            accounts,
        }
    }

    /// Runs a transaction that must fail with `expected`, and asserts that
    /// nothing it could touch changed: no token moved, no lamport, no byte.
    pub async fn expect_failure(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        expected: Expected,
    ) {
        let before = self.snapshot().await;
        let result = self.bank.process(instructions, signers).await;
        match result {
            Err(BankError::Transaction(err)) => {
                assert!(expected.matches(&err), "expected {expected:?}, got {err:?}")
            }
            other => panic!("expected {expected:?}, got {other:?}"),
        }
        assert_eq!(
            self.snapshot().await,
            before,
            "a failed transaction changed state"
        );
    }

    /// Conservation: the tracked token accounts hold every token ever minted,
    /// and the mint's supply agrees — nothing was created or lost.
    pub async fn assert_conserved(&mut self) {
        let mut total = 0u64;
        for account in self.token_accounts.clone() {
            total += self.tokens(&account).await;
        }
        assert_eq!(total, self.minted, "tokens created or lost");
        let mint = self
            .bank
            .account(&self.mint)
            .await
            .expect("bank")
            .expect("mint");
        let supply = StateWithExtensions::<Mint>::unpack(&mint.data)
            .expect("mint")
            .base
            .supply;
        assert_eq!(supply, self.minted, "mint supply disagrees");
    }
}

/// Tokens the [`Fixture`]'s funder starts with.
pub const FUNDS: u64 = 10_000;
/// The [`Fixture`] channel's deposit.
pub const DEPOSIT: u64 = 1_000;

/// A mint other than the harness's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtherMint {
    pub mint: Pubkey,
    pub token_program: Pubkey,
}

/// The scene most attacks start from: a funder holding [`FUNDS`], a recipient
/// holding nothing, and an open channel between them with [`DEPOSIT`].
pub struct Fixture {
    pub h: Harness,
    pub funder: Party,
    pub recipient: Party,
    pub lane: Lane,
}

impl Fixture {
    pub async fn new(kind: TokenKind) -> Self {
        Self::with_terms(kind, |_, _| {}).await
    }

    /// The fixture with its channel's open arguments adjusted by `terms`
    /// (which may read the harness, for example its clock).
    pub async fn with_terms(kind: TokenKind, terms: impl FnOnce(&Harness, &mut OpenArgs)) -> Self {
        let mut h = Harness::new(kind).await;
        let funder = h.party(FUNDS).await;
        let recipient = h.party(0).await;
        let nonce = h.next_nonce();
        let mut args = h.open_args(&recipient.key(), nonce, DEPOSIT);
        terms(&h, &mut args);
        let lane = h.open_with(&funder, args).await.expect("open");
        Self {
            h,
            funder,
            recipient,
            lane,
        }
    }

    /// `[ed25519, settle]` of the funder's voucher for `cumulative`, paying the recipient.
    pub fn settle_ixs(&self, seq: u64, cumulative: u64) -> Vec<Instruction> {
        let voucher = self.lane.voucher(seq, cumulative);
        self.h.settle_ixs(
            &self.lane,
            &self.funder.wallet,
            &voucher,
            &self.recipient.token,
        )
    }

    /// Settles the funder's voucher for `cumulative`, which must succeed.
    pub async fn settle(&mut self, seq: u64, cumulative: u64) {
        let ixs = self.settle_ixs(seq, cumulative);
        self.h.bank.process(&ixs, &[]).await.expect("settle");
    }

    /// The funder's close request, which must succeed.
    pub async fn request_close(&mut self) {
        self.h.request_close(&self.lane, &self.funder.wallet).await;
    }

    /// The recipient's cooperative close without a final voucher.
    pub fn close_ix(&self) -> Instruction {
        ix::close(
            &self.lane.keys,
            self.recipient.token,
            self.funder.token,
            false,
        )
    }

    /// The permissionless refund into the funder's own token account.
    pub fn refund_ix(&self) -> Instruction {
        ix::refund(&self.lane.keys, self.funder.token)
    }
}

/// The Ed25519SigVerify instruction for `voucher` signed by `signer`.
pub fn sign(signer: &Keypair, voucher: &Voucher) -> Instruction {
    let signature = signer.sign_message(&voucher.to_bytes());
    let signature: [u8; 64] = signature.into();
    ix::ed25519_verify(&signer.pubkey(), &signature, voucher)
}

/// Creates a mint of `kind` with 6 decimals. For Token-2022, `extensions`
/// sizes the account and `init` returns the extension initialisers that must
/// run before `InitializeMint2`.
pub async fn create_mint(
    bank: &mut EmbeddedBank,
    kind: TokenKind,
    authority: &Keypair,
    extensions: &[ExtensionType],
    init: impl FnOnce(&Pubkey) -> Vec<Instruction>,
) -> Pubkey {
    let mint = Keypair::new();
    let space = ExtensionType::try_calculate_account_len::<Mint>(extensions).expect("mint size");
    let lamports = rent_exempt(space);
    let payer = bank.payer().pubkey();
    let mut ixs = vec![solana_system_interface::instruction::create_account(
        &payer,
        &mint.pubkey(),
        lamports,
        space as u64,
        &kind.program_id(),
    )];
    ixs.extend(init(&mint.pubkey()));
    ixs.push(
        spl_token_2022_interface::instruction::initialize_mint2(
            &kind.program_id(),
            &mint.pubkey(),
            &authority.pubkey(),
            Some(&authority.pubkey()),
            DECIMALS,
        )
        .expect("initialize_mint2"),
    );
    bank.process(&ixs, &[&mint]).await.expect("creating a mint");
    mint.pubkey()
}

/// Lamports that make `space` bytes rent-exempt under the default rent.
pub fn rent_exempt(space: usize) -> u64 {
    anchor_lang::prelude::Rent::default().minimum_balance(space)
}
