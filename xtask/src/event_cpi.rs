//! Gives the accounts `#[event_cpi]` appends the resolution data Anchor 1.2's
//! IDL builder drops.
//!
//! `#[event_cpi]` (anchor-lang 1.2) appends
//!
//! ```ignore
//! #[account(address = crate::EVENT_AUTHORITY_AND_BUMP.0)]
//! pub event_authority: UncheckedAccount<'info>,
//! pub program: UncheckedAccount<'info>,
//! ```
//!
//! and the IDL builder keeps an `address` constraint only when it is a plain
//! constant or a call, so the field access `EVENT_AUTHORITY_AND_BUMP.0` is
//! lost: both accounts reach the IDL bare, and a client (the Anchor TS types
//! above all) must pass them by hand. Here they get what they are: the event
//! authority is the PDA `["__event_authority"]` of the program itself (the
//! form Anchor's IDL had when the macro declared it by `seeds`), and
//! `program` is the program's own address.

use anchor_lang_idl::types::{
    Idl, IdlInstructionAccount, IdlInstructionAccountItem, IdlPda, IdlSeed, IdlSeedConst,
};

/// The seed of a program's event authority (anchor-syn's `EventAuthority`).
pub const EVENT_AUTHORITY_SEED: &[u8] = b"__event_authority";

/// Completes every `event_authority` account immediately followed by a
/// `program` account (the pair `#[event_cpi]` appends; the Anchor TS resolver
/// recognises it by the same adjacency), in every instruction and nested
/// account group. Accounts that already carry an address or a PDA, or a
/// `program` with another address, are left as they are.
pub fn complete_event_cpi_accounts(idl: &mut Idl) {
    let program_id = idl.address.clone();
    for instruction in &mut idl.instructions {
        complete(&mut instruction.accounts, &program_id);
    }
}

fn complete(accounts: &mut [IdlInstructionAccountItem], program_id: &str) {
    for item in accounts.iter_mut() {
        if let IdlInstructionAccountItem::Composite(group) = item {
            complete(&mut group.accounts, program_id);
        }
    }
    for i in 1..accounts.len() {
        let (head, tail) = accounts.split_at_mut(i);
        if let (
            IdlInstructionAccountItem::Single(authority),
            IdlInstructionAccountItem::Single(program),
        ) = (&mut head[i - 1], &mut tail[0])
        {
            if is_bare_event_cpi_pair(authority, program, program_id) {
                authority.pda = Some(IdlPda {
                    seeds: vec![IdlSeed::Const(IdlSeedConst {
                        value: EVENT_AUTHORITY_SEED.to_vec(),
                    })],
                    program: None,
                });
                program.address = Some(program_id.to_string());
            }
        }
    }
}

fn is_bare_event_cpi_pair(
    authority: &IdlInstructionAccount,
    program: &IdlInstructionAccount,
    program_id: &str,
) -> bool {
    authority.name == "event_authority"
        && program.name == "program"
        && authority.address.is_none()
        && authority.pda.is_none()
        && !authority.writable
        && !authority.signer
        && program.pda.is_none()
        && !program.writable
        && !program.signer
        && program
            .address
            .as_deref()
            .is_none_or(|address| address == program_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang_idl::types::IdlInstructionAccounts;

    fn account(name: &str) -> IdlInstructionAccountItem {
        IdlInstructionAccountItem::Single(IdlInstructionAccount {
            name: name.into(),
            docs: vec![],
            writable: false,
            signer: false,
            optional: false,
            address: None,
            pda: None,
            relations: vec![],
        })
    }

    fn single(item: &IdlInstructionAccountItem) -> &IdlInstructionAccount {
        match item {
            IdlInstructionAccountItem::Single(account) => account,
            IdlInstructionAccountItem::Composite(_) => panic!("expected a single account"),
        }
    }

    const ID: &str = "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX";

    #[test]
    fn completes_the_adjacent_pair_at_any_depth() {
        let mut accounts = vec![
            account("payer"),
            IdlInstructionAccountItem::Composite(IdlInstructionAccounts {
                name: "inner".into(),
                accounts: vec![account("event_authority"), account("program")],
            }),
            account("event_authority"),
            account("program"),
        ];
        complete(&mut accounts, ID);
        let expected_pda = Some(IdlPda {
            seeds: vec![IdlSeed::Const(IdlSeedConst {
                value: b"__event_authority".to_vec(),
            })],
            program: None,
        });
        assert_eq!(single(&accounts[2]).pda, expected_pda);
        assert_eq!(single(&accounts[3]).address.as_deref(), Some(ID));
        let IdlInstructionAccountItem::Composite(inner) = &accounts[1] else {
            unreachable!()
        };
        assert_eq!(single(&inner.accounts[0]).pda, expected_pda);
        assert_eq!(single(&inner.accounts[1]).address.as_deref(), Some(ID));
        assert_eq!(single(&accounts[0]), single(&account("payer")));
    }

    #[test]
    fn leaves_other_accounts_alone() {
        // Not adjacent, or named differently (a CPI target's event authority).
        let mut accounts = vec![
            account("event_authority"),
            account("mint"),
            account("program"),
            account("amp_event_authority"),
            account("amp_program"),
        ];
        let before = accounts.clone();
        complete(&mut accounts, ID);
        assert_eq!(accounts, before);

        // A `program` that is some other program.
        let mut accounts = vec![account("event_authority"), account("program")];
        if let IdlInstructionAccountItem::Single(program) = &mut accounts[1] {
            program.address = Some("11111111111111111111111111111111".into());
        }
        let before = accounts.clone();
        complete(&mut accounts, ID);
        assert_eq!(accounts, before);
    }
}
