/** The relay's counters in Prometheus text (a networked store's; /metrics adds them). */
import type { RelayStats } from "../presence/presence.ts";

export function renderRelayStats(stats: Readonly<RelayStats>): string[] {
  const lines: string[] = [];
  const one = (name: string, type: "counter" | "gauge", help: string, v: number) =>
    lines.push(
      `# HELP chatos_${name} ${help}`,
      `# TYPE chatos_${name} ${type}`,
      `chatos_${name} ${v}`,
    );
  one("redis_publishes_total", "counter", "messages published to Redis", stats.publishes);
  one("redis_receives_total", "counter", "messages received from Redis", stats.receives);
  one("redis_reconnects_total", "counter", "Redis connections re-established", stats.reconnects);
  one(
    "redis_rtt_seconds",
    "gauge",
    "last pub/sub round trip of the liveness ping",
    stats.lastRttMs / 1000,
  );
  lines.push(
    "# HELP chatos_relay_sends_total frames sent to users of other nodes, by how they ended",
    "# TYPE chatos_relay_sends_total counter",
    `chatos_relay_sends_total{result="delivered"} ${stats.delivered}`,
    `chatos_relay_sends_total{result="unreachable"} ${stats.unreachable}`,
    `chatos_relay_sends_total{result="failed"} ${stats.failed}`,
    `chatos_relay_sends_total{result="pending"} ${
      stats.sent - stats.delivered - stats.unreachable - stats.failed
    }`,
  );
  lines.push(
    ...stats.sendLatency.render(
      "chatos_relay_send_seconds",
      "from a cross-node send to its answer (delivered or unreachable)",
    ),
  );
  one(
    "relay_expired_total",
    "counter",
    "frames and broadcasts from other nodes that arrived past their deadline, dropped",
    stats.expired,
  );
  one(
    "relay_not_here_total",
    "counter",
    "frames from other nodes whose user had left when they arrived",
    stats.notHere,
  );
  one(
    "relay_held_dropped_total",
    "counter",
    "frames held while this node could not vouch for its users, dropped past the bound",
    stats.heldDropped,
  );
  one(
    "relay_broadcasts_partial_total",
    "counter",
    "Redis Cluster broadcasts that missed the nodes of a shard that was down",
    stats.broadcastsPartial,
  );
  lines.push(
    "# HELP chatos_relay_routes_total where a cross-node send found its node",
    "# TYPE chatos_relay_routes_total counter",
    `chatos_relay_routes_total{result="hit"} ${stats.routeHits}`,
    `chatos_relay_routes_total{result="miss"} ${stats.routeMisses}`,
    `chatos_relay_routes_total{result="stale"} ${stats.routeStale}`,
  );
  return lines;
}
