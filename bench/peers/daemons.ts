/**
 * The IRC daemons the peer scenarios measure next to ours: InspIRCd 3 and
 * ngIRCd 26 from Debian's packages (`.ci/run` installs them). Each is started
 * in the foreground on a free loopback port, with its config from this folder
 * written into a temp dir, as a child of the run; `stop` ends it and removes
 * the dir. What each config turns off, and why, is said at its top.
 */
import { freePort } from "../../src/ops/processes.ts";
import type { Harness, Proc } from "../harness.ts";

export type DaemonName = "inspircd" | "ngircd";

interface DaemonSpec {
  bin: string;
  args(conf: string): string[];
}

const SPECS: Record<DaemonName, DaemonSpec> = {
  // --runasroot: CI and these machines run as root, which InspIRCd refuses otherwise.
  inspircd: { bin: "inspircd", args: (c) => ["--nofork", "--runasroot", `--config=${c}`] },
  // Run as root, ngIRCd drops to nobody after reading its config.
  ngircd: { bin: "ngircd", args: (c) => ["--nodaemon", "--config", c] },
};

/** The daemon's version line, or null (with why) when it cannot be run here. */
export async function daemonVersion(name: DaemonName): Promise<{ version?: string; why?: string }> {
  try {
    const out = await new Deno.Command(SPECS[name].bin, {
      args: ["--version"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { version: text.trim().split("\n")[0] };
  } catch (e) {
    return {
      why: `${SPECS[name].bin} not installed (${(e as Error).name}); apt-get install ${name}`,
    };
  }
}

export interface Daemon extends Proc {
  name: DaemonName;
  stop(): Promise<void>;
}

/** Starts `name` on a free loopback port with bench/peers/<name>.conf. */
export async function startDaemon(h: Harness, name: DaemonName): Promise<Daemon> {
  const dir = await Deno.makeTempDir({ prefix: `chatos-bench-${name}-` });
  await Deno.chmod(dir, 0o755); // ngIRCd reads its MOTD after dropping root
  const port = freePort();
  const template = await Deno.readTextFile(new URL(`./${name}.conf`, import.meta.url));
  const conf = `${dir}/${name}.conf`;
  await Deno.writeTextFile(
    conf,
    template.replaceAll("@PORT@", String(port)).replaceAll("@DIR@", dir),
  );
  await Deno.writeTextFile(`${dir}/motd`, "chatos bench peer\n");
  const child = h.children.spawn({
    name,
    cmd: SPECS[name].bin,
    args: SPECS[name].args(conf),
    cwd: dir,
  });
  const stop = async () => {
    await child.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await child.listening(port, 15_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { name, child, port, stop };
}
