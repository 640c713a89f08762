/**
 * A latency histogram with fixed buckets, as Prometheus reads one: cumulative counts per upper
 * bound, a count and a sum. Observing is a short loop over a dozen bounds: cheap per message.
 */

/** Upper bounds in milliseconds. */
export const LATENCY_BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500] as const;

export class Histogram {
  readonly bounds: readonly number[];
  /** counts[i]: observations ≤ bounds[i] and > bounds[i-1]; the last one is > every bound. */
  readonly counts: number[];
  count = 0;
  sum = 0;

  constructor(bounds: readonly number[] = LATENCY_BUCKETS_MS) {
    this.bounds = bounds;
    this.counts = new Array(bounds.length + 1).fill(0);
  }

  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]) i++;
    this.counts[i]++;
    this.count++;
    this.sum += v;
  }

  /** Prometheus text for `name` (a histogram in seconds, from milliseconds). */
  render(name: string, help: string): string[] {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    let cumulative = 0;
    this.bounds.forEach((b, i) => {
      cumulative += this.counts[i];
      lines.push(`${name}_bucket{le="${b / 1000}"} ${cumulative}`);
    });
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`);
    lines.push(`${name}_sum ${this.sum / 1000}`, `${name}_count ${this.count}`);
    return lines;
  }
}
