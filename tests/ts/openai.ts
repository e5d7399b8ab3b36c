// The official OpenAI client (`openai` on npm), knowing nothing of AMP,
// paying through it: its base URL points at `amp proxy`, which pays `amp
// serve` in front of an OpenAI-shaped upstream.
//
//   AMP_OPENAI_BASE_URL=http://127.0.0.1:8403/http://127.0.0.1:8402/v1 \
//   AMP_REFUSED_BASE_URL=http://127.0.0.1:8403/https://example.com/v1 \
//   node dist/tests/ts/openai.js
//
// A completion as JSON (model "m"), one streamed (model "big"), one to a
// service the proxy does not pay, which must fail as an API error the
// client shows, and with AMP_LONG_BASE_URL (a proxy with a small budget) a
// streamed one the budget cannot pay to its end, cut with an API error.
// Prints a JSON summary; exits non-zero on any failure.

import OpenAI from "openai";

function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

async function main(): Promise<void> {
  const client = new OpenAI({ baseURL: env("AMP_OPENAI_BASE_URL"), apiKey: "unused: AMP pays", maxRetries: 0 });
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "user", content: "Hi" }];

  const plain = await client.chat.completions.create({ model: "m", messages });

  const stream = await client.chat.completions.create({ model: "big", messages, stream: true });
  let text = "";
  let streamedUsage: OpenAI.Completions.CompletionUsage | null = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    text += chunk.choices[0]?.delta?.content ?? "";
    streamedUsage = chunk.usage ?? streamedUsage;
  }

  const elsewhere = new OpenAI({ baseURL: env("AMP_REFUSED_BASE_URL"), apiKey: "unused", maxRetries: 0 });
  let refused: { status: number | undefined; message: string } | null = null;
  try {
    await elsewhere.chat.completions.create({ model: "m", messages });
  } catch (error) {
    if (!(error instanceof OpenAI.APIError)) {
      throw error;
    }
    refused = { status: error.status, message: error.message };
  }

  // A completion longer than the budget pays for (AMP_LONG_BASE_URL, a
  // proxy with a small budget): cut with an error the client shows.
  let long: { chunks: number; error: string | null } | null = null;
  const longBase = process.env["AMP_LONG_BASE_URL"];
  if (longBase) {
    const small = new OpenAI({ baseURL: longBase, apiKey: "unused", maxRetries: 0 });
    long = { chunks: 0, error: null };
    try {
      const stream = await small.chat.completions.create({ model: "long", messages, stream: true });
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta?.content) {
          long.chunks += 1;
        }
      }
    } catch (error) {
      if (!(error instanceof OpenAI.APIError)) {
        throw error;
      }
      long.error = error.message;
    }
  }

  console.log(
    JSON.stringify({
      plain: { content: plain.choices[0]?.message.content ?? null, usage: plain.usage ?? null },
      streamed: { text, chunks, usage: streamedUsage },
      refused,
      long,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
