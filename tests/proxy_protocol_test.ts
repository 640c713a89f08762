/**
 * PROXY protocol parser (src/server/net/proxy_protocol.ts): the spec's
 * headers byte for byte, every split point, the bounds, garbage, and what a
 * real haproxy sends with `send-proxy` and `send-proxy-v2` (and its LOCAL
 * health checks).
 */
import assert from "node:assert/strict";
import {
  parseProxyHeader,
  ProxyHeaderReader,
  type ProxyParse,
  V1_MAX_BYTES,
  V2_SIGNATURE,
} from "../src/server/net/proxy_protocol.ts";
import { concatBytes } from "../src/lib/bytes.ts";
import { withDeadline } from "../src/lib/async.ts";
import { freePort, spawnChild, waitForPort } from "../src/ops/processes.ts";

const ascii = (s: string) => new TextEncoder().encode(s);
const hex = (s: string) =>
  Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!, (h) => parseInt(h, 16));

function parsed(r: ProxyParse) {
  assert.equal(r.status, "parsed", r.status === "invalid" ? r.reason : r.status);
  return (r as Extract<ProxyParse, { status: "parsed" }>).header;
}

function invalidReason(bytes: Uint8Array): string {
  const r = parseProxyHeader(bytes);
  assert.equal(r.status, "invalid", `expected invalid, got ${r.status}`);
  return (r as Extract<ProxyParse, { status: "invalid" }>).reason;
}

// The v2 headers, byte for byte (signature, ver/cmd, family, length, body).
const SIG = "0d0a0d0a000d0a515549540a";
const V2_TCP4 = hex(`${SIG} 21 11 000c  c0a80001 c0a8000b dc04 01bb`);
const V2_TCP6 = hex(
  `${SIG} 21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 dc04 01bb`,
);
const V2_LOCAL = hex(`${SIG} 20 00 0000`);
// PROXY TCP4 with an ALPN TLV ("h2") and a 3-byte NOOP TLV after the addresses.
const V2_TLVS = hex(`${SIG} 21 11 0017  7f000001 7f000002 3039 1e61  01 0002 6832  04 0003 000000`);

const V1_TCP4 = ascii("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
const V1_TCP6 = ascii("PROXY TCP6 2001:DB8:0:0:0:0:0:1 2001:db8::2 56324 443\r\n");
const V1_UNKNOWN = ascii("PROXY UNKNOWN\r\n");
const V1_WORST = ascii(
  "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
);

Deno.test("v1 TCP4, TCP6 and UNKNOWN headers parse", () => {
  assert.deepEqual(parsed(parseProxyHeader(V1_TCP4)), {
    version: 1,
    length: V1_TCP4.length,
    command: "proxy",
    family: "tcp4",
    source: { address: "192.168.0.1", port: 56324 },
    destination: { address: "192.168.0.11", port: 443 },
  });
  const six = parsed(parseProxyHeader(V1_TCP6));
  assert.ok(six.command === "proxy");
  assert.equal(six.family, "tcp6");
  assert.deepEqual(six.source, { address: "2001:db8::1", port: 56324 });
  assert.deepEqual(six.destination, { address: "2001:db8::2", port: 443 });
  assert.deepEqual(parsed(parseProxyHeader(V1_UNKNOWN)), {
    version: 1,
    length: 15,
    command: "local",
  });
  assert.equal(V1_WORST.length, V1_MAX_BYTES);
  assert.equal(parsed(parseProxyHeader(V1_WORST)).command, "local");
});

Deno.test("v2 PROXY over IPv4 and IPv6, LOCAL, and TLVs skipped", () => {
  assert.deepEqual(parsed(parseProxyHeader(V2_TCP4)), {
    version: 2,
    length: 28,
    command: "proxy",
    family: "tcp4",
    source: { address: "192.168.0.1", port: 56324 },
    destination: { address: "192.168.0.11", port: 443 },
  });
  const six = parsed(parseProxyHeader(V2_TCP6));
  assert.ok(six.command === "proxy");
  assert.equal(six.length, 52);
  assert.deepEqual(six.source, { address: "2001:db8::1", port: 56324 });
  assert.deepEqual(six.destination, { address: "2001:db8::2", port: 443 });
  assert.deepEqual(parsed(parseProxyHeader(V2_LOCAL)), {
    version: 2,
    length: 16,
    command: "local",
  });
  const tlv = parsed(parseProxyHeader(V2_TLVS));
  assert.ok(tlv.command === "proxy");
  assert.equal(tlv.length, V2_TLVS.length);
  assert.deepEqual(tlv.source, { address: "127.0.0.1", port: 12345 });
  assert.deepEqual(tlv.destination, { address: "127.0.0.2", port: 7777 });
  // LOCAL ignores whatever family and address block it carries.
  const localWithBlock = hex(`${SIG} 20 11 000c c0a80001 c0a8000b dc04 01bb`);
  assert.deepEqual(parsed(parseProxyHeader(localWithBlock)), {
    version: 2,
    length: 28,
    command: "local",
  });
  // UNSPEC and UNIX families carry no IP: treated like LOCAL.
  assert.equal(parsed(parseProxyHeader(hex(`${SIG} 21 00 0000`))).command, "local");
  const unix = concatBytes([hex(`${SIG} 21 31 00d8`), new Uint8Array(216)]);
  assert.equal(parsed(parseProxyHeader(unix)).command, "local");
});

const VALID = [V1_TCP4, V1_TCP6, V1_UNKNOWN, V1_WORST, V2_TCP4, V2_TCP6, V2_LOCAL, V2_TLVS];

Deno.test("every proper prefix of a header needs more; bytes after it are not the header's", () => {
  for (const h of VALID) {
    for (let n = 0; n < h.length; n++) {
      assert.equal(parseProxyHeader(h.subarray(0, n)).status, "need-more", `${n}/${h.length}`);
    }
    const withFrame = concatBytes([h, hex("01 0005 616c696365")]); // a CR frame follows
    assert.equal(parsed(parseProxyHeader(withFrame)).length, h.length);
  }
});

Deno.test("the reader gives the same header and the following bytes at every split", () => {
  const frame = hex("01 0005 616c696365");
  for (const h of VALID) {
    const whole = concatBytes([h, frame]);
    const expected = parsed(parseProxyHeader(whole));
    for (let cut = 1; cut < whole.length; cut++) {
      const reader = new ProxyHeaderReader();
      let r = reader.push(whole.subarray(0, cut));
      if (cut < h.length) {
        assert.equal(r.status, "need-more");
        r = reader.push(whole.subarray(cut));
      }
      assert.ok(r.status === "parsed", `cut ${cut}`);
      assert.deepEqual(r.header, expected);
      // `rest` is what followed the header in the reads pushed so far.
      const pushed = cut < h.length ? whole.length : cut;
      assert.deepEqual([...r.rest], [...whole.subarray(h.length, pushed)]);
    }
    // One byte at a time.
    const reader = new ProxyHeaderReader();
    let last = reader.push(whole.subarray(0, 1));
    for (let i = 1; i < h.length; i++) last = reader.push(whole.subarray(i, i + 1));
    assert.ok(last.status === "parsed");
    assert.deepEqual(last.rest.length, 0);
  }
});

Deno.test("no header, a wrong signature and garbage are invalid at once", () => {
  assert.match(invalidReason(hex("01 0005 616c696365")), /no PROXY/); // a bare CR frame
  assert.match(invalidReason(ascii("GET / HTTP/1.0\r\n")), /no PROXY/);
  assert.match(invalidReason(ascii("PROXZ")), /no PROXY/);
  assert.match(invalidReason(ascii("proxy TCP4")), /no PROXY/);
  assert.match(invalidReason(hex("0d0a0d0a000d0a5155495420")), /no PROXY/); // wrong last byte
  assert.match(invalidReason(hex("0d0a0d0a01")), /no PROXY/); // decided on the 5th byte
  assert.match(invalidReason(hex("0d0d")), /no PROXY/);
});

Deno.test("bad v1 lines are invalid", () => {
  const bad = [
    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", // LF without CR
    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
    "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
    "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
    "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
    "PROXY TCP4 ::1 ::1 1 2\r\n",
    "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
    "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
    "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
    "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
    "PROXY \r\n",
    "PROXY UNKNOWNX\r\n",
    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
    "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
  ];
  for (const line of bad) assert.equal(parseProxyHeader(ascii(line)).status, "invalid", line);
  assert.match(
    invalidReason(concatBytes([ascii("PROXY TCP4 "), new Uint8Array([0xc3, 0xa9])])),
    /ASCII/,
  );
  // Bounded: 107 bytes without CRLF is the end, whatever follows.
  const long = ascii("PROXY UNKNOWN " + "x".repeat(V1_MAX_BYTES - 14));
  assert.equal(long.length, V1_MAX_BYTES);
  assert.equal(parseProxyHeader(long.subarray(0, V1_MAX_BYTES - 1)).status, "need-more");
  assert.match(invalidReason(long), /longer than 107/);
  assert.match(invalidReason(concatBytes([long.subarray(0, 106), ascii("\r\n")])), /longer/);
});

Deno.test("bad v2 headers are invalid", () => {
  assert.match(invalidReason(hex(`${SIG} 11 11 000c c0a80001 c0a8000b dc04 01bb`)), /version 1/);
  assert.match(invalidReason(hex(`${SIG} 22 11 000c c0a80001 c0a8000b dc04 01bb`)), /command 2/);
  assert.match(invalidReason(hex(`${SIG} 21 12 000c c0a80001 c0a8000b dc04 01bb`)), /datagram/);
  assert.match(
    invalidReason(hex(`${SIG} 21 41 000c c0a80001 c0a8000b dc04 01bb`)),
    /unknown family/,
  );
  assert.match(invalidReason(hex(`${SIG} 21 11 0008 c0a80001 c0a8000b`)), /need 12/);
  assert.match(invalidReason(hex(`${SIG} 21 21 000c c0a80001 c0a8000b dc04 01bb`)), /need 36/);
  assert.match(
    invalidReason(hex(`${SIG} 21 11 000e c0a80001 c0a8000b dc04 01bb 0100`)),
    /truncated TLV/,
  );
  assert.match(
    invalidReason(hex(`${SIG} 21 11 0010 c0a80001 c0a8000b dc04 01bb 01 0005 00`)),
    /overruns/,
  );
  // The declared length is judged before its bytes arrive: no waiting for 64 KiB.
  assert.match(invalidReason(hex(`${SIG} 21 11 ffff`)), /over the limit 512/);
  assert.match(invalidReason(hex(`${SIG} 21 11 0201`)), /over the limit/);
  assert.equal(parseProxyHeader(hex(`${SIG} 21 11 0200`)).status, "need-more");
  const small = parseProxyHeader(V2_TLVS, { maxV2Payload: 12 });
  assert.equal(small.status, "invalid");
});

Deno.test("the v2 signature constant is the spec's", () => {
  assert.deepEqual([...V2_SIGNATURE], [...hex(SIG)]);
});

// ---- a real haproxy in front of a Deno listener ----

interface Arrival {
  first: Uint8Array;
  conn: Deno.Conn;
}

/**
 * Accepts connections and reads each until its header is decided. `from`
 * waits for the one whose header names a given source port: haproxy also
 * forwards the probes of waitForPort, which must not be mistaken for ours.
 *
 * A failed accept is skipped, never the end of the loop: haproxy closes its
 * health checks (and the server side of a client that left at once) with a
 * reset, and Deno's accept then fails with ENOTCONN for that connection. A
 * `for await` over the listener rethrows that and stops accepting for good,
 * which is how this test used to lose every later arrival (the node's own
 * accept loop in src/server/server.ts skips such failures the same way).
 */
function listen(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const arrived: Arrival[] = [];
  const waiters = new Set<() => void>();
  const wakeAll = () => {
    for (const w of waiters) w();
    waiters.clear();
  };
  const serve = async (conn: Deno.Conn) => {
    const reader = new ProxyHeaderReader();
    const buf = new Uint8Array(4096);
    const seen: Uint8Array[] = [];
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      seen.push(buf.slice(0, n));
      if (reader.push(buf.subarray(0, n)).status !== "need-more") break;
    }
    arrived.push({ first: concatBytes(seen), conn });
    wakeAll();
  };
  (async () => {
    for (;;) {
      try {
        void serve(await listener.accept());
      } catch (e) {
        if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) return;
        // A connection reset before it was accepted: skip it.
      }
    }
  })();
  const take = (match: (a: Arrival) => boolean): Promise<Arrival> =>
    withDeadline(
      (async () => {
        for (;;) {
          const i = arrived.findIndex(match);
          if (i >= 0) return arrived.splice(i, 1)[0];
          await new Promise<void>((r) => waiters.add(r));
        }
      })(),
      15_000,
      () => new Error("nothing arrived through haproxy"),
    );
  const header = (a: Arrival) => {
    const r = parseProxyHeader(a.first);
    return r.status === "parsed" ? r.header : null;
  };
  return {
    from(sourcePort: number): Promise<Arrival> {
      return take((a) => {
        const h = header(a);
        return h?.command === "proxy" && h.source.port === sourcePort;
      });
    },
    /** A health check that got as far as its header (one reset before it is skipped). */
    check: () => take((a) => header(a)?.command === "local"),
    close: () => {
      listener.close();
      for (const a of arrived) a.conn.close();
    },
  };
}

async function readUntil(conn: Deno.Conn, have: Uint8Array, want: number): Promise<Uint8Array> {
  const parts = [have];
  let total = have.length;
  const buf = new Uint8Array(1024);
  while (total < want) {
    const n = await conn.read(buf);
    if (n === null) break;
    parts.push(buf.slice(0, n));
    total += n;
  }
  return concatBytes(parts);
}

Deno.test({
  name: "what haproxy sends with send-proxy and send-proxy-v2 parses to the client's address",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const backendPort = freePort();
    const checkPort = freePort();
    const v1Port = freePort();
    const v2Port = freePort();
    const v6Port = freePort();
    const dir = await Deno.makeTempDir({ prefix: "chatos-pp-" });
    const cfg = `${dir}/haproxy.cfg`;
    await Deno.writeTextFile(
      cfg,
      [
        "defaults",
        "  mode tcp",
        "  timeout connect 2s",
        "  timeout client 30s",
        "  timeout server 30s",
        "frontend v1",
        `  bind 127.0.0.1:${v1Port}`,
        "  default_backend v1",
        "frontend v2",
        `  bind 127.0.0.1:${v2Port}`,
        "  default_backend v2",
        "frontend v6",
        `  bind [::1]:${v6Port}`,
        "  default_backend v2",
        "backend v1",
        `  server s 127.0.0.1:${backendPort} send-proxy`,
        "backend v2",
        `  server s 127.0.0.1:${backendPort} send-proxy-v2`,
        // Health checks of a send-proxy-v2 server carry a LOCAL header.
        "backend checked",
        // A plain TCP check sends its LOCAL header and resets at once; the reset often lands
        // before our accept, which then fails (ENOTCONN) and loses the header. Waiting for an
        // answer keeps each check open until we have read it.
        "  option tcp-check",
        "  tcp-check connect default",
        "  tcp-check expect string ok",
        "  timeout check 5s",
        `  server s 127.0.0.1:${checkPort} send-proxy-v2 check inter 200`,
        "",
      ].join("\n"),
    );
    const backend = listen(backendPort);
    const checks = listen(checkPort);
    const lb = spawnChild("haproxy", ["-f", cfg, "-db"]);
    let exited = false;
    void lb.status.then(() => (exited = true));
    try {
      await waitForPort(v1Port, 15_000, () => !exited);
      await waitForPort(v2Port, 15_000, () => !exited);

      for (const [port, version] of [[v1Port, 1], [v2Port, 2]] as const) {
        const client = await Deno.connect({ hostname: "127.0.0.1", port });
        const payload = hex("01 0005 616c696365");
        await client.write(payload);
        const got = await backend.from((client.localAddr as Deno.NetAddr).port);
        const r = parseProxyHeader(got.first);
        const h = parsed(r);
        assert.equal(h.version, version);
        assert.ok(h.command === "proxy");
        assert.equal(h.family, "tcp4");
        const local = client.localAddr as Deno.NetAddr;
        assert.deepEqual(h.source, { address: "127.0.0.1", port: local.port });
        assert.deepEqual(h.destination, { address: "127.0.0.1", port });
        const all = await readUntil(got.conn, got.first, h.length + payload.length);
        assert.deepEqual([...all.subarray(h.length)], [...payload]);
        client.close();
        got.conn.close();
      }

      const client6 = await Deno.connect({ hostname: "::1", port: v6Port });
      const got6 = await backend.from((client6.localAddr as Deno.NetAddr).port);
      const h6 = parsed(parseProxyHeader(got6.first));
      assert.ok(h6.command === "proxy");
      assert.equal(h6.family, "tcp6");
      assert.deepEqual(h6.source, {
        address: "::1",
        port: (client6.localAddr as Deno.NetAddr).port,
      });
      client6.close();
      got6.conn.close();

      const check = await checks.check();
      assert.deepEqual(parsed(parseProxyHeader(check.first)), {
        version: 2,
        length: 16,
        command: "local",
      });
      check.conn.close();
    } finally {
      try {
        lb.kill("SIGTERM");
      } catch { /* already gone */ }
      await lb.status;
      backend.close();
      checks.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
