/**
 * The load generator's own minimal IRC client code, for the peer scenarios:
 * the lines it sends (registration, OPER, JOIN, PRIVMSG templates) and a
 * scanner that splits what a server sends into lines, handing a PRIVMSG's
 * text over in place (no string is built per message) and every other line
 * as its command and text (setup only: numerics, PING, ERROR).
 */
import net from "node:net";
import { TS_DIGITS } from "../wire.ts";

const te = new TextEncoder();
const dec = new TextDecoder("latin1");
const NL = 10;
const SP = 32;
const COLON = 58;

/** NICK and USER: registration; the server answers with its welcome burst and the MOTD. */
export function registration(nick: string): Uint8Array {
  return te.encode(`NICK ${nick}\r\nUSER ${nick} 0 * :${nick}\r\n`);
}

export function line(text: string): Uint8Array {
  return te.encode(`${text}\r\n`);
}

/** The answer to a PING line. */
export function pong(ping: string): Uint8Array {
  return line(`PONG ${ping.slice(ping.indexOf("PING") + 5)}`);
}

/** A PRIVMSG to a nick or a channel, whose text starts with a timestamp slot. */
export function privmsg(to: string, text: string): Uint8Array {
  return te.encode(`PRIVMSG ${to} :${text}\r\n`);
}

/** Where the text of a PRIVMSG line (as sent by privmsg) starts. */
export function privmsgTextOffset(msg: Uint8Array): number {
  return msg.indexOf(COLON) + 1;
}

/** The end of registration: end of MOTD, or no MOTD. */
export const REGISTERED = new Set(["376", "422"]);

export interface IrcSink {
  /** A PRIVMSG; its text starts at buf[textOff] (valid only during the call). */
  onPrivmsg(buf: Uint8Array, textOff: number): void;
  /**
   * Any other line: its command (or numeric), and the whole line on demand (a
   * room's setup brings a JOIN per member to every member: most go unread).
   */
  onLine(command: string, text: () => string): void;
}

/**
 * Splits a byte stream into lines. A line cut by a read boundary is completed
 * in a carry buffer; whole lines are scanned in place.
 */
export class IrcScanner {
  #carry = new Uint8Array(1024);
  #held = 0;

  feed(chunk: Uint8Array, n: number, sink: IrcSink): void {
    let off = 0;
    if (this.#held > 0) {
      const nl = chunk.subarray(0, n).indexOf(NL);
      const take = nl < 0 ? n : nl + 1;
      this.#ensure(this.#held + take);
      this.#carry.set(chunk.subarray(0, take), this.#held);
      this.#held += take;
      if (nl < 0) return;
      scanLine(this.#carry, 0, this.#held - 1, sink);
      this.#held = 0;
      off = take;
    }
    const view = chunk.subarray(0, n);
    while (off < n) {
      const nl = view.indexOf(NL, off);
      if (nl < 0) {
        this.#ensure(n - off);
        this.#carry.set(view.subarray(off), 0);
        this.#held = n - off;
        return;
      }
      scanLine(view, off, nl, sink);
      off = nl + 1;
    }
  }

  #ensure(size: number): void {
    if (this.#carry.length >= size) return;
    const grown = new Uint8Array(Math.max(size, 2 * this.#carry.length));
    grown.set(this.#carry.subarray(0, this.#held));
    this.#carry = grown;
  }
}

/** One line at buf[start, nl): a PRIVMSG's text in place, anything else decoded. */
function scanLine(buf: Uint8Array, start: number, nl: number, sink: IrcSink): void {
  let cmd = start;
  if (buf[start] === COLON) {
    const sp = buf.indexOf(SP, start);
    if (sp < 0 || sp >= nl) return; // a prefix and nothing else
    cmd = sp + 1;
  }
  if (cmd >= nl) return;
  // "PRIVMSG <target> :<text>": a nick or channel name holds no colon.
  if (buf[cmd] === 0x50 && buf[cmd + 1] === 0x52 && buf[cmd + 7] === SP) {
    const text = buf.indexOf(COLON, cmd + 9) + 1;
    if (text > 0 && text + TS_DIGITS <= nl) {
      sink.onPrivmsg(buf, text);
      return;
    }
  }
  const end = buf[nl - 1] === 13 ? nl - 1 : nl;
  const sp = buf.indexOf(SP, cmd);
  const command = dec.decode(buf.subarray(cmd, sp < 0 || sp > end ? end : sp));
  // Decoded now or never: the buffer is reused after this call.
  let text: string | undefined;
  sink.onLine(command, () => text ??= dec.decode(buf.subarray(start, end)));
}

/**
 * One IRC login over node:net from `local` (the connect mode's login for an
 * IRC daemon): registration, then the welcome burst up to the end of the MOTD;
 * the session then stays idle. A PING on the way is answered.
 */
export function ircLoginFrom(
  port: number,
  local: string,
  nick: string,
  onClose: (loggedIn: boolean) => void,
): { socket: net.Socket; done: Promise<void> } {
  const s = net.connect({ host: "127.0.0.1", port, localAddress: local });
  s.setNoDelay(true);
  const done = new Promise<void>((resolve, reject) => {
    let loggedIn = false;
    const scan = new IrcScanner();
    const sink: IrcSink = {
      onPrivmsg() {},
      onLine(cmd, text) {
        if (loggedIn) return;
        if (cmd === "PING") s.write(pong(text()));
        else if (REGISTERED.has(cmd)) {
          loggedIn = true;
          s.pause(); // idle from here on, like a quiet user
          resolve();
        } else if (cmd === "ERROR" || cmd === "433" || cmd === "432") {
          reject(new Error(`login ${nick}: ${text()}`));
        }
      },
    };
    s.on("connect", () => s.write(registration(nick)));
    s.on("data", (d: Uint8Array) => scan.feed(d, d.length, sink));
    s.on("error", reject);
    s.on("close", () => {
      if (!loggedIn) reject(new Error(`login ${nick}: connection closed`));
      onClose(loggedIn);
    });
  });
  return { socket: s, done };
}
