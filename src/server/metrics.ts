/**
 * Counters and gauges of one server, rendered in Prometheus text format by
 * the admin endpoint. Plain fields and arrays: incrementing one is a single
 * add on the hot path.
 */
import { opName } from "../protocol/frames.ts";

export class Metrics {
  connectionsOpened = 0;
  connectionsRejected = 0;
  /** Indexed by opcode (1..8); index 0 counts nothing. */
  framesIn: number[] = new Array(9).fill(0);
  framesOut: number[] = new Array(9).fill(0);
  /** Indexed by ERROR code. */
  errorsSent: number[] = new Array(16).fill(0);
  malformedFrames = 0;
  slowConsumerDrops = 0;
  loginTimeouts = 0;
  linksOpened = 0;
  linkBytes = 0;
  hijackStrikes = 0;
  /** Private-end frames refused unseen: not from the client key of the user they name. */
  foreignLinkFrames = 0;
  /** Connections from a trusted balancer closed for a missing or invalid PROXY header. */
  proxyHeaderRefused = 0;
  /** Connections and requests refused by a limit, by the limit's name. */
  refused: Record<string, number> = {};
  /** Never-logged-in connections closed to make room on a full node. */
  evictions = 0;
  /** Times a session's socket stopped being read until its rate budget refilled. */
  throttled = 0;
  /** Output bytes thrown away with dropped slow readers. */
  slowReaderDiscardedBytes = 0;
  /** Failed accepts (e.g. out of descriptors); the listener backs off and goes on. */
  acceptErrors = 0;
  /** Private links closed for being idle. */
  linksIdleClosed = 0;
  /** SMAs this node's users got and the other nodes' did not (Redis failed on the way). */
  broadcastsLost = 0;

  /** Gauges read at scrape time. */
  gauges: Record<string, () => number> = {};

  refuse(reason: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
  }

  countOut(frame: Uint8Array): void {
    const op = frame[0];
    if (op > 0 && op < 9) this.framesOut[op]++;
    if (op === 8) this.errorsSent[frame[1] & 15]++;
  }

  render(extra: Record<string, number> = {}): string {
    const lines: string[] = [];
    const counter = (name: string, help: string, samples: Array<[string, number]>) => {
      lines.push(`# HELP chatos_${name} ${help}`, `# TYPE chatos_${name} counter`);
      for (const [labels, v] of samples) lines.push(`chatos_${name}${labels} ${v}`);
    };
    const gauge = (name: string, help: string, v: number) => {
      lines.push(
        `# HELP chatos_${name} ${help}`,
        `# TYPE chatos_${name} gauge`,
        `chatos_${name} ${v}`,
      );
    };
    const single: Array<[string, string, number]> = [
      ["connections_opened_total", "TCP connections accepted", this.connectionsOpened],
      [
        "connections_rejected_total",
        "connections closed at once (over a limit)",
        this.connectionsRejected,
      ],
    ];
    for (const [name, help, v] of single) counter(name, help, [["", v]]);
    const byOp = (arr: number[]) =>
      arr.flatMap((v, op) => (op === 0 ? [] : [[`{op="${opName[op]}"}`, v] as [string, number]]));
    counter("frames_in_total", "frames received by opcode", byOp(this.framesIn));
    counter("frames_out_total", "frames queued to clients by opcode", byOp(this.framesOut));
    counter(
      "errors_sent_total",
      "ERROR frames sent by code",
      this.errorsSent.flatMap((v, code) =>
        (v === 0 && code > 9) || code === 0 ? [] : [[`{code="${code}"}`, v] as [string, number]]
      ),
    );
    const more: Array<[string, string, number]> = [
      ["malformed_frames_total", "connections closed for a malformed frame", this.malformedFrames],
      ["slow_consumer_drops_total", "connections dropped for not reading", this.slowConsumerDrops],
      ["login_timeouts_total", "connections closed for not logging in", this.loginTimeouts],
      ["links_opened_total", "private links paired", this.linksOpened],
      ["link_bytes_total", "bytes copied over private links", this.linkBytes],
      ["link_strikes_total", "failed attempts to join a private link", this.hijackStrikes],
      ["evictions_total", "never-logged-in connections closed to make room", this.evictions],
      ["throttled_total", "times a session was not read until its budget refilled", this.throttled],
      [
        "slow_reader_discarded_bytes_total",
        "output discarded with dropped slow readers",
        this.slowReaderDiscardedBytes,
      ],
      ["accept_errors_total", "failed accepts (the listener backs off)", this.acceptErrors],
      ["links_idle_closed_total", "private links closed for being idle", this.linksIdleClosed],
      [
        "broadcasts_lost_total",
        "SMAs this node's users got and other nodes' did not (Redis failed on the way)",
        this.broadcastsLost,
      ],
      [
        "link_foreign_frames_total",
        "private-end frames not from the named user's address",
        this.foreignLinkFrames,
      ],
      [
        "proxy_header_refused_total",
        "connections closed for a missing or bad PROXY header",
        this.proxyHeaderRefused,
      ],
    ];
    for (const [name, help, v] of more) counter(name, help, [["", v]]);
    counter(
      "refused_total",
      "connections or requests refused by a limit, by reason",
      Object.entries(this.refused).map(([r, v]) => [`{reason="${r}"}`, v] as [string, number]),
    );
    for (const [name, read] of Object.entries(this.gauges)) {
      gauge(name, name.replaceAll("_", " "), read());
    }
    for (const [name, v] of Object.entries(extra)) gauge(name, name.replaceAll("_", " "), v);
    return lines.join("\n") + "\n";
  }
}
