/**
 * A connection's real address (src/server/net/client_address.ts) and the
 * PROXY protocol flags (src/server/config.ts): a trusted peer's header gives
 * the client's address and hands on the bytes after it; LOCAL keeps the
 * peer's; a trusted peer with no header, a bad one, or one that trickles past
 * the deadline is refused; an untrusted peer is taken as it is.
 */
import assert from "node:assert/strict";
import { type Identified, identifier } from "../src/server/net/client_address.ts";
import { parseCidrList } from "../src/server/net/cidr.ts";
import { ConfigError, defaultConfig, parseConfig } from "../src/server/config.ts";
import { writeAll } from "../src/lib/async.ts";
import { socketPair } from "./helpers/socket_pair.ts";

const list = (text: string) => {
  const r = parseCidrList(text);
  if (!r.ok) throw new Error(r.reason);
  return r.list;
};
const ascii = (s: string) => new TextEncoder().encode(s);
const V2_LOCAL = Uint8Array.from([
  ...[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a],
  ...[0x20, 0x00, 0x00, 0x00],
]);

/** Runs identify on a fresh pair after the client wrote `bytes` (and closed, if asked). */
async function identify(
  trusted: string | null,
  bytes: Uint8Array,
  opts: { close?: boolean; timeoutMs?: number } = {},
): Promise<Identified> {
  const [server, client] = await socketPair();
  try {
    const id = identifier(
      trusted === null ? null : { trusted: list(trusted), headerTimeoutMs: opts.timeoutMs ?? 2000 },
    );
    if (bytes.length > 0) await writeAll(client, bytes);
    if (opts.close) client.closeWrite();
    return await id(server);
  } finally {
    client.close();
    try {
      server.close();
    } catch { /* closed by the deadline */ }
  }
}

Deno.test("off: the socket's address, nothing read", async () => {
  const r = await identify(null, ascii("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n"));
  assert.deepEqual(r, { ok: true, address: "127.0.0.1", initial: new Uint8Array(0) });
});

Deno.test("trusted: the header's source, and the bytes after it are handed on", async () => {
  const frame = [1, 0, 5, ...ascii("alice")];
  const r = await identify(
    "127.0.0.0/8",
    Uint8Array.from([...ascii("PROXY TCP6 ::ffff:10.1.2.3 ::1 4000 7777\r\n"), ...frame]),
  );
  assert.ok(r.ok);
  assert.equal(r.address, "10.1.2.3", "IPv4-mapped is unmapped: one spelling per client");
  assert.deepEqual([...r.initial], frame);
});

Deno.test("trusted: a LOCAL header (a health check) keeps the peer's address", async () => {
  const r = await identify("127.0.0.1/32", V2_LOCAL);
  assert.ok(r.ok);
  assert.equal(r.address, "127.0.0.1");
});

Deno.test("trusted: no header, a bad one, or a close before it is refused", async () => {
  const bare = await identify("127.0.0.1", Uint8Array.of(1, 0, 5, ...ascii("alice")));
  assert.ok(!bare.ok);
  assert.match(bare.reason, /bad PROXY header: no PROXY/);
  const bad = await identify("127.0.0.1", ascii("PROXY TCP4 1.2.3.999 1.2.3.4 1 2\r\n"));
  assert.ok(!bad.ok);
  const closed = await identify("127.0.0.1", ascii("PROXY TCP4 1.2"), { close: true });
  assert.ok(!closed.ok);
  assert.match(closed.reason, /closed before the PROXY header/);
});

Deno.test("trusted: a header that trickles past the deadline is refused at the deadline", async () => {
  const started = Date.now();
  const r = await identify("127.0.0.1", ascii("PROXY TCP4 "), { timeoutMs: 150 });
  assert.ok(!r.ok);
  assert.match(r.reason, /deadline/);
  assert.ok(Date.now() - started < 1500, "ended by the deadline, not a later safety net");
});

Deno.test("untrusted: read as ChatOS under its own address (its header is left for the decoder)", async () => {
  const r = await identify("10.0.0.0/8", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
  assert.deepEqual(r, { ok: true, address: "127.0.0.1", initial: new Uint8Array(0) });
});

Deno.test("config: --proxy-protocol is a switch; --proxy-trusted must be a CIDR list", () => {
  const none = () => undefined;
  assert.equal(defaultConfig().proxyProtocol, false);
  assert.equal(defaultConfig().proxyTrusted, "127.0.0.0/8,::1/128");
  const on = parseConfig(["--proxy-protocol"], none);
  assert.ok(!on.help && on.config.proxyProtocol === true);
  const off = parseConfig(
    ["--proxy-protocol=false"],
    (n) => (n === "CHATOS_PROXY_PROTOCOL" ? "1" : undefined),
  );
  assert.ok(!off.help && off.config.proxyProtocol === false, "the flag wins over the env");
  const env = parseConfig([], (n) => (n === "CHATOS_PROXY_PROTOCOL" ? "true" : undefined));
  assert.ok(!env.help && env.config.proxyProtocol === true);
  assert.throws(() => parseConfig(["--proxy-protocol=maybe"], none), ConfigError);
  assert.throws(() => parseConfig(["--proxy-trusted=10.0.0.1/8"], none), /host bits/);
  assert.throws(() => parseConfig(["--proxy-trusted="], none), ConfigError);
});
