/**
 * The README's operator section is a terminal session: this test runs every
 * command of it, in an interactive shell on a pseudo-terminal, against a
 * fresh `deno task cluster` in the state the README describes, and checks
 * that each prints what the README shows (ports, ages and lease times aside).
 */
import assert from "node:assert/strict";
import { ChatClient } from "../src/client/client.ts";
import { withDeadline } from "../src/lib/async.ts";
import { ErrorCode, Op } from "../src/protocol/mod.ts";
import { freePort } from "../src/ops/processes.ts";
import { eventually } from "./helpers/harness.ts";
import { PtyShell } from "./helpers/pty_shell.ts";
import { redisCli } from "../src/ops/redis_topologies.ts";

const ROOT = new URL("../", import.meta.url).pathname;

interface Step {
  command: string;
  shown: string[];
}

/** Every code block of README's "## Operations" section, read as `$ command` and what follows. */
async function operatorSession(): Promise<Step[]> {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const start = readme.indexOf("\n## Operations\n");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  const blocks = [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)];
  assert.ok(blocks.length > 0, "the operator section shows its commands");
  const steps: Step[] = [];
  for (const [, lang, body] of blocks) {
    assert.equal(
      lang,
      "console",
      "every block of the operator section is a session this test runs",
    );
    for (const line of body.trimEnd().split("\n")) {
      if (line.startsWith("$ ")) steps.push({ command: line.slice(2), shown: [] });
      else steps[steps.length - 1].shown.push(line);
    }
  }
  return steps;
}

/** A line as the README shows it, as a pattern: ports, ages and lease times may differ. */
function linePattern(line: string): RegExp {
  const escaped = line.trimEnd().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    .replace(/127\\\.0\\\.0\\\.1:\d+/g, "127\\.0\\.0\\.1:\\d+")
    .replace(/\d+(\\\.\d+)?s ago/g, "\\d+(\\.\\d+)?s ago")
    .replace(/\d+ms/g, "\\d+ms")
    .replace(/ {2,}/g, " +");
  return new RegExp(`^${escaped}$`);
}

/** Redis answers these from sets: their order is Redis's, so compare them sorted. */
const UNORDERED = /SMEMBERS|--scan|PUBSUB CHANNELS/;

function assertShown(step: Step, got: string[]): void {
  const strip = (l: string) => l.replace(/^ *\d+\) /, "");
  let want = step.shown, have = got.map((l) => l.trimEnd());
  if (UNORDERED.test(step.command)) {
    want = want.map(strip).sort();
    have = have.map(strip).sort();
  }
  const say = `$ ${step.command}\nREADME shows:\n${step.shown.join("\n")}\nit printed:\n${
    got.join("\n")
  }`;
  assert.equal(have.length, want.length, say);
  want.forEach((w, i) => assert.match(have[i], linePattern(w), say));
}

Deno.test("README operations: every command of the session prints what the README shows", async () => {
  const steps = await operatorSession();
  const cluster = new Deno.Command(Deno.execPath(), {
    args: ["task", "cluster", "--nodes", "3", "--port", String(freePort())],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = cluster.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const shell = new PtyShell({ cwd: ROOT, env: { NO_COLOR: "1" } });
  const clients: ChatClient[] = [];
  try {
    let banner = "";
    await withDeadline(
      (async () => {
        while (!banner.includes("Ctrl-C to stop")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`deno task cluster ended early:\n${banner}`);
          banner += value;
        }
      })(),
      60_000,
      () => new Error(`no "Ctrl-C to stop" from deno task cluster within 60 s:\n${banner}`),
    );
    const exported = /^ {2}(export REDIS_URL=redis:\/\/127\.0\.0\.1:\d+)$/m.exec(banner);
    assert.ok(exported, `the banner gives the line to export:\n${banner}`);
    const nodePort = (id: string) =>
      Number(new RegExp(`^ {2}${id}: +127\\.0\\.0\\.1:(\\d+) `, "m").exec(banner)![1]);

    // The state the README describes: alice on node-1 asked bob on node-2, who has not answered.
    const login = async (pseudo: string, port: number) => {
      const c = await ChatClient.connect({ port });
      clients.push(c);
      assert.equal(await c.login(pseudo), ErrorCode.OK, pseudo);
      return c;
    };
    const alice = await login("alice", nodePort("node-1"));
    const bob = await login("bob", nodePort("node-2"));
    alice.send({ op: Op.TCPAsk, sender: "alice", recipient: "bob", password: 4242 });
    assert.equal(await alice.nextError(), ErrorCode.OK);
    assert.equal((await bob.next()).op, Op.TCPAsk, "bob was asked");
    // A lease's `users` is as of its node's last heartbeat: wait for the ones after the logins.
    const redisPort = Number(exported[1].split(":").pop());
    for (const id of ["node-1", "node-2"]) {
      await eventually(
        async () =>
          (await redisCli(redisPort, "HGET", `chatos:node:{${id}}`, "users")).trim() === "1",
        5000,
        `${id}'s lease to count its user`,
      );
    }

    const [first, ...rest] = steps;
    assert.match(first.command, linePattern(exported[1]), "the session starts with that line");
    assert.deepEqual(await shell.run(exported[1]), [], first.command);
    for (const step of rest) assertShown(step, await shell.run(step.command));
  } finally {
    for (const c of clients) c.close();
    await shell.close();
    cluster.kill("SIGINT");
    await reader.cancel().catch(() => {});
    await cluster.status;
  }
});
