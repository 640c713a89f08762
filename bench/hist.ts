/**
 * A log-linear latency histogram in microseconds: exact below 64 µs, then 32
 * buckets per power of two (about 3% resolution) up to ~35 minutes. Cheap to
 * record into, and histograms from several generator processes add up.
 */

const SUB = 32;
const BUCKETS = 28 * SUB;
const MAX_US = 2 ** 31 - 1;

function bucketOf(us: number): number {
  const v = us <= 0 ? 0 : us >= MAX_US ? MAX_US : Math.floor(us);
  if (v < SUB) return v;
  const e = 31 - Math.clz32(v);
  return (e - 4) * SUB + ((v >>> (e - 5)) - SUB);
}

/** [low, high) of a bucket, in µs. */
function boundsOf(i: number): [number, number] {
  if (i < 2 * SUB) return [i, i + 1];
  const e = Math.floor(i / SUB) + 4;
  const sub = (i % SUB) + SUB;
  const width = 2 ** (e - 5);
  return [sub * width, (sub + 1) * width];
}

export interface HistJson {
  n: number;
  max: number;
  sum: number;
  /** [bucket, count] for the non-empty buckets. */
  b: [number, number][];
}

export class Hist {
  counts = new Float64Array(BUCKETS);
  n = 0;
  max = 0;
  sum = 0;

  record(us: number): void {
    this.counts[bucketOf(us)]++;
    this.n++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.max = 0;
    this.sum = 0;
  }

  add(o: Hist): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += o.counts[i];
    this.n += o.n;
    this.sum += o.sum;
    if (o.max > this.max) this.max = o.max;
  }

  /** The value at quantile q (0..1) in µs: the middle of its bucket, never above max. */
  quantile(q: number): number {
    if (this.n === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const [lo, hi] = boundsOf(i);
        return Math.min((lo + hi) / 2, this.max);
      }
    }
    return this.max;
  }

  toJSON(): HistJson {
    const b: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i] > 0) b.push([i, this.counts[i]]);
    return { n: this.n, max: this.max, sum: this.sum, b };
  }

  static fromJSON(j: HistJson): Hist {
    const h = new Hist();
    for (const [i, c] of j.b) h.counts[i] = c;
    h.n = j.n;
    h.max = j.max;
    h.sum = j.sum;
    return h;
  }
}
