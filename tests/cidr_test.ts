/**
 * IP parsing and formatting (src/server/net/ip.ts) and CIDR lists
 * (src/server/net/cidr.ts), including IPv4-mapped IPv6.
 */
import assert from "node:assert/strict";
import { canonicalAddress, formatIp, isCanonicalV4, parseIp } from "../src/server/net/ip.ts";
import { parseCidr, parseCidrList } from "../src/server/net/cidr.ts";

function list(text: string) {
  const r = parseCidrList(text);
  assert.ok(r.ok, r.ok ? "" : r.reason);
  return r.list;
}

function reason(text: string): string {
  const r = parseCidrList(text);
  assert.ok(!r.ok, `${text} should be refused`);
  return r.reason;
}

Deno.test("IPv4 and IPv6 text forms parse to bytes and format canonically", () => {
  const cases: [string, string][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["::1", "::1"],
    ["::", "::"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // first of equal runs
    ["2001:0db8:0000:0001:0001:0001:0001:0001", "2001:db8:0:1:1:1:1:1"], // one zero group kept
    ["fe80::", "fe80::"],
    ["::ffff:10.1.2.3", "::ffff:10.1.2.3"],
    ["::FFFF:0a01:0203", "::ffff:10.1.2.3"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ];
  for (const [text, canonical] of cases) {
    const r = parseIp(text);
    assert.ok(r.ok, `${text}: ${r.ok ? "" : r.reason}`);
    assert.equal(formatIp(r.ip), canonical, text);
  }
  const bytes = parseIp("::ffff:10.1.2.3");
  assert.ok(bytes.ok);
  assert.deepEqual([...bytes.ip.bytes], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 1, 2, 3]);
});

Deno.test("malformed addresses are error values", () => {
  for (
    const text of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.-4",
      " 1.2.3.4",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "12345::",
      "::g",
      "fe80::1%eth0",
      "1:2:3:4:5:6:7::8:9",
      "::1.2.3.4:5",
      "localhost",
    ]
  ) {
    assert.ok(!parseIp(text).ok, JSON.stringify(text));
  }
});

Deno.test("canonicalAddress gives one spelling per client", () => {
  assert.equal(canonicalAddress("::ffff:10.0.0.1"), "10.0.0.1");
  assert.equal(canonicalAddress("10.0.0.1"), "10.0.0.1");
  assert.equal(canonicalAddress("2001:DB8::0:1"), "2001:db8::1");
  assert.equal(canonicalAddress("not-an-ip"), "not-an-ip");
});

Deno.test("the IPv4 fast path takes only canonical dotted quads", () => {
  for (const a of ["0.0.0.0", "10.0.0.1", "255.255.255.255", "127.12.0.9"]) {
    assert.equal(isCanonicalV4(a), true, a);
  }
  for (
    const a of ["010.0.0.1", "10.0.0.01", "256.0.0.1", "10.0.0", "10.0.0.1.2", "::1", "a.b.c.d"]
  ) {
    assert.equal(isCanonicalV4(a), false, a);
  }
});

Deno.test("a CIDR list matches IPv4, IPv6 and IPv4-mapped addresses", () => {
  const l = list("127.0.0.0/8, ::1/128,10.0.0.0/8,192.168.1.128/25,2001:db8::/32");
  const inside = [
    "127.0.0.1",
    "127.255.255.255",
    "::1",
    "10.200.3.4",
    "::ffff:10.200.3.4",
    "::ffff:127.0.0.1",
    "192.168.1.128",
    "192.168.1.255",
    "2001:db8:ffff::7",
  ];
  const outside = [
    "128.0.0.1",
    "11.0.0.1",
    "::2",
    "::ffff:11.0.0.1",
    "192.168.1.127",
    "2001:db9::1",
    "::a00:1", // IPv4-compatible, not mapped: not 10.0.0.1
    "garbage",
    "",
  ];
  for (const a of inside) assert.ok(l.contains(a), `${a} should be inside`);
  for (const a of outside) assert.ok(!l.contains(a), `${a} should be outside`);
  assert.equal(l.toString(), "127.0.0.0/8,::1/128,10.0.0.0/8,192.168.1.128/25,2001:db8::/32");
});

Deno.test("IPv6 entries that cover mapped space match IPv4 addresses", () => {
  assert.ok(list("::ffff:0:0/96").contains("8.8.8.8"));
  assert.ok(list("::ffff:10.0.0.0/104").contains("10.9.9.9"));
  assert.ok(!list("::ffff:10.0.0.0/104").contains("11.9.9.9"));
  assert.ok(list("::/0").contains("1.2.3.4"));
  assert.ok(list("0.0.0.0/0").contains("::ffff:1.2.3.4"));
  assert.ok(!list("0.0.0.0/0").contains("2001:db8::1"));
});

Deno.test("prefix boundaries are exact", () => {
  const dotted = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
  const addr = 0xcb00714d; // 203.0.113.77
  for (let p = 1; p <= 32; p++) {
    const mask = p === 32 ? 0xffffffff : ~(0xffffffff >>> p) >>> 0;
    const l = list(`${dotted((addr & mask) >>> 0)}/${p}`);
    assert.ok(l.contains(dotted(addr)), `/${p}`);
    assert.ok(!l.contains(dotted((addr ^ (1 << (32 - p))) >>> 0)), `/${p}: last prefix bit`);
    if (p < 32) assert.ok(l.contains(dotted((addr ^ (1 << (31 - p))) >>> 0)), `/${p}: host bit`);
  }
  const l = list("10.0.0.0/31");
  assert.ok(l.contains("10.0.0.0") && l.contains("10.0.0.1") && !l.contains("10.0.0.2"));
  const b = list("2001:db8::/127");
  assert.ok(b.contains("2001:db8::1") && !b.contains("2001:db8::2"));
  assert.ok(list("1.2.3.4").contains("1.2.3.4") && !list("1.2.3.4").contains("1.2.3.5"));
});

Deno.test("bad lists are error values naming the entry", () => {
  assert.match(reason(""), /empty entry/);
  assert.match(reason("10.0.0.0/8,,::1"), /empty entry/);
  assert.match(reason("10.0.0.0/8,"), /empty entry/);
  assert.match(reason("10.0.0.0/33"), /prefix/);
  assert.match(reason("::/129"), /prefix/);
  assert.match(reason("10.0.0.0/"), /prefix/);
  assert.match(reason("10.0.0.0/08"), /prefix/);
  assert.match(reason("10.0.0.0/-1"), /prefix/);
  assert.match(reason("10.0.0.1/8"), /host bits/);
  assert.match(reason("::1/64"), /host bits/);
  assert.match(reason("10.0.0.0/8,bogus"), /bogus/);
  assert.match(reason("300.0.0.0/8"), /300/);
  const one = parseCidr("10.0.0.0/8");
  assert.ok(one.ok && one.cidr.prefix === 8);
});
