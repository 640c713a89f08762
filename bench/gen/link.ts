/**
 * link mode: the full TCPAsk / TCPAccept / TCPConnect handshake (or two
 * sockets paired by key at the forwarder), then A's end writes chunks back
 * to back and B's end counts what it reads.
 */
import { writeAll } from "../../src/lib/async.ts";
import { errorMessage } from "../../src/lib/errors.ts";
import { frame, OP_ERROR, OP_TCPACCEPT, OP_TCPASK, OP_TCPCONNECT } from "../wire.ts";
import type { GenConfig } from "./config.ts";
import { dial, expectFrame, expectOk, login, preamble, readLoop } from "./net.ts";
import type { GenState } from "./state.ts";

export async function setupLink(cfg: GenConfig, st: GenState): Promise<() => void> {
  const k = cfg.ports.length;
  const portA = cfg.ports[0];
  const portB = cfg.ports[(k > 1 ? 1 : 0) % k];
  let la: Deno.TcpConn;
  let lb: Deno.TcpConn;
  if (cfg.target === "forwarder") {
    la = await dial(portA);
    lb = await dial(portB);
    const key = cfg.gen * 100_000 + 99_999;
    await preamble(la, key);
    await preamble(lb, key);
  } else {
    const a = `g${cfg.gen}a`;
    const b = `g${cfg.gen}b`;
    const pw = 4242;
    const ca = await dial(portA);
    const cb = await dial(portB);
    await login(ca, a);
    await login(cb, b);
    await writeAll(ca, frame(OP_TCPASK, [a, b], pw));
    await expectFrame(ca, OP_ERROR, "TCPAsk answer");
    await expectFrame(cb, OP_TCPASK, "TCPAsk relayed to B");
    lb = await dial(portB);
    await writeAll(lb, frame(OP_TCPACCEPT, [a, b], pw));
    await expectFrame(ca, OP_TCPACCEPT, "TCPAccept relayed to A");
    la = await dial(portA);
    await writeAll(la, frame(OP_TCPCONNECT, [a, b], pw));
    await expectOk(la, "A's link end");
    await expectOk(lb, "B's link end");
    // The chat connections stay open (idle) for the life of the link.
  }
  readLoop(lb, 64 * 1024, (_buf, n) => {
    st.bytesIn += n;
    st.delivered += n;
  }, st.onEnd);
  const chunk = new Uint8Array(cfg.chunk ?? 64 * 1024).fill(0x61);
  return () => {
    (async () => {
      while (!st.stopping) {
        await writeAll(la, chunk);
        st.sent += chunk.length;
      }
    })().catch((e) => {
      if (!st.stopping) st.noteError(`link write: ${errorMessage(e)}`);
    });
  };
}
