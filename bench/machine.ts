/** What a results file's `meta` line records: the machine, Deno, and which server code ran. */

export async function machineInfo(
  profile: string,
  serverRoot: string,
): Promise<Record<string, unknown> & { server: string | null }> {
  const mem = (await Deno.readTextFile("/proc/meminfo")).match(/MemTotal:\s+(\d+)/);
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/);
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: cpu?.[1],
    mem_gb: mem ? Math.round(Number(mem[1]) / 1024 / 1024 * 10) / 10 : undefined,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    kernel: Deno.osRelease(),
    profile,
    server: await serverVersion(serverRoot),
  };
}

/**
 * The commit and uncommitted state of the server's src/: every scenario
 * spawns the server from the working tree, so an edit during the run would
 * silently mix versions. Compared again at the end. null without git.
 */
export async function serverVersion(serverRoot: string): Promise<string | null> {
  try {
    const git = (args: string[]) =>
      new Deno.Command("git", { args, cwd: serverRoot, stdout: "piped", stderr: "null" }).output();
    const head = await git(["rev-parse", "--short", "HEAD"]);
    if (!head.success) return null;
    const diff = await git(["diff", "HEAD", "--", "src"]);
    if (diff.stdout.length === 0) return new TextDecoder().decode(head.stdout).trim();
    const sha = new Uint8Array(await crypto.subtle.digest("SHA-1", diff.stdout));
    const hex = Array.from(sha.slice(0, 4)).map((b) => b.toString(16).padStart(2, "0")).join("");
    return `${new TextDecoder().decode(head.stdout).trim()}+dirty:${hex}`;
  } catch {
    return null;
  }
}
