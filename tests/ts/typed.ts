// The Anchor TS view of idl/amp_channel.json, checked by the compiler.
//
// Every amp_channel instruction is called the way a TypeScript client
// naturally calls it: `program.methods.<ix>(args).accounts({...})` naming only
// the accounts the client cannot resolve from the IDL (PDAs, fixed addresses,
// `has_one` relations, the event-CPI pair). Signers are the provider's wallet
// (@anchor-lang/core fills them before reading relations), so each party calls
// through its own provider: `program` here is the funder's for the funder's
// instructions, and `recipientProgram` the recipient's for close and
// settle_into.
// `npx tsc --noEmit -p tests/ts` fails if the IDL or its type file
// (idl/amp_channel.ts) stops allowing that. Nothing here runs: the function
// is only type-checked (and emitted by tests/ts/run, harmlessly).

import { BN, Program, type IdlAccounts, type IdlEvents, type IdlTypes } from "@anchor-lang/core";
import { PublicKey, type TransactionInstruction, type TransactionSignature } from "@solana/web3.js";

import type { AmpChannel } from "../../idl/amp_channel";

type Channel = IdlAccounts<AmpChannel>["channel"];
type Delegation = IdlAccounts<AmpChannel>["delegation"];
type OpenArgs = IdlTypes<AmpChannel>["openArgs"];
type DelegationTerms = IdlTypes<AmpChannel>["delegationTerms"];
type ChannelSettled = IdlEvents<AmpChannel>["channelSettled"];

/** What a client holds before it calls anything: keys it owns or was given. */
export interface Known {
  /** The channel (from `open`'s `.pubkeys()`, or derived from its seeds). */
  channel: PublicKey;
  /** A downstream channel the upstream recipient funds (`settle_into`). */
  downstream: PublicKey;
  /** A delegation account (derived from its seeds, or from an event). */
  delegation: PublicKey;
  mint: PublicKey;
  /** SPL Token or Token-2022: whichever owns the mint. */
  tokenProgram: PublicKey;
  funderToken: PublicKey;
  recipientToken: PublicKey;
  recipient: PublicKey;
  delegate: PublicKey;
  /** The Ed25519SigVerify instruction carrying a signed voucher. */
  voucherIx: TransactionInstruction;
}

export async function everyInstruction(
  program: Program<AmpChannel>,
  recipientProgram: Program<AmpChannel>,
  k: Known,
): Promise<TransactionSignature[]> {
  const args: OpenArgs = {
    recipient: k.recipient,
    nonce: new BN(7),
    deposit: new BN(1_000_000),
    gracePeriod: 3_600,
    expiresAt: new BN(0),
    authorizedSigner: null,
  };
  const terms: DelegationTerms = { delegate: k.delegate, cap: new BN(1_000), expiresAt: new BN(0) };

  return [
    // funder, payer = the wallet; channel, vault: PDAs; system program, event authority, program: fixed.
    await program.methods
      .open(args)
      .accounts({ funderToken: k.funderToken, mint: k.mint, tokenProgram: k.tokenProgram })
      .rpc(),
    // funder = the wallet (and the channel's, `has_one`); mint: the channel's; vault: PDA.
    await program.methods
      .topUp(new BN(500))
      .accounts({ channel: k.channel, funderToken: k.funderToken, tokenProgram: k.tokenProgram })
      .rpc(),
    // The funder's own lane: no delegation. mint: the channel's; vault: PDA; instructions: sysvar.
    await program.methods
      .settle()
      .accounts({
        channel: k.channel,
        delegation: null,
        recipientToken: k.recipientToken,
        tokenProgram: k.tokenProgram,
      })
      .preInstructions([k.voucherIx])
      .rpc(),
    // A delegate's lane.
    await program.methods
      .settle()
      .accounts({
        channel: k.channel,
        delegation: k.delegation,
        recipientToken: k.recipientToken,
        tokenProgram: k.tokenProgram,
      })
      .preInstructions([k.voucherIx])
      .rpc(),
    // recipient = the wallet of the recipient's provider; payer, mint: the channel's.
    await recipientProgram.methods
      .close(true)
      .accounts({
        channel: k.channel,
        recipientToken: k.recipientToken,
        funderToken: k.funderToken,
        tokenProgram: k.tokenProgram,
      })
      .preInstructions([k.voucherIx])
      .rpc(),
    // funder = the wallet.
    await program.methods.requestClose().accounts({ channel: k.channel }).rpc(),
    await program.methods
      .refund()
      .accounts({ channel: k.channel, funderToken: k.funderToken, tokenProgram: k.tokenProgram })
      .rpc(),
    // funder, payer = the wallet; delegation: PDA of the channel and `terms.delegate`.
    await program.methods
      .delegate(terms)
      .accounts({ channel: k.channel, funderToken: k.funderToken, tokenProgram: k.tokenProgram })
      .rpc(),
    // funder = the wallet; channel: the delegation's.
    await program.methods.revoke().accounts({ delegation: k.delegation }).rpc(),
    // closer = the wallet; channel, payer: the delegation's.
    await program.methods.closeDelegation().accounts({ delegation: k.delegation }).rpc(),
    // recipient = the wallet of the upstream recipient's provider; mint: the
    // upstream channel's; both vaults: PDAs.
    await recipientProgram.methods
      .settleInto()
      .accounts({
        upstream: k.channel,
        upstreamDelegation: null,
        downstream: k.downstream,
        tokenProgram: k.tokenProgram,
      })
      .preInstructions([k.voucherIx])
      .rpc(),
  ];
}

/** The resolved accounts are resolved: naming one is a type error. */
export function resolvedAccountsAreNotAccepted(program: Program<AmpChannel>, k: Known): void {
  void program.methods.requestClose().accounts({
    channel: k.channel,
    // @ts-expect-error the event authority is a PDA in the IDL
    eventAuthority: PublicKey.default,
  });
  void program.methods.requestClose().accounts({
    channel: k.channel,
    // @ts-expect-error `program` has the program's address in the IDL
    program: program.programId,
  });
  void program.methods.settle().accounts({
    channel: k.channel,
    delegation: null,
    recipientToken: k.recipientToken,
    tokenProgram: k.tokenProgram,
    // @ts-expect-error the mint is the channel's (`has_one`)
    mint: k.mint,
  });
}

/** Accounts, decoded with their IDL types. */
export async function readChannels(
  program: Program<AmpChannel>,
  k: Known,
): Promise<{ one: Channel; fromFunder: Channel[]; lane: Delegation }> {
  const one: Channel = await program.account.channel.fetch(k.channel);
  const funder: PublicKey = one.funder;
  const deposited: BN = one.deposited;
  const grace: number = one.gracePeriod;
  void deposited;
  void grace;
  // Channel layout: discriminator (8), funder (32), recipient (32), mint (32), ...
  const all = await program.account.channel.all([
    { memcmp: { offset: 8, bytes: funder.toBase58() } },
    { memcmp: { offset: 8 + 32, bytes: k.recipient.toBase58() } },
  ]);
  const fromFunder: Channel[] = all.map((entry) => entry.account);
  const lane: Delegation = await program.account.delegation.fetch(k.delegation);
  return { one, fromFunder, lane };
}

/** The IDL's constants and events carry their types too. */
export function constantsAndEvents(program: Program<AmpChannel>, event: ChannelSettled): string[] {
  const names: string[] = (program.idl.constants ?? []).map((constant) => constant.name);
  const settled: BN = event.settled;
  const lane: PublicKey = event.lane;
  return [...names, settled.toString(), lane.toBase58()];
}
