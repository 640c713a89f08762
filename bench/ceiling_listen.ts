/**
 * What both ceilings share with the orchestrator: listen, announce the port
 * as a JSON line on stdout, exit when the parent closes our stdin, and hand
 * each connection (no Nagle) to `serve`.
 */
import { closeQuietly } from "../src/lib/errors.ts";

export async function runCeiling(
  host: string,
  port: number,
  serve: (conn: Deno.TcpConn) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: host, port, transport: "tcp" });
  console.log(JSON.stringify({ ev: "listening", port: listener.addr.port }));
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* held open by the parent */ }
    Deno.exit(0);
  })();
  for await (const conn of listener) {
    conn.setNoDelay(true);
    serve(conn).catch(() => closeQuietly(conn));
  }
}
