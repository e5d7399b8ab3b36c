// End to end through the official Anchor TS client and nothing of ours but
// the IDL: open a channel, settle a voucher signed here, request the close,
// close cooperatively with a final voucher, and read every `emit_cpi!` event
// from the transactions' inner instructions. Prints a JSON summary; exits
// non-zero on any failure.
//
//   tests/ts/run                       # npm ci + tsc (emits tests/ts/dist/)
//   AMP_RPC_URL=http://127.0.0.1:8899 \
//   AMP_PAYER=payer.json AMP_MINT=<mint> AMP_MINT_AUTHORITY=mint-authority.json \
//   node tests/ts/dist/tests/ts/e2e.js
//
// AMP_PAYER funds everything and is the channel's funder; AMP_MINT_AUTHORITY
// mints the deposit to it (both are solana CLI keypair files, JSON arrays of
// 64 bytes; they may be the same file). The mint may be SPL Token or
// Token-2022. The recipient and the voucher key are fresh keypairs; the payer
// gives the recipient the lamports for its close transaction. The program
// must be deployed at the address in idl/amp_channel.json.
//
// Each party calls through its own provider, because @anchor-lang/core fills
// every signer the call does not name with the provider's wallet (before it
// looks at `has_one` relations): the funder's provider sends open and
// request_close, the recipient's sends close.
//
// Voucher bytes and the Ed25519SigVerify instruction follow docs/SPEC.md
// section 3 and "Verifying a voucher on-chain" (the Rust twins:
// programs/amp-channel/src/voucher/{mod,ed25519}.rs); `selfCheck` pins both
// to the Rust test vectors before anything is sent.

import { AnchorProvider, BN, Program, Wallet, utils, type IdlEvents } from "@anchor-lang/core";
import {
  TOKEN_2022_PROGRAM_ID,
  TOKEN_PROGRAM_ID,
  createAssociatedTokenAccountIdempotentInstruction,
  createMintToCheckedInstruction,
  getAssociatedTokenAddressSync,
  getMint,
} from "@solana/spl-token";
import {
  Connection,
  Ed25519Program,
  Keypair,
  PublicKey,
  SystemProgram,
  Transaction,
  type TransactionInstruction,
  type TransactionSignature,
} from "@solana/web3.js";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

import idlJson from "../../idl/amp_channel.json";
import type { AmpChannel } from "../../idl/amp_channel";

/** Tokens (base units) deposited at open. */
const DEPOSIT = 1_000_000n;
/** Cumulative amount of the voucher settled by `settle`. */
const FIRST = 250_000n;
/** Cumulative amount of the final voucher settled by `close`. */
const FINAL = 400_000n;
/** Grace period asked at open (clamped into the IDL's bounds). */
const GRACE_WANTED = 600;
/** Lamports the payer gives the recipient for its close (above rent exemption). */
const RECIPIENT_LAMPORTS = 2_000_000;

// ---------------------------------------------------------------- protocol

/** `AMP1` (SPEC section 3). */
const VOUCHER_MAGIC = Buffer.from("AMP1", "ascii");
const VOUCHER_LEN = 68;

export interface Voucher {
  /** The Channel address (own lane) or a Delegation address. */
  lane: PublicKey;
  /** The lane account's generation (its creation slot). */
  generation: bigint;
  /** Strictly increasing per lane; checked off-chain only. */
  seq: bigint;
  /** Cumulative amount authorised on the lane. */
  cumulative: bigint;
  /** Unix seconds from which the voucher is dead; 0 = never. */
  expiresAt: bigint;
}

/** The exact 68 bytes a lane's signer signs (little-endian throughout). */
export function encodeVoucher(v: Voucher): Buffer {
  const out = Buffer.alloc(VOUCHER_LEN);
  VOUCHER_MAGIC.copy(out, 0);
  v.lane.toBuffer().copy(out, 4);
  out.writeBigUInt64LE(v.generation, 36); // these throw outside the u64/i64 range
  out.writeBigUInt64LE(v.seq, 44);
  out.writeBigUInt64LE(v.cumulative, 52);
  out.writeBigInt64LE(v.expiresAt, 60);
  return out;
}

/**
 * The Ed25519SigVerify instruction carrying `voucher` signed by `signer`, in
 * the only layout the program accepts: one signature, every offset inside
 * this instruction (index u16::MAX), pubkey at 16, signature at 48, the
 * 68-byte voucher at 112. web3.js writes exactly that when no
 * `instructionIndex` is given; `checkEd25519Layout` makes sure.
 */
export function voucherInstruction(signer: Keypair, voucher: Voucher): TransactionInstruction {
  const ix = Ed25519Program.createInstructionWithPrivateKey({
    privateKey: signer.secretKey,
    message: encodeVoucher(voucher),
  });
  checkEd25519Layout(ix.data, signer.publicKey, encodeVoucher(voucher));
  return ix;
}

function checkEd25519Layout(data: Buffer, signer: PublicKey, message: Buffer): void {
  const CURRENT = 0xffff;
  const expectedHeader = [1, 0];
  const expectedOffsets = [48, CURRENT, 16, CURRENT, 112, VOUCHER_LEN, CURRENT];
  const offsets = expectedOffsets.map((_, i) => data.readUInt16LE(2 + 2 * i));
  check(
    data.length === 112 + VOUCHER_LEN &&
      data[0] === expectedHeader[0] &&
      data[1] === expectedHeader[1] &&
      offsets.every((value, i) => value === expectedOffsets[i]) &&
      data.subarray(16, 48).equals(signer.toBuffer()) &&
      data.subarray(112).equals(message),
    `Ed25519SigVerify data is not the canonical layout: ${data.toString("hex")}`,
  );
}

/** `emit_cpi!` instruction data starts with Anchor's EVENT_IX_TAG, little-endian. */
const EVENT_IX_TAG_LE = Buffer.from("e445a52e51cb9a1d", "hex");

/** The event authority: the program's PDA of `"__event_authority"`. */
function eventAuthority(programId: PublicKey): PublicKey {
  return PublicKey.findProgramAddressSync([Buffer.from("__event_authority")], programId)[0];
}

type Events = IdlEvents<AmpChannel>;
export type AmpEvent = { [N in keyof Events]: { name: N; data: Events[N] } }[keyof Events];

/**
 * The events a landed transaction emitted with `emit_cpi!`: the program's
 * self-invocations among its inner instructions, signed by its event
 * authority, whose data is EVENT_IX_TAG_LE + event discriminator + Borsh.
 * Only the program can sign for its event authority, so these cannot be forged
 * by another program.
 */
export async function eventsOf(
  program: Program<AmpChannel>,
  signature: TransactionSignature,
): Promise<AmpEvent[]> {
  const connection = program.provider.connection;
  const tx = await connection.getTransaction(signature, {
    commitment: "confirmed",
    maxSupportedTransactionVersion: 0,
  });
  check(tx !== null && tx.meta !== null, `transaction ${signature} not found with its meta`);
  check(tx.meta.err === null, `transaction ${signature} failed: ${JSON.stringify(tx.meta.err)}`);
  const inner = tx.meta.innerInstructions;
  check(
    inner !== null && inner !== undefined,
    `the node returned no innerInstructions for ${signature}: emit_cpi! events cannot be read`,
  );
  const keys = tx.transaction.message.getAccountKeys({
    accountKeysFromLookups: tx.meta.loadedAddresses,
  });
  const authority = eventAuthority(program.programId);
  const events: AmpEvent[] = [];
  for (const group of inner) {
    for (const ix of group.instructions) {
      const programId = keys.get(ix.programIdIndex);
      const data = Buffer.from(utils.bytes.bs58.decode(ix.data));
      if (!programId?.equals(program.programId) || !data.subarray(0, 8).equals(EVENT_IX_TAG_LE)) {
        continue;
      }
      const signer = ix.accounts.length > 0 ? keys.get(ix.accounts[0]!) : undefined;
      check(signer?.equals(authority) === true, `event CPI in ${signature} not from the event authority`);
      events.push(decodeEvent(program, data.subarray(8)));
    }
  }
  return events;
}

/** Decodes discriminator + Borsh data of one event with the IDL's coder. */
export function decodeEvent(program: Program<AmpChannel>, discriminatorAndData: Buffer): AmpEvent {
  const decoded = program.coder.events.decode(utils.bytes.base64.encode(discriminatorAndData));
  check(decoded !== null, `unknown event ${discriminatorAndData.subarray(0, 8).toString("hex")}`);
  return decoded as AmpEvent;
}

/** The codec against the Rust tests' vectors (voucher/mod.rs, layout_is_the_specified_one). */
export function selfCheck(): void {
  const bytes = encodeVoucher({
    lane: new PublicKey(Buffer.alloc(32, 7)),
    generation: 0x0102_0304_0506_0708n,
    seq: 42n,
    cumulative: 0xffff_ffff_ffff_ffffn,
    expiresAt: -5n,
  });
  const expected = Buffer.concat([
    Buffer.from([0x41, 0x4d, 0x50, 0x31]),
    Buffer.alloc(32, 7),
    Buffer.from([8, 7, 6, 5, 4, 3, 2, 1]),
    Buffer.from([42, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.alloc(8, 0xff),
    Buffer.from([0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
  ]);
  check(bytes.equals(expected), `voucher codec: ${bytes.toString("hex")} != ${expected.toString("hex")}`);
  // A voucher can never pass for a transaction message (SPEC section 3).
  check(bytes[0]! >= 0x41 && (bytes[0]! & 0x80) === 0, "voucher magic");
  voucherInstruction(Keypair.generate(), {
    lane: PublicKey.default,
    generation: 1n,
    seq: 1n,
    cumulative: 1n,
    expiresAt: 0n,
  });
}

// ---------------------------------------------------------------- helpers

class E2eError extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new E2eError(message);
}

function env(name: string): string {
  const value = process.env[name];
  check(value !== undefined && value !== "", `${name} is not set`);
  return value;
}

function readKeypair(path: string): Keypair {
  const bytes: unknown = JSON.parse(readFileSync(path, "utf8"));
  check(
    Array.isArray(bytes) && bytes.length === 64 && bytes.every((b) => Number.isInteger(b) && b >= 0 && b < 256),
    `${path} is not a solana CLI keypair file (a JSON array of 64 bytes)`,
  );
  return Keypair.fromSecretKey(Uint8Array.from(bytes as number[]));
}

function big(value: BN): bigint {
  return BigInt(value.toString());
}

/** An integer constant of the IDL (`#[constant]`): the grace-period bounds. */
function numberConstant(program: Program<AmpChannel>, name: string): number {
  const constant = program.idl.constants.find((c) => c.name === name);
  check(constant !== undefined, `constant ${name} missing from the IDL`);
  const value = Number(constant.value);
  check(Number.isSafeInteger(value), `constant ${name} = ${constant.value} is not an integer`);
  return value;
}

/** A seed constant of the IDL: its value is the Rust Debug form `[97, 109, ...]`. */
function bytesConstant(program: Program<AmpChannel>, name: string): Buffer {
  const constant = program.idl.constants.find((c) => c.name === name);
  check(constant !== undefined && constant.type === "bytes", `bytes constant ${name} missing from the IDL`);
  return Buffer.from(JSON.parse(constant.value) as number[]);
}

async function tokenBalance(connection: Connection, account: PublicKey): Promise<bigint> {
  const balance = await connection.getTokenAccountBalance(account, "confirmed");
  return BigInt(balance.value.amount);
}

function only<N extends keyof Events>(events: AmpEvent[], name: N, what: string): Events[N] {
  const found = events.filter((e) => e.name === name);
  check(found.length === 1, `${what}: expected one ${name} event, got [${events.map((e) => e.name).join(", ")}]`);
  return found[0]!.data as Events[N];
}

function eq(actual: PublicKey | BN | bigint | boolean, expected: PublicKey | bigint | boolean, what: string): void {
  const a = actual instanceof PublicKey ? actual.toBase58() : BN.isBN(actual) ? big(actual) : actual;
  const e = expected instanceof PublicKey ? expected.toBase58() : expected;
  check(a === e, `${what}: ${String(a)}, expected ${String(e)}`);
}

/** `close` refuses a channel in the slot it was opened (ChannelTooYoung). */
async function waitForSlotAfter(connection: Connection, slot: bigint): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (BigInt(await connection.getSlot("confirmed")) <= slot) {
    check(Date.now() < deadline, `the node did not move past slot ${slot} in 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function summarise(events: AmpEvent[]): unknown[] {
  const plain = (value: unknown): unknown =>
    value instanceof PublicKey ? value.toBase58() : BN.isBN(value) ? value.toString() : value;
  return events.map((e) => ({
    name: e.name,
    data: Object.fromEntries(Object.entries(e.data).map(([k, v]) => [k, plain(v)])),
  }));
}

// ---------------------------------------------------------------- the run

async function main(): Promise<void> {
  selfCheck();
  const connection = new Connection(env("AMP_RPC_URL"), "confirmed");
  const payer = readKeypair(env("AMP_PAYER"));
  const mint = new PublicKey(env("AMP_MINT"));
  const mintAuthority = readKeypair(env("AMP_MINT_AUTHORITY"));
  const provider = new AnchorProvider(connection, new Wallet(payer), { commitment: "confirmed" });
  const program = new Program<AmpChannel>(idlJson as AmpChannel, provider);

  const programAccount = await connection.getAccountInfo(program.programId);
  check(programAccount?.executable === true, `no program deployed at ${program.programId.toBase58()}`);

  // The mint and the token program that owns it.
  const mintAccount = await connection.getAccountInfo(mint);
  check(mintAccount !== null, `mint ${mint.toBase58()} does not exist`);
  const tokenProgram = mintAccount.owner;
  check(
    tokenProgram.equals(TOKEN_PROGRAM_ID) || tokenProgram.equals(TOKEN_2022_PROGRAM_ID),
    `mint ${mint.toBase58()} is owned by ${tokenProgram.toBase58()}, not a token program`,
  );
  const mintState = await getMint(connection, mint, "confirmed", tokenProgram);
  check(
    mintState.mintAuthority?.equals(mintAuthority.publicKey) === true,
    `AMP_MINT_AUTHORITY is not the mint authority of ${mint.toBase58()}`,
  );

  // The parties: the payer funds, a fresh recipient, a fresh voucher key.
  const funder = payer.publicKey;
  const recipient = Keypair.generate();
  const voucherKey = Keypair.generate();
  const funderToken = getAssociatedTokenAddressSync(mint, funder, false, tokenProgram);
  const recipientToken = getAssociatedTokenAddressSync(mint, recipient.publicKey, false, tokenProgram);
  const setup = new Transaction().add(
    SystemProgram.transfer({ fromPubkey: funder, toPubkey: recipient.publicKey, lamports: RECIPIENT_LAMPORTS }),
    createAssociatedTokenAccountIdempotentInstruction(funder, funderToken, funder, mint, tokenProgram),
    createAssociatedTokenAccountIdempotentInstruction(
      funder,
      recipientToken,
      recipient.publicKey,
      mint,
      tokenProgram,
    ),
    createMintToCheckedInstruction(
      mint,
      funderToken,
      mintAuthority.publicKey,
      DEPOSIT,
      mintState.decimals,
      [],
      tokenProgram,
    ),
  );
  const setupSigners = mintAuthority.publicKey.equals(funder) ? [] : [mintAuthority];
  const setupSignature = await provider.sendAndConfirm(setup, setupSigners);
  const funderBefore = await tokenBalance(connection, funderToken);

  // open: the PDAs, the wallet as funder, the system program and the event
  // accounts all come from the IDL.
  const minGrace = numberConstant(program, "minGracePeriod");
  const maxGrace = numberConstant(program, "maxGracePeriod");
  const gracePeriod = Math.min(Math.max(GRACE_WANTED, minGrace), maxGrace);
  const nonce = new BN(randomBytes(8), "le");
  const open = program.methods
    .open({
      recipient: recipient.publicKey,
      nonce,
      deposit: new BN(DEPOSIT.toString()),
      gracePeriod,
      expiresAt: new BN(0),
      authorizedSigner: voucherKey.publicKey,
    })
    .accounts({ funderToken, mint, tokenProgram });
  const { channel, vault } = await open.pubkeys();
  check(channel !== undefined && vault !== undefined, "open: the channel and vault PDAs did not resolve");
  const [derived] = PublicKey.findProgramAddressSync(
    [bytesConstant(program, "channelSeed"), funder.toBuffer(), recipient.publicKey.toBuffer(), nonce.toArrayLike(Buffer, "le", 8)],
    program.programId,
  );
  eq(channel, derived, "channel PDA from the IDL's CHANNEL_SEED");
  const [derivedVault] = PublicKey.findProgramAddressSync(
    [bytesConstant(program, "vaultSeed"), channel.toBuffer()],
    program.programId,
  );
  eq(vault, derivedVault, "vault PDA from the IDL's VAULT_SEED");
  const openSignature = await open.rpc();
  const openEvents = await eventsOf(program, openSignature);
  const opened = only(openEvents, "channelOpened", "open");
  eq(opened.channel, channel, "ChannelOpened.channel");
  eq(opened.funder, funder, "ChannelOpened.funder");
  eq(opened.payer, funder, "ChannelOpened.payer (the funder fronts its own rent)");
  eq(opened.recipient, recipient.publicKey, "ChannelOpened.recipient");
  eq(opened.authorizedSigner, voucherKey.publicKey, "ChannelOpened.authorizedSigner");
  eq(opened.deposit, DEPOSIT, "ChannelOpened.deposit");

  const state = await program.account.channel.fetch(channel);
  eq(state.deposited, DEPOSIT, "Channel.deposited");
  eq(state.generation, big(opened.generation), "Channel.generation");
  eq(state.authorizedSigner, voucherKey.publicKey, "Channel.authorizedSigner");
  const listed = await program.account.channel.all([
    { memcmp: { offset: 8, bytes: funder.toBase58() } },
    { memcmp: { offset: 8 + 32, bytes: recipient.publicKey.toBase58() } },
  ]);
  check(
    listed.length === 1 && listed[0]!.publicKey.equals(channel),
    `channel.all(funder, recipient) found ${listed.length} channels`,
  );
  const generation = big(state.generation);

  // settle: anyone may land it; the voucher key signed the voucher here.
  const first: Voucher = { lane: channel, generation, seq: 1n, cumulative: FIRST, expiresAt: 0n };
  const settleSignature = await program.methods
    .settle()
    .accounts({ channel, delegation: null, recipientToken, tokenProgram })
    .preInstructions([voucherInstruction(voucherKey, first)])
    .rpc();
  const settleEvents = await eventsOf(program, settleSignature);
  const settled = only(settleEvents, "channelSettled", "settle");
  eq(settled.channel, channel, "ChannelSettled.channel");
  eq(settled.lane, channel, "ChannelSettled.lane");
  eq(settled.amount, FIRST, "ChannelSettled.amount");
  eq(settled.settled, FIRST, "ChannelSettled.settled");
  eq(settled.destination, recipientToken, "ChannelSettled.destination");
  eq(await tokenBalance(connection, recipientToken), FIRST, "recipient balance after settle");

  // request_close: the funder (the wallet, the channel's `funder`) signs.
  const requestSignature = await program.methods.requestClose().accounts({ channel }).rpc();
  const requestEvents = await eventsOf(program, requestSignature);
  const requested = only(requestEvents, "closeRequested", "request_close");
  eq(requested.channel, channel, "CloseRequested.channel");
  eq(
    big(requested.refundableAt) - big(requested.requestedAt),
    BigInt(gracePeriod),
    "CloseRequested grace period",
  );

  // close: the recipient's cooperative close with a final voucher, inside
  // the grace period, through the recipient's own provider (the recipient
  // signs and pays the fee); the rest of the vault goes back to the funder.
  await waitForSlotAfter(connection, generation);
  const recipientProgram = new Program<AmpChannel>(
    idlJson as AmpChannel,
    new AnchorProvider(connection, new Wallet(recipient), { commitment: "confirmed" }),
  );
  const last: Voucher = { lane: channel, generation, seq: 2n, cumulative: FINAL, expiresAt: 0n };
  const closeSignature = await recipientProgram.methods
    .close(true)
    .accounts({ channel, recipientToken, funderToken, tokenProgram })
    .preInstructions([voucherInstruction(voucherKey, last)])
    .rpc();
  const closeEvents = await eventsOf(program, closeSignature);
  const finalSettled = only(closeEvents, "channelSettled", "close");
  eq(finalSettled.amount, FINAL - FIRST, "final ChannelSettled.amount");
  eq(finalSettled.settled, FINAL, "final ChannelSettled.settled");
  const closed = only(closeEvents, "channelClosed", "close");
  eq(closed.channel, channel, "ChannelClosed.channel");
  eq(closed.settled, FINAL, "ChannelClosed.settled");
  eq(closed.refunded, DEPOSIT - FINAL, "ChannelClosed.refunded");
  eq(closed.cooperative, true, "ChannelClosed.cooperative");
  check(closeEvents[0]?.name === "channelSettled", "close: the final settlement precedes the close");

  check((await connection.getAccountInfo(channel, "confirmed")) === null, "the channel account still exists");
  check((await connection.getAccountInfo(vault, "confirmed")) === null, "the vault still exists");
  const recipientAfter = await tokenBalance(connection, recipientToken);
  const funderAfter = await tokenBalance(connection, funderToken);
  eq(recipientAfter, FINAL, "recipient balance after close");
  eq(funderAfter, funderBefore - FINAL, "funder balance after close");

  const summary = {
    ok: true,
    program: program.programId.toBase58(),
    mint: mint.toBase58(),
    tokenProgram: tokenProgram.toBase58(),
    channel: channel.toBase58(),
    vault: vault.toBase58(),
    funder: funder.toBase58(),
    recipient: recipient.publicKey.toBase58(),
    voucherSigner: voucherKey.publicKey.toBase58(),
    nonce: nonce.toString(),
    generation: generation.toString(),
    gracePeriod,
    paid: recipientAfter.toString(),
    refunded: (DEPOSIT - FINAL).toString(),
    transactions: {
      setup: setupSignature,
      open: { signature: openSignature, events: summarise(openEvents) },
      settle: { signature: settleSignature, events: summarise(settleEvents) },
      requestClose: { signature: requestSignature, events: summarise(requestEvents) },
      close: { signature: closeSignature, events: summarise(closeEvents) },
    },
  };
  console.log(JSON.stringify(summary, null, 2));
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      console.error(`e2e failed: ${message}`);
      if (!(err instanceof E2eError) && err instanceof Error && err.stack) console.error(err.stack);
      // Anchor's errors carry the program logs.
      const logs = (err as { logs?: unknown }).logs;
      if (Array.isArray(logs)) console.error(logs.join("\n"));
      process.exit(1);
    },
  );
}
