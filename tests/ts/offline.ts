// What e2e.ts relies on, checked without a node (tests/ts/run runs it):
//
// - the voucher codec and the Ed25519SigVerify layout (against the Rust test
//   vectors; the signature verified by Node's own ed25519);
// - @anchor-lang/core resolving, at run time, every account the typed calls
//   in typed.ts leave out (PDAs, relations, the event-CPI pair, sysvars), from
//   the committed IDL, over a connection that answers from memory;
// - reading `emit_cpi!` events out of a transaction's inner instructions
//   (eventsOf), including what it must refuse.

import { AnchorProvider, BN, Program, Wallet, utils } from "@anchor-lang/core";
import { TOKEN_PROGRAM_ID } from "@solana/spl-token";
import {
  Connection,
  Ed25519Program,
  Keypair,
  PublicKey,
  SYSVAR_INSTRUCTIONS_PUBKEY,
  SystemProgram,
  Transaction,
  type AccountInfo,
  type TransactionInstruction,
  type VersionedTransactionResponse,
} from "@solana/web3.js";
import { createPublicKey, verify } from "node:crypto";

import idlJson from "../../idl/amp_channel.json";
import type { AmpChannel } from "../../idl/amp_channel";
import { eventsOf, selfCheck, voucherInstruction, type Voucher } from "./e2e";

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function same(actual: PublicKey | undefined, expected: PublicKey, what: string): void {
  check(actual?.equals(expected) === true, `${what}: ${actual?.toBase58()}, expected ${expected.toBase58()}`);
}

/** The account metas of `ix` by the IDL's account names, in order. */
function metas(program: Program<AmpChannel>, name: string, ix: TransactionInstruction): Map<string, PublicKey> {
  const idlIx = program.idl.instructions.find((i) => i.name === name);
  check(idlIx !== undefined, `no instruction ${name}`);
  const names = idlIx.accounts.map((a) => a.name);
  check(names.length === ix.keys.length, `${name}: ${ix.keys.length} accounts, the IDL has ${names.length}`);
  return new Map(names.map((n, i) => [n, ix.keys[i]!.pubkey]));
}

const accounts = new Map<string, AccountInfo<Buffer>>();
let transaction: VersionedTransactionResponse | null = null;

const connection = new Connection("http://127.0.0.1:9"); // never contacted
connection.getAccountInfo = async (key: PublicKey) => accounts.get(key.toBase58()) ?? null;
connection.getAccountInfoAndContext = async (key: PublicKey) => ({
  context: { slot: 1 },
  value: accounts.get(key.toBase58()) ?? null,
});
connection.getTransaction = (async () => transaction) as unknown as Connection["getTransaction"];

const wallet = Keypair.generate();
const provider = new AnchorProvider(connection, new Wallet(wallet), { commitment: "confirmed" });
const program = new Program<AmpChannel>(idlJson as AmpChannel, provider);
const programId = program.programId;
const eventAuthority = PublicKey.findProgramAddressSync([Buffer.from("__event_authority")], programId)[0];

async function store(name: "channel" | "delegation", address: PublicKey, data: object): Promise<void> {
  accounts.set(address.toBase58(), {
    data: await program.coder.accounts.encode(name, data),
    owner: programId,
    executable: false,
    lamports: 1_000_000,
    rentEpoch: 0,
  });
}

async function resolution(): Promise<void> {
  const funder = wallet.publicKey;
  const recipient = Keypair.generate().publicKey;
  const mint = Keypair.generate().publicKey;
  const funderToken = Keypair.generate().publicKey;
  const recipientToken = Keypair.generate().publicKey;
  const delegate = Keypair.generate().publicKey;
  const tokenProgram = TOKEN_PROGRAM_ID;
  const nonce = new BN("0102030405060708", 16);

  // open: nothing fetched; the channel PDA from funder and the args.
  const open = await program.methods
    .open({
      recipient,
      nonce,
      deposit: new BN(1_000),
      gracePeriod: 3_600,
      expiresAt: new BN(0),
      authorizedSigner: null,
    })
    .accounts({ funderToken, mint, tokenProgram })
    .instruction();
  const o = metas(program, "open", open);
  const [channel] = PublicKey.findProgramAddressSync(
    [Buffer.from("amp-channel"), funder.toBuffer(), recipient.toBuffer(), nonce.toArrayLike(Buffer, "le", 8)],
    programId,
  );
  const [vault] = PublicKey.findProgramAddressSync([Buffer.from("amp-vault"), channel.toBuffer()], programId);
  same(o.get("funder"), funder, "open.funder");
  same(o.get("payer"), funder, "open.payer (the wallet: the single-signer form)");
  same(o.get("channel"), channel, "open.channel");
  same(o.get("vault"), vault, "open.vault");
  same(o.get("systemProgram"), SystemProgram.programId, "open.systemProgram");
  same(o.get("eventAuthority"), eventAuthority, "open.eventAuthority");
  same(o.get("program"), programId, "open.program");
  check(open.keys.find((k) => k.pubkey.equals(funder))?.isSigner === true, "open: the funder signs");

  await store("channel", channel, {
    funder,
    recipient,
    mint,
    authorizedSigner: funder,
    nonce,
    generation: new BN(5),
    deposited: new BN(1_000),
    settled: new BN(0),
    delegated: new BN(0),
    delegations: 1,
    closeRequestedAt: new BN(0),
    expiresAt: new BN(0),
    gracePeriod: 3_600,
    bump: 255,
    vaultBump: 254,
    payer: funder,
  });

  // settle, own lane: mint from the channel; the absent delegation is the program id.
  const settle = await program.methods
    .settle()
    .accounts({ channel, delegation: null, recipientToken, tokenProgram })
    .instruction();
  const s = metas(program, "settle", settle);
  same(s.get("delegation"), programId, "settle.delegation (None)");
  same(s.get("vault"), vault, "settle.vault");
  same(s.get("mint"), mint, "settle.mint");
  same(s.get("instructions"), SYSVAR_INSTRUCTIONS_PUBKEY, "settle.instructions");
  same(s.get("eventAuthority"), eventAuthority, "settle.eventAuthority");
  same(s.get("program"), programId, "settle.program");

  // close: payer (who gets the rent back) and mint from the channel. The recipient signs, and the
  // resolver fills every signer with the provider's wallet before it reads
  // relations: the recipient closes through its own provider (as e2e.ts does).
  const close = await program.methods
    .close(false)
    .accounts({ channel, recipientToken, funderToken, tokenProgram })
    .instruction();
  const c = metas(program, "close", close);
  same(c.get("recipient"), wallet.publicKey, "close.recipient (the wallet)");
  same(c.get("payer"), funder, "close.payer (the channel's)");
  same(c.get("mint"), mint, "close.mint");

  const request = await program.methods.requestClose().accounts({ channel }).instruction();
  same(metas(program, "requestClose", request).get("funder"), funder, "requestClose.funder");

  // delegate: the delegation PDA from the channel and `terms.delegate`.
  const delegateIx = await program.methods
    .delegate({ delegate, cap: new BN(10), expiresAt: new BN(0) })
    .accounts({ channel, funderToken, tokenProgram })
    .instruction();
  const [delegation] = PublicKey.findProgramAddressSync(
    [Buffer.from("amp-delegation"), channel.toBuffer(), delegate.toBuffer()],
    programId,
  );
  same(metas(program, "delegate", delegateIx).get("delegation"), delegation, "delegate.delegation");

  // revoke: channel from the delegation, funder from the channel.
  await store("delegation", delegation, {
    channel,
    delegate,
    cap: new BN(10),
    settled: new BN(0),
    generation: new BN(6),
    expiresAt: new BN(0),
    revokeRequestedAt: new BN(0),
    bump: 253,
    payer: funder,
  });
  const revoke = await program.methods.revoke().accounts({ delegation }).instruction();
  const r = metas(program, "revoke", revoke);
  same(r.get("channel"), channel, "revoke.channel");
  same(r.get("funder"), funder, "revoke.funder");
}

function vouchers(): void {
  selfCheck();
  const signer = Keypair.generate();
  const voucher: Voucher = {
    lane: Keypair.generate().publicKey,
    generation: 77n,
    seq: 3n,
    cumulative: 1_234n,
    expiresAt: 0n,
  };
  const ix = voucherInstruction(signer, voucher);
  check(ix.programId.equals(Ed25519Program.programId) && ix.keys.length === 0, "ed25519 program, no accounts");
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(signer.publicKey.toBytes()).toString("base64url") },
    format: "jwk",
  });
  check(verify(null, ix.data.subarray(112), key, ix.data.subarray(48, 112)), "the voucher signature verifies");
}

async function events(): Promise<void> {
  const channel = Keypair.generate().publicKey;
  const recipientToken = Keypair.generate().publicKey;
  // A transaction whose program the inner instructions below invoke itself.
  const feePayer = wallet.publicKey;
  const selfCpiAccounts = [eventAuthority, TOKEN_PROGRAM_ID, channel, recipientToken];
  const outer = new Transaction({ feePayer, recentBlockhash: PublicKey.default.toBase58() }).add({
    programId,
    keys: selfCpiAccounts.map((pubkey) => ({ pubkey, isSigner: false, isWritable: false })),
    data: Buffer.alloc(8),
  });
  const message = outer.compileMessage();
  const index = (key: PublicKey): number => message.accountKeys.findIndex((k) => k.equals(key));

  const settled = {
    channel,
    lane: channel,
    amount: new BN(250),
    settled: new BN(400),
    destination: recipientToken,
  };
  const discriminator = program.idl.events.find((e) => e.name === "channelSettled")!.discriminator;
  const eventData = Buffer.concat([
    Buffer.from("e445a52e51cb9a1d", "hex"),
    Buffer.from(discriminator),
    program.coder.types.encode("channelSettled", settled),
  ]);
  const response = (innerInstructions: unknown, err: unknown = null): VersionedTransactionResponse =>
    ({
      slot: 1,
      blockTime: null,
      version: "legacy",
      transaction: { message, signatures: [] },
      meta: { err, fee: 5_000, preBalances: [], postBalances: [], innerInstructions, loadedAddresses: undefined },
    }) as unknown as VersionedTransactionResponse;
  const selfCpi = (first: PublicKey, data: Buffer) => ({
    programIdIndex: index(programId),
    accounts: [index(first)],
    data: utils.bytes.bs58.encode(data),
  });
  const tokenCall = { programIdIndex: index(TOKEN_PROGRAM_ID), accounts: [], data: utils.bytes.bs58.encode(Buffer.from([3])) };

  transaction = response([{ index: 0, instructions: [tokenCall, selfCpi(eventAuthority, eventData)] }]);
  const found = await eventsOf(program, "sig");
  check(found.length === 1 && found[0]!.name === "channelSettled", `events: ${JSON.stringify(found)}`);
  const data = found[0]!.data as typeof settled;
  same(data.channel, channel, "event.channel");
  same(data.destination, recipientToken, "event.destination");
  check(data.amount.eqn(250) && data.settled.eqn(400), "event amounts");

  // An untagged self-invocation is not an event.
  transaction = response([{ index: 0, instructions: [selfCpi(eventAuthority, eventData.subarray(8))] }]);
  check((await eventsOf(program, "sig")).length === 0, "an untagged self-CPI is not an event");

  const refused = async (what: string, tx: VersionedTransactionResponse): Promise<void> => {
    transaction = tx;
    const outcome = await eventsOf(program, "sig").then(
      () => "accepted",
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    check(outcome !== "accepted", `${what} was accepted`);
  };
  await refused("an event not signed by the event authority", response([
    { index: 0, instructions: [selfCpi(channel, eventData)] },
  ]));
  await refused("a transaction without innerInstructions", response(undefined));
  await refused("a failed transaction", response([], { InstructionError: [0, "InvalidArgument"] }));
}

async function main(): Promise<void> {
  vouchers();
  await resolution();
  await events();
  console.log("tests/ts offline: vouchers, account resolution and event decoding ok");
}

main().catch((err: unknown) => {
  console.error(`offline check failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exit(1);
});
