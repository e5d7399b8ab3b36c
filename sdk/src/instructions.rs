//! Builders for every AMP instruction, from the program crate's own account
//! and instruction types.
//!
//! Each instruction has two forms: `*_accounts` returns the program's typed
//! accounts struct (for callers that need to adjust an account) and the plain
//! form returns the finished [`Instruction`].

use amp_channel::instructions::OpenArgs;
use amp_channel::state::DelegationTerms;
use amp_channel::voucher::{ed25519, Voucher};
use amp_channel::{accounts, instruction};
use anchor_lang::prelude::Pubkey;
use anchor_lang::{InstructionData, ToAccountMetas};
use solana_instruction::Instruction;

use crate::pda;

/// Every address a channel's instructions touch, resolved once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelKeys {
    /// The Channel PDA, derived from funder, recipient and nonce.
    pub channel: Pubkey,
    /// The channel's token account (a PDA), which holds the deposit.
    pub vault: Pubkey,
    /// Who deposits and is refunded; signs `open`, `top_up`, `request_close`,
    /// `delegate` and `revoke`.
    pub funder: Pubkey,
    /// Who is paid; signs the cooperative `close` and `settle_into`.
    pub recipient: Pubkey,
    /// The token the channel holds and pays in.
    pub mint: Pubkey,
    /// The program that owns `mint`: SPL Token or Token-2022.
    pub token_program: Pubkey,
    /// Who fronts the accounts' rent at `open` and gets it back at `close`
    /// or `refund`: the funder, unless a sponsor (the service) paid it.
    pub payer: Pubkey,
}

impl ChannelKeys {
    /// Derives the channel and vault addresses of `funder` paying
    /// `recipient` under `nonce`.
    pub fn new(
        funder: Pubkey,
        recipient: Pubkey,
        nonce: u64,
        mint: Pubkey,
        token_program: Pubkey,
    ) -> Self {
        let channel = pda::channel(&funder, &recipient, nonce).0;
        Self {
            channel,
            vault: pda::vault(&channel).0,
            funder,
            recipient,
            mint,
            token_program,
            payer: funder,
        }
    }

    /// The same channel with its rent fronted by `payer` (a sponsored open),
    /// as the Channel account records it.
    pub fn with_payer(self, payer: Pubkey) -> Self {
        Self { payer, ..self }
    }
}

/// Assembles an AMP instruction from its accounts and data.
pub fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: amp_channel::ID,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

/// The accounts of `open`; `funder_token` pays the deposit.
pub fn open_accounts(keys: &ChannelKeys, funder_token: Pubkey) -> accounts::Open {
    accounts::Open {
        funder: keys.funder,
        payer: keys.payer,
        channel: keys.channel,
        vault: keys.vault,
        funder_token,
        mint: keys.mint,
        token_program: keys.token_program,
        system_program: anchor_lang::system_program::ID,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// Opens the channel `keys` describes; `args.recipient` and `args.nonce` must
/// be the ones `keys` was derived from.
pub fn open(keys: &ChannelKeys, funder_token: Pubkey, args: OpenArgs) -> Instruction {
    build(
        open_accounts(keys, funder_token),
        instruction::Open { args },
    )
}

/// The accounts of `top_up`; `funder_token` pays the added deposit.
pub fn top_up_accounts(keys: &ChannelKeys, funder_token: Pubkey) -> accounts::TopUp {
    accounts::TopUp {
        funder: keys.funder,
        channel: keys.channel,
        vault: keys.vault,
        funder_token,
        mint: keys.mint,
        token_program: keys.token_program,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// Adds `amount` from `funder_token` to an open channel's deposit; the funder signs.
pub fn top_up(keys: &ChannelKeys, funder_token: Pubkey, amount: u64) -> Instruction {
    build(
        top_up_accounts(keys, funder_token),
        instruction::TopUp { amount },
    )
}

/// The accounts of `settle` on the channel's own lane; `recipient_token`
/// receives the payment.
pub fn settle_accounts(keys: &ChannelKeys, recipient_token: Pubkey) -> accounts::Settle {
    accounts::Settle {
        channel: keys.channel,
        delegation: None,
        vault: keys.vault,
        recipient_token,
        mint: keys.mint,
        token_program: keys.token_program,
        instructions: solana_sdk_ids::sysvar::instructions::ID,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// The settle instruction alone; it must follow [`ed25519_verify`] of the voucher.
pub fn settle(keys: &ChannelKeys, recipient_token: Pubkey) -> Instruction {
    build(
        settle_accounts(keys, recipient_token),
        instruction::Settle {},
    )
}

/// Settles a delegate's voucher from its delegated lane; it must follow
/// [`ed25519_verify`] of that voucher, signed by the delegate.
pub fn settle_delegated(
    keys: &ChannelKeys,
    delegate: &Pubkey,
    recipient_token: Pubkey,
) -> Instruction {
    let mut accounts = settle_accounts(keys, recipient_token);
    accounts.delegation = Some(pda::delegation(&keys.channel, delegate).0);
    build(accounts, instruction::Settle {})
}

/// The accounts of the cooperative `close`: a final payment goes to
/// `recipient_token`, the rest of the vault to `funder_token`.
pub fn close_accounts(
    keys: &ChannelKeys,
    recipient_token: Pubkey,
    funder_token: Pubkey,
) -> accounts::Close {
    accounts::Close {
        recipient: keys.recipient,
        channel: keys.channel,
        payer: keys.payer,
        vault: keys.vault,
        recipient_token,
        funder_token,
        mint: keys.mint,
        token_program: keys.token_program,
        instructions: solana_sdk_ids::sysvar::instructions::ID,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// The recipient's cooperative close; with `final_voucher` it must follow
/// [`ed25519_verify`] of that voucher.
pub fn close(
    keys: &ChannelKeys,
    recipient_token: Pubkey,
    funder_token: Pubkey,
    final_voucher: bool,
) -> Instruction {
    build(
        close_accounts(keys, recipient_token, funder_token),
        instruction::Close { final_voucher },
    )
}

/// The accounts of `request_close`.
pub fn request_close_accounts(keys: &ChannelKeys) -> accounts::RequestClose {
    accounts::RequestClose {
        funder: keys.funder,
        channel: keys.channel,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// The funder's close request: starts the grace period, during which
/// vouchers can still be settled.
pub fn request_close(keys: &ChannelKeys) -> Instruction {
    build(request_close_accounts(keys), instruction::RequestClose {})
}

/// The accounts of `refund`; the vault's balance goes to `funder_token`.
pub fn refund_accounts(keys: &ChannelKeys, funder_token: Pubkey) -> accounts::Refund {
    accounts::Refund {
        channel: keys.channel,
        payer: keys.payer,
        vault: keys.vault,
        funder_token,
        mint: keys.mint,
        token_program: keys.token_program,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// Refunds the vault to `funder_token` and closes the channel once the grace
/// period after a close request (or expiry) has ended; anyone may sign.
pub fn refund(keys: &ChannelKeys, funder_token: Pubkey) -> Instruction {
    build(refund_accounts(keys, funder_token), instruction::Refund {})
}

/// The accounts of `delegate` for `delegate`'s lane; `funder_token` pays the
/// cap and the funder the rent (set `payer` for a sponsor).
pub fn delegate_accounts(
    keys: &ChannelKeys,
    delegate: &Pubkey,
    funder_token: Pubkey,
) -> accounts::Delegate {
    accounts::Delegate {
        funder: keys.funder,
        payer: keys.funder,
        channel: keys.channel,
        delegation: pda::delegation(&keys.channel, delegate).0,
        vault: keys.vault,
        funder_token,
        mint: keys.mint,
        token_program: keys.token_program,
        system_program: anchor_lang::system_program::ID,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// Gives `terms.delegate` its own lane, depositing `terms.cap` for it.
pub fn delegate(keys: &ChannelKeys, funder_token: Pubkey, terms: DelegationTerms) -> Instruction {
    build(
        delegate_accounts(keys, &terms.delegate, funder_token),
        instruction::Delegate { terms },
    )
}

/// The accounts of `revoke` for `delegate`'s lane.
pub fn revoke_accounts(keys: &ChannelKeys, delegate: &Pubkey) -> accounts::Revoke {
    accounts::Revoke {
        funder: keys.funder,
        channel: keys.channel,
        delegation: pda::delegation(&keys.channel, delegate).0,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// The funder revokes `delegate`'s lane: its grace period starts, after which
/// [`close_delegation`] frees the unspent cap.
pub fn revoke(keys: &ChannelKeys, delegate: &Pubkey) -> Instruction {
    build(revoke_accounts(keys, delegate), instruction::Revoke {})
}

/// The accounts of `close_delegation` for `delegate`'s lane; `closer` signs
/// and `payer`, who fronted the delegation's rent, gets it back.
pub fn close_delegation_accounts(
    keys: &ChannelKeys,
    delegate: &Pubkey,
    closer: Pubkey,
    payer: Pubkey,
) -> accounts::CloseDelegation {
    accounts::CloseDelegation {
        closer,
        channel: keys.channel,
        delegation: pda::delegation(&keys.channel, delegate).0,
        payer,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// Closes a delegation; `closer` signs (the recipient any time, anyone after
/// grace); the rent goes back to `payer` (the Delegation's `payer`).
pub fn close_delegation(
    keys: &ChannelKeys,
    delegate: &Pubkey,
    closer: Pubkey,
    payer: Pubkey,
) -> Instruction {
    build(
        close_delegation_accounts(keys, delegate, closer, payer),
        instruction::CloseDelegation {},
    )
}

/// `upstream_delegate` is the delegate key when the upstream voucher is a delegate's.
pub fn settle_into_accounts(
    upstream: &ChannelKeys,
    upstream_delegate: Option<&Pubkey>,
    downstream: &ChannelKeys,
) -> accounts::SettleInto {
    accounts::SettleInto {
        recipient: upstream.recipient,
        upstream: upstream.channel,
        upstream_delegation: upstream_delegate.map(|d| pda::delegation(&upstream.channel, d).0),
        upstream_vault: upstream.vault,
        downstream: downstream.channel,
        downstream_vault: downstream.vault,
        mint: upstream.mint,
        token_program: upstream.token_program,
        instructions: solana_sdk_ids::sysvar::instructions::ID,
        event_authority: pda::event_authority(),
        program: amp_channel::ID,
    }
}

/// Settles an upstream voucher into `downstream` (funded by the upstream
/// recipient, who signs); it must follow [`ed25519_verify`] of that voucher.
pub fn settle_into(
    upstream: &ChannelKeys,
    upstream_delegate: Option<&Pubkey>,
    downstream: &ChannelKeys,
) -> Instruction {
    build(
        settle_into_accounts(upstream, upstream_delegate, downstream),
        instruction::SettleInto {},
    )
}

/// The Ed25519SigVerify instruction proving `signer` signed `voucher`, in the
/// canonical layout the program accepts.
pub fn ed25519_verify(signer: &Pubkey, signature: &[u8; 64], voucher: &Voucher) -> Instruction {
    Instruction {
        program_id: solana_sdk_ids::ed25519_program::ID,
        accounts: vec![],
        data: ed25519::instruction_data(signer, signature, &voucher.to_bytes()).to_vec(),
    }
}
