/**
 * The peers' table for a run's end (and docs/PERFORMANCE.md): one row per
 * peer line, ours next to each daemon, and ours over the best daemon.
 */
import type { Result } from "../report.ts";

const COLUMNS = ["chatos", "inspircd", "ngircd", "ngircd+F"];

interface Figures {
  cpu_us?: number | null;
  rate?: number;
  p50_ms?: number;
  p99_ms?: number;
  rss_kib?: number;
  missing?: string;
}

function cell(f: Figures | undefined): string {
  if (!f || f.cpu_us == null) return "—";
  const lat = f.p99_ms === undefined ? "" : `, p50/p99 ${f.p50_ms}/${f.p99_ms} ms`;
  const rss = f.rss_kib === undefined ? "" : `, ${f.rss_kib.toFixed(1)} KiB idle`;
  return `${f.cpu_us.toFixed(2)} µs (${
    Math.round(f.rate ?? 0).toLocaleString("en")
  }/s${lat}${rss})`;
}

/** A Markdown table of the peer lines in `rs`, or null if there are none. */
export function peersTable(rs: readonly Result[]): string | null {
  const lines = rs.filter((r) => r.scenario.startsWith("peers-") && r.servers);
  if (lines.length === 0) return null;
  const rows = lines.map((r) => {
    const servers = r.servers as Record<string, Figures | number | null>;
    const fig = (s: string): Figures | undefined => {
      const f = servers[s];
      return typeof f === "number" ? { cpu_us: f } : f ?? undefined;
    };
    const ratio = r.ratio == null ? "—" : `**${r.ratio.toFixed(2)}×** ${r.best}`;
    return [`${r.scenario} (${r.unit})`, ...COLUMNS.map((s) => cell(fig(s))), ratio];
  });
  const head = ["shape", ...COLUMNS, "ours / best daemon"];
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}
