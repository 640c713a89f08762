/**
 * The peer scenarios' IRC scanner (bench/gen/irc.ts): a PRIVMSG's text is
 * found in place, whatever the read boundaries, and other lines come out whole.
 */
import assert from "node:assert/strict";
import { IrcScanner, privmsg, privmsgTextOffset } from "../bench/gen/irc.ts";

const te = new TextEncoder();
const td = new TextDecoder();

function scan(chunks: string[]) {
  const texts: string[] = [];
  const lines: string[] = [];
  const scanner = new IrcScanner();
  for (const c of chunks) {
    const bytes = te.encode(c);
    scanner.feed(bytes, bytes.length, {
      onPrivmsg(buf, off) {
        texts.push(td.decode(buf.subarray(off, buf.indexOf(13, off))));
      },
      onLine(cmd, text) {
        lines.push(`${cmd}|${text()}`);
      },
    });
  }
  return { texts, lines };
}

const TS = "000000123456-a text";
const STREAM = `:srv 001 bob :Welcome\r\n:alice!~a@h PRIVMSG bob :${TS}\r\n` +
  `PING :srv\r\n:alice!~a@h PRIVMSG #room :${TS.replace("a", "b")}\r\n:srv 376 bob :End\r\n`;

Deno.test("every split of a stream yields the same messages and lines", () => {
  const whole = scan([STREAM]);
  assert.deepEqual(whole.texts, [TS, TS.replace("a", "b")]);
  assert.deepEqual(whole.lines, [
    "001|:srv 001 bob :Welcome",
    "PING|PING :srv",
    "376|:srv 376 bob :End",
  ]);
  for (let i = 1; i < STREAM.length; i++) {
    assert.deepEqual(scan([STREAM.slice(0, i), STREAM.slice(i)]), whole, `split at ${i}`);
  }
  assert.deepEqual(scan([...STREAM]), whole, "one byte per read");
});

Deno.test("a PRIVMSG too short to hold a timestamp is a line, not a message", () => {
  const { texts, lines } = scan([":a!b@c PRIVMSG bob :hi\r\n"]);
  assert.deepEqual(texts, []);
  assert.deepEqual(lines, ["PRIVMSG|:a!b@c PRIVMSG bob :hi"]);
});

Deno.test("the generator's PRIVMSG template: its timestamp is where the sender patches it", () => {
  const msg = privmsg("#r1", TS);
  assert.equal(td.decode(msg.subarray(privmsgTextOffset(msg))), `${TS}\r\n`);
});
