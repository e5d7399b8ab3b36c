// @solana/kit (the successor of web3.js 1.x) against a local node, nothing
// of ours involved: an airdrop and a version-0 SOL transfer, each sent and
// confirmed the way kit does it (sendTransaction with preflight, then
// signature and slot notifications on the websocket), a balance, the
// transaction with its meta, a jsonParsed mint, and program accounts by a
// dataSize filter. Prints a JSON summary; exits non-zero on any failure.
//
//   AMP_RPC_URL=http://127.0.0.1:8899 AMP_WS_URL=ws://127.0.0.1:8900 \
//   AMP_MINT=<test mint> node tests/ts/dist/tests/ts/kit.js

import {
  address,
  airdropFactory,
  assertIsTransactionWithBlockhashLifetime,
  appendTransactionMessageInstruction,
  createSolanaRpc,
  createSolanaRpcSubscriptions,
  createTransactionMessage,
  generateKeyPairSigner,
  getSignatureFromTransaction,
  lamports,
  pipe,
  sendAndConfirmTransactionFactory,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
} from "@solana/kit";
import { getTransferSolInstruction } from "@solana-program/system";

const TOKEN_PROGRAM = address("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`check failed: ${what}`);
}

async function main(): Promise<void> {
  const rpc = createSolanaRpc(env("AMP_RPC_URL"));
  const rpcSubscriptions = createSolanaRpcSubscriptions(env("AMP_WS_URL"));
  const mint = address(env("AMP_MINT"));

  const version = await rpc.getVersion().send();
  check(typeof version["solana-core"] === "string", "getVersion carries solana-core");

  const payer = await generateKeyPairSigner();
  const recipient = await generateKeyPairSigner();
  await airdropFactory({ rpc, rpcSubscriptions })({
    commitment: "confirmed",
    recipientAddress: payer.address,
    lamports: lamports(2_000_000_000n),
  });

  const { value: latestBlockhash } = await rpc.getLatestBlockhash({ commitment: "confirmed" }).send();
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(payer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(latestBlockhash, m),
    (m) =>
      appendTransactionMessageInstruction(
        getTransferSolInstruction({ source: payer, destination: recipient.address, amount: 1_000_000n }),
        m,
      ),
  );
  const signed = await signTransactionMessageWithSigners(message);
  assertIsTransactionWithBlockhashLifetime(signed);
  await sendAndConfirmTransactionFactory({ rpc, rpcSubscriptions })(signed, { commitment: "confirmed" });
  const signature = getSignatureFromTransaction(signed);

  const { value: balance } = await rpc.getBalance(recipient.address, { commitment: "confirmed" }).send();
  check(balance === 1_000_000n, `recipient holds 1,000,000 lamports (has ${balance})`);
  const transaction = await rpc
    .getTransaction(signature, { commitment: "confirmed", encoding: "json", maxSupportedTransactionVersion: 0 })
    .send();
  check(transaction !== null, "getTransaction finds the transfer");
  check(transaction!.version === 0, "a version-0 transaction");
  check(transaction!.meta!.fee === 5_000n, `one signature's fee (was ${transaction!.meta!.fee})`);
  check(transaction!.meta!.err === null, "the transfer succeeded");

  const { value: mintAccount } = await rpc.getAccountInfo(mint, { encoding: "jsonParsed" }).send();
  const parsed = mintAccount?.data as unknown as { parsed?: { type?: string; info?: { decimals?: number } } };
  check(parsed.parsed?.type === "mint" && parsed.parsed.info?.decimals === 6, "the test mint parses, 6 decimals");
  const mints = await rpc
    .getProgramAccounts(TOKEN_PROGRAM, { encoding: "base64", filters: [{ dataSize: 82n }] })
    .send();
  check(
    mints.some((account) => account.pubkey === mint),
    "getProgramAccounts with a dataSize filter finds the mint",
  );

  console.log(JSON.stringify({ signature, slot: String(transaction!.slot), mints: mints.length }));
}

main().then(
  // The websocket keeps the event loop alive: leave once done.
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
