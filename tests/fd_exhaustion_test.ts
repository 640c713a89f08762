/**
 * Issue 9: running out of file descriptors never kills a node. A node runs
 * as a child process under a low `ulimit -n` with its admin endpoint on; an
 * attacker opens more connections than the process may hold, the admin
 * endpoint is asked meanwhile, then the attacker leaves: the process is
 * still there and serves again (health and a login) within 5 s.
 */
import assert from "node:assert/strict";
import { ChatClient } from "../src/client/client.ts";
import { ErrorCode } from "../src/protocol/mod.ts";
import { RawConn } from "./helpers/from_address.ts";
import { sleep } from "../src/lib/async.ts";
import { NODE_MAIN, nodeRunArgs } from "../src/ops/node_command.ts";

const ULIMIT = 256;

interface Node {
  child: Deno.ChildProcess;
  port: number;
  admin: number;
  stop(): Promise<void>;
}

async function startNode(extra: string[]): Promise<Node> {
  const args = ["--host", "127.0.0.1", "--port", "0", "--admin-port", "0", ...extra];
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n ${ULIMIT}; exec "$0" "$@"`,
      Deno.execPath(),
      ...nodeRunArgs(NODE_MAIN),
      ...args,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let listening: { port: number; admin: number } | null = null;
  let text = "";
  while (!listening) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the node exited before listening: ${text}`);
    text += value;
    for (const line of text.split("\n")) {
      if (!line.includes('"listening"')) continue;
      const ev = JSON.parse(line);
      // The line names the admin URL (http://host:port/metrics).
      listening = { port: ev.port, admin: Number(new URL(ev.admin).port) };
    }
  }
  // Keep reading its log so the node never blocks on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done) { /* the log is not checked here */ }
  })();
  return {
    child,
    ...listening,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // it exited already: the assertions said so
      }
      await child.status;
      await drained;
    },
  };
}

async function get(port: number, path: string): Promise<{ status: number; body: string } | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return null; // refused or timed out under attack: allowed, dying is not
  }
}

async function alive(child: Deno.ChildProcess): Promise<boolean> {
  return await Promise.race([child.status.then(() => false), sleep(50).then(() => true)]);
}

for (
  const [name, extra] of [
    ["past the process fd limit (--max-fds above it)", ["--max-fds", "4000"]],
    ["with the default budget under the fd limit", []],
  ] as const
) {
  Deno.test(`fd exhaustion ${name}: the node lives and serves again within 5 s`, async () => {
    const node = await startNode([...extra]);
    const attack: RawConn[] = [];
    try {
      for (let i = 0; i < ULIMIT + 150; i++) {
        const c = await RawConn.open(node.port, "127.0.0.2").catch(() => null);
        if (c) attack.push(c);
      }
      for (let i = 0; i < 3; i++) await get(node.admin, "/healthz");
      assert.ok(await alive(node.child), "the node survived the attack");
      for (const c of attack) c.close();
      const left = Date.now();
      let healthy = false, loggedIn = false;
      while (Date.now() - left < 5000 && !(healthy && loggedIn)) {
        healthy ||= (await get(node.admin, "/healthz"))?.status === 200;
        if (!loggedIn) {
          const c = await ChatClient.connect({ port: node.port }).catch(() => null);
          loggedIn = (await c?.login("back", 1000).catch(() => null)) === ErrorCode.OK;
          c?.close();
        }
        if (!(healthy && loggedIn)) await sleep(100);
      }
      assert.ok(healthy && loggedIn, `after 5 s: healthz ${healthy}, login ${loggedIn}`);
      const metrics = (await get(node.admin, "/metrics"))?.body ?? "";
      const limited = /chatos_accept_errors_total [1-9]/.test(metrics) ||
        /chatos_refused_total\{reason="fd_budget"\} [1-9]/.test(metrics);
      assert.ok(limited, "the attack hit the descriptor limit (it was a real test)");
      assert.ok(await alive(node.child));
    } finally {
      for (const c of attack) c.close();
      await node.stop();
    }
  });
}

Deno.test("deno task serve takes its descriptor budget from the process limit, with headroom", async () => {
  // The README's command, as a user runs it: Deno reads /proc/self/limits only with --allow-all.
  const root = new URL("..", import.meta.url).pathname;
  const child = new Deno.Command("bash", {
    args: ["-c", `ulimit -n 500; exec "$0" task serve --host 127.0.0.1 --port 0`, Deno.execPath()],
    cwd: root,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let listening: Record<string, unknown> | null = null;
  try {
    while (!listening) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve exited before listening: ${text}`);
      text += value;
      const line = text.split("\n").find((l) => l.includes('"msg":"listening"'));
      if (line) listening = JSON.parse(line);
    }
    assert.equal(listening.maxFds, 436, "500 less max(64, 10%)");
    assert.ok(!text.includes("fd limit unknown"), text);
  } finally {
    child.kill("SIGTERM");
    await reader.cancel().catch(() => {});
    await child.status;
  }
});
