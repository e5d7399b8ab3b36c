// Paid MCP tools with the official MCP TypeScript SDK
// (`@modelcontextprotocol/sdk`), which knows nothing of AMP:
//
// - an MCP server over streamable HTTP on AMP_MCP_PORT, with one tool, `add`,
//   behind `amp serve`, which charges `tools/call` and lets every other
//   method (initialize, tools/list, notifications) through free;
// - the SDK's client, its URL pointed at `amp proxy`, which pays.
//
//   AMP_MCP_PORT=8404 \
//   AMP_MCP_URL=http://127.0.0.1:8403/http://127.0.0.1:8402/mcp \
//   AMP_MCP_CALLS=5 \
//   node dist/tests/ts/mcp.js
//
// Lists the tools, calls `add` AMP_MCP_CALLS times, then keeps calling until
// a call fails (the proxy's budget is spent) and reports the error the
// client got; then, through AMP_MCP_CAPPED_URL (a proxy whose price ceiling
// is below the tool's price), reports the error connecting gives. Prints a
// JSON summary; exits non-zero on any other failure.

import { randomUUID } from "node:crypto";
import { createServer, Server } from "node:http";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

/// The MCP server: one session, one tool.
async function serveTools(port: number): Promise<Server> {
  const tools = new McpServer({ name: "paid-tools", version: "1.0.0" });
  tools.registerTool(
    "add",
    { description: "Adds two numbers", inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
  );
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID() });
  await tools.connect(transport);
  const http = createServer((request, response) => {
    transport.handleRequest(request, response).catch((error: unknown) => {
      console.error(error);
      response.destroy();
    });
  });
  await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
  return http;
}

function text(result: Awaited<ReturnType<Client["callTool"]>>): string {
  const content = result.content as Array<{ type: string; text?: string }>;
  return content.map((part) => part.text ?? "").join("");
}

async function main(): Promise<void> {
  const http = await serveTools(Number(env("AMP_MCP_PORT")));
  const client = new Client({ name: "agent", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(env("AMP_MCP_URL"))));

  const tools = (await client.listTools()).tools.map((tool) => tool.name);
  const sums: string[] = [];
  for (let i = 0; i < Number(env("AMP_MCP_CALLS")); i++) {
    sums.push(text(await client.callTool({ name: "add", arguments: { a: i, b: 1 } })));
  }
  // Until the budget is spent: the failure must reach this client as an error.
  let refused: { after: number; message: string } | null = null;
  for (let extra = 0; extra < 1_000 && refused === null; extra++) {
    try {
      await client.callTool({ name: "add", arguments: { a: extra, b: 0 } });
    } catch (error) {
      refused = { after: extra, message: error instanceof Error ? error.message : String(error) };
    }
  }

  // A proxy that will not pay this service's price: refused from the start.
  let capped: string | null = null;
  const other = new Client({ name: "careful agent", version: "1.0.0" });
  try {
    await other.connect(new StreamableHTTPClientTransport(new URL(env("AMP_MCP_CAPPED_URL"))));
    await other.callTool({ name: "add", arguments: { a: 1, b: 1 } });
  } catch (error) {
    capped = error instanceof Error ? error.message : String(error);
  }

  console.log(JSON.stringify({ tools, sums, refused, capped }));
  await client.close().catch(() => undefined);
  http.closeAllConnections();
  http.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
