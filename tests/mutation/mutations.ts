/**
 * The bugs `deno task mutate` plants, one at a time. `find` must occur exactly
 * once in all of src/ (wherever the file has moved); `tests` are the test
 * files expected to fail with it. The first nine are the ones issue 13 found
 * going through a green suite.
 */
export interface Mutation {
  name: string;
  /** The promise it breaks, for the report. */
  why: string;
  find: string;
  replace: string;
  tests: string[];
}

const E2E = ["tests/server_e2e_test.ts", "tests/cluster_e2e_test.ts"];

export const MUTATIONS: Mutation[] = [
  // ---- the nine bugs of issue 13
  {
    name: "reserve-without-own-lease",
    why: "a reservation no longer requires the node to hold its own lease",
    find:
      "if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('NOLEASE node lease missing') end\nlocal cur = redis.call('GET', KEYS[1])",
    replace: "local cur = redis.call('GET', KEYS[1])",
    tests: ["tests/presence_redis_test.ts"],
  },
  {
    name: "strike-budget-ignored",
    why:
      "strikes against a pending handshake never reach the budget (issue 10 replaced the window)",
    find: "elseif redis.call('HINCRBY', hk, 'strikes', 1) >= budget then",
    replace: "elseif redis.call('HINCRBY', hk, 'strikes', 1) >= budget + 1000 then",
    tests: ["tests/presence_redis_test.ts"],
  },
  {
    name: "bridge-hmac-unchecked",
    why: "a bridge greeting whose HMAC is wrong is accepted",
    find: "if (diff !== 0) return { refused: BAD_HMAC };",
    replace: "",
    tests: ["tests/bridge_test.ts"],
  },
  {
    name: "pending-asks-unlimited",
    why: "the limit of 16 unanswered TCPAsks per user is gone",
    find: "return unanswered < this.#limits.maxPendingAsks;",
    replace: "return true;",
    tests: E2E,
  },
  {
    name: "redis-down-spm-error-4",
    why: "with Redis down, a remote SPM is answered ERROR 4 instead of ERROR 9",
    find: '(e) => [encodeError(this.#unavailableCode("SPM", e))]',
    replace: "() => [encodeError(ErrorCode.UnreachableUser)]",
    tests: ["tests/cluster_test.ts"],
  },
  {
    name: "draining-accepts-work",
    why: "a draining node still takes new requests",
    find: "if (this.#d.draining() && frame.op !== Op.TCPAbort) {",
    replace: "if (false) {",
    tests: ["tests/ops_test.ts"],
  },
  {
    name: "draining-drops-requests",
    why: "a draining node drops new requests without an answer",
    find:
      "if (this.#d.draining() && frame.op !== Op.TCPAbort) {\n      return this.#reply(ErrorCode.ServiceUnavailable);",
    replace: "if (this.#d.draining() && frame.op !== Op.TCPAbort) {\n      return;",
    tests: ["tests/ops_test.ts"],
  },
  {
    name: "link-closes-both-ways-at-first-eof",
    why: "one end's EOF closes the whole link instead of half-closing the other end",
    find: "if (peer.#readDone) return this.#closeBoth();",
    replace: "return this.#closeBoth();",
    tests: ["tests/link_end_test.ts", ...E2E],
  },
  {
    name: "parked-end-closed-without-tcpabort",
    why: "an aborted handshake's parked private end is closed without its TCPAbort",
    find: "if (end) void end.refuse([abortFrame(key)]);",
    replace: "if (end) end.close();",
    tests: E2E,
  },
  {
    name: "restart-takes-back-live-pseudos",
    why: "after a Redis restart a node takes back pseudos that a live node now holds",
    find: "local held = cur and cur ~= ARGV[1] and redis.call('EXISTS', lease_key(cur)) == 1",
    replace: "local held = false",
    tests: ["tests/presence_redis_test.ts", "tests/cluster_test.ts"],
  },
  // ---- the same promises in Redis Cluster mode (src/presence/redis/cluster_topology.ts)
  {
    name: "cluster-mode-reserve-without-own-lease",
    why: "in Redis Cluster mode a reservation no longer requires the node's own lease",
    find: 'if ((await this.#conns.cmd.hget(this.#leaseKey, "fence")) !== fence) {',
    replace: "if (false) {",
    tests: ["tests/presence_cluster_test.ts"],
  },
  {
    name: "cluster-mode-takes-live-pseudos",
    why: "in Redis Cluster mode a node takes over (or takes back) a pseudo a live node holds",
    find: "if (await this.#alive(cur)) return false;",
    replace: "",
    tests: ["tests/presence_cluster_test.ts"],
  },
  // ---- the product bug issue 13 found
  {
    name: "aborts-after-release",
    why: "a leaving user's handshakes are aborted after its pseudo is released, so the " +
      "TCPAborts meant for it reach the pseudo's next holder",
    find: "for (const k of this.#hsMade?.takeAll() ?? []) {\n" +
      "      await aborts.abort(k, `${pseudo} left`, { except: pseudo });\n" +
      "    }\n" +
      "    try {\n" +
      "      // While draining, the store was closed and released everyone already: this is local only.\n" +
      "      await users.logout(pseudo, this, this.#d);\n" +
      "    } catch (e) {\n" +
      '      log.warn("could not release pseudo", { pseudo, error: errorMessage(e) });\n' +
      "    }",
    replace: "try {\n" +
      "      await users.logout(pseudo, this, this.#d);\n" +
      "    } catch (e) {\n" +
      '      log.warn("could not release pseudo", { pseudo, error: errorMessage(e) });\n' +
      "    }\n" +
      "    for (const k of this.#hsMade?.takeAll() ?? []) {\n" +
      "      await aborts.abort(k, `${pseudo} left`);\n" +
      "    }",
    tests: ["tests/handshake_release_test.ts"],
  },
  // ---- more, one per promise the new tests cover
  {
    name: "drain-skips-queued-output",
    why: "SIGTERM closes connections without letting acknowledged output reach its readers",
    find: "if (drainMs > 0) await drainOutput(outbound, drainMs, log);",
    replace: "",
    tests: ["tests/ops_test.ts"],
  },
  {
    name: "readyz-ready-while-draining",
    why: "/readyz still answers 200 while the node drains",
    find: 'if (view.draining()) return { ready: false, reason: "draining" };',
    replace: "",
    tests: ["tests/ops_test.ts"],
  },
  {
    name: "spm-body-logged",
    why: "message bodies reach the logs",
    find: "if (this.#d.users.send(to, bytes)) return this.#ok();",
    replace:
      'this.#d.log.debug("spm", { to, frame: new TextDecoder().decode(bytes) });\n    if (this.#d.users.send(to, bytes)) return this.#ok();',
    tests: ["tests/ops_test.ts"],
  },
  {
    name: "redis-down-sma-ok",
    why: "with Redis down, an SMA whose publish failed is answered OK",
    find: '(e) => [encodeError(this.#unavailableCode("SMA", e))]',
    replace: "() => [OK_FRAME]",
    tests: ["tests/cluster_test.ts"],
  },
  {
    name: "redis-down-cr-error-2",
    why: "with Redis down, CR is answered ERROR 2 instead of ERROR 9",
    find: 'return this.#unavailable("CR", e);',
    replace: "return this.#reply(ErrorCode.PseudoUnavailable);",
    tests: ["tests/cluster_test.ts"],
  },
  {
    name: "redis-down-tcpask-error-4",
    why: "with Redis down, TCPAsk is answered ERROR 4 instead of ERROR 9",
    find: 'encodeError(this.#unavailableCode("TCPAsk", e))',
    replace: "encodeError(ErrorCode.UnreachableUser)",
    tests: ["tests/cluster_test.ts"],
  },
  {
    name: "redis-down-link-error-6",
    why: "with Redis down, a TCPAccept/TCPConnect is answered ERROR 6 instead of ERROR 9",
    find: "await end.refuse([encodeError(ErrorCode.ServiceUnavailable), ...extra]);",
    replace: "await end.refuse([encodeError(ErrorCode.TcpNotInProtocol), ...extra]);",
    tests: ["tests/cluster_test.ts"],
  },
  {
    name: "local-delivery-needs-redis",
    why: "two users on one node cannot chat while Redis is down",
    find: "if (this.#d.users.send(to, bytes)) return this.#ok();",
    // Every SPM through the relay, as when the store delivered locally only while it was ready.
    replace: "if (false) return this.#ok();",
    tests: ["tests/cluster_test.ts"],
  },
  {
    name: "lost-pseudo-not-evicted",
    why: "a local session whose pseudo another live node took during an outage stays connected",
    find: 'this.#users.get(pseudo)?.evict("pseudo taken by another node during a Redis outage");',
    replace: "void pseudo;",
    tests: ["tests/cluster_test.ts"],
  },
  {
    name: "answered-asks-still-count",
    why: "an ask B has accepted still counts toward the pending-asks limit",
    find: "if (asked) asked.answered = true;",
    replace: "",
    tests: E2E,
  },
  {
    name: "eof-not-propagated",
    why: "one end's EOF never reaches the other end",
    find: "await peer.conn.closeWrite();",
    replace: "",
    tests: ["tests/link_end_test.ts", ...E2E],
  },
  {
    name: "reset-not-propagated",
    why: "a reset on one end leaves the other end open",
    find:
      "// A reset or a write to a closed peer: the link is over either way.\n      return this.#closeBoth();",
    replace: "return;",
    tests: E2E,
  },
  {
    name: "prune-skips-dead-nodes",
    why: "a dead node's users set, user keys and id are never pruned",
    find: "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end",
    replace: "do return -1 end",
    tests: ["tests/presence_redis_test.ts"],
  },
  {
    name: "prune-deletes-keys-others-hold",
    why: "pruning a dead node deletes user keys another node has taken over since",
    find: "for _, p in ipairs(ps) do\n  local uk = user_key(p)\n" +
      "  if redis.call('GET', uk) == ARGV[1] then",
    replace: "for _, p in ipairs(ps) do\n  local uk = user_key(p)\n  do",
    tests: ["tests/presence_redis_test.ts"],
  },
  {
    name: "bridge-token-reusable",
    why: "a replayed bridge greeting joins the parked end again (a token is not used up)",
    find: "this.#parked.delete(token);",
    replace: "",
    tests: ["tests/bridge_test.ts"],
  },
  {
    name: "slow-reader-unbounded",
    why: "a client that never reads is never dropped; its queue grows without bound",
    find: "if (cost <= this.#max && !overNode) {",
    replace: "if (!overNode) {",
    tests: ["tests/outbound_test.ts", "tests/server_robustness_test.ts"],
  },
  {
    name: "node-output-bound-ignored",
    why:
      "the node-wide bound on queued output is gone: many slow readers together grow without bound",
    find: "if (cost <= this.#max && !overNode) {",
    replace: "if (cost <= this.#max) {",
    tests: ["tests/outbound_test.ts"],
  },
  {
    name: "login-timeout-hits-logged-in",
    why: "the login timeout also closes connections that did log in",
    find: "if (this.#session?.pseudo == null && !this.#handedOver) {",
    replace: "if (!this.#handedOver) {",
    tests: ["tests/server_robustness_test.ts"],
  },
  {
    name: "drain-deadline-ignored",
    why: "SIGTERM waits far past --drain-timeout-ms for a reader that never reads",
    find: 'await withDeadline(all, ms, () => new Error("drain deadline"))',
    replace: 'await withDeadline(all, ms * 100, () => new Error("drain deadline"))',
    tests: ["tests/ops_test.ts"],
  },
  {
    name: "second-signal-ignored",
    why: "a second SIGTERM during the drain does not exit at once",
    find: 'log.warn("second signal: exiting at once", { signal: sig });\n      Deno.exit(1);',
    replace: 'log.warn("second signal: exiting at once", { signal: sig });\n      return;',
    tests: ["tests/ops_test.ts"],
  },
  {
    name: "link-buffer-unbounded",
    why: "a private end waiting for its peer is read without bound",
    find: "if (!this.#peer && this.#pendingBytes >= this.#limit) {",
    replace: "if (false) {",
    tests: ["tests/link_end_test.ts", "tests/server_e2e_test.ts"],
  },
  // ---- issue 10: real addresses, the guessing rule, names
  {
    name: "foreign-link-frames-admitted",
    why:
      "a private-end frame from a stranger's address reaches (and can take or strike) the handshake",
    find: 'if (judgeAttempt({ role, from: address, owner }) === "owner") return null;',
    replace: "return null;",
    tests: E2E,
  },
  {
    name: "names-held-by-display-form",
    why: "a name is reserved as typed, so lookalikes (Alice, Cyrillic а, fullwidth) log in",
    find: "keys: name.keys,",
    replace: "keys: [name.display],",
    tests: E2E,
  },
  {
    name: "proxy-header-source-ignored",
    why: "behind a balancer every client has the balancer's address",
    find: "? canonicalAddress(r.header.source.address)",
    replace: "? peer",
    tests: ["tests/proxy_e2e_test.ts", "tests/client_address_test.ts"],
  },
  {
    name: "proxy-header-optional",
    why: "a trusted peer's connection without a PROXY header is served as the balancer",
    find: 'if (r.status === "invalid") return refuse(peer, `bad PROXY header: ${r.reason}`);',
    replace:
      'if (r.status === "invalid") return { ok: true, address: peer, initial: buf.slice(0, n) };',
    tests: ["tests/proxy_e2e_test.ts", "tests/client_address_test.ts"],
  },
  {
    name: "fanout-counts-local-only",
    why: "an SMA costs its sender only the users of its own node, not the cluster's",
    find: "fanOut: () => Math.max(1, users.size + relay.remoteUsers - 1),",
    replace: "fanOut: () => Math.max(1, users.size - 1),",
    tests: ["tests/flood_fanout_test.ts"],
  },
  {
    name: "relay-batch-charged-whole",
    why: "a large frame viewing a Redis relay batch is kept as a view, charged the whole batch",
    find: "if (!ownsItsBuffer(bytes)) bytes = bytes.slice();",
    replace: "",
    tests: ["tests/outbound_test.ts"],
  },
  {
    name: "stale-offers-kept",
    why: "offers nobody ends are never swept: a long session keeps every one",
    find: "for (const [i, o] of invited) if (o.until <= now) invited.delete(i);",
    replace: "",
    tests: ["tests/handshake_book_test.ts"],
  },
  {
    name: "admin-write-unbounded",
    why: "the admin deadline covers reading the request only, not writing the reply",
    find: "return withDeadline(exchange(conn, view), deadlineMs, () => {",
    replace: "return withDeadline(exchange(conn, view), 1e9, () => {",
    tests: ["tests/admin_test.ts"],
  },
  {
    name: "proxy-pending-outside-budget",
    why: "a connection still sending its PROXY header holds no descriptor lease",
    find: 'const waiting = this.#d.budget.tryAcquire("chat");',
    replace: "const waiting = { release() {} };",
    tests: ["tests/proxy_budget_test.ts", "tests/accept_test.ts"],
  },
  {
    name: "cluster-ready-ignores-primaries",
    why: "on Redis Cluster a node reports ready while its socket to a primary is closed",
    find: 'this.sub.status === "ready" && this.shardsReady;',
    replace: 'this.sub.status === "ready";',
    tests: ["tests/presence_cluster_test.ts"],
  },
  {
    name: "cluster-failover-keeps-slot-map",
    why: "after a Redis Cluster failover a node reports ready before it read the new slot map, " +
      "so its first publish to the shard that moved fails",
    find: "conns.slotsMoved();",
    replace: "",
    tests: ["tests/presence_cluster_test.ts"],
  },
  {
    name: "census-ignores-other-nodes",
    why: "the Redis relay's count of the other nodes' users stays 0",
    find: "return this.#d.census.others;",
    replace: "return 0;",
    tests: ["tests/flood_fanout_test.ts", "tests/presence_redis_test.ts"],
  },
  // ---- issue 20: nothing of a user outlives it in Redis
  {
    name: "cluster-release-user-key-first",
    why: "on Redis Cluster a release gives back the user key first, so another node can take the " +
      "pseudo and write its profile before the release's profile DEL lands: the new holder's " +
      "name keys are then listed nowhere and stay in Redis for good (the e2e flake of issue 20)",
    find: "    await this.#giveBack(namesOf(profile));\n" +
      "    await this.#conns.cmd.del(keys.profile(pseudo));\n" +
      '    await this.#conns.script("userRelease", keys.user(pseudo), this.#nodeId);',
    replace: '    await this.#conns.script("userRelease", keys.user(pseudo), this.#nodeId);\n' +
      "    await this.#giveBack(namesOf(profile));\n" +
      "    await this.#conns.cmd.del(keys.profile(pseudo));",
    tests: ["tests/presence_cluster_test.ts"],
  },
  {
    name: "cluster-reserve-overlaps-release",
    why: "on Redis Cluster a login right behind a logout of the same pseudo on one node mixes " +
      "with it: the release's steps drop the new login's name keys or profile",
    find: "const p = before.size === 0 ? op() : Promise.allSettled([...before]).then(op);",
    replace: "const p = op();",
    tests: ["tests/presence_cluster_test.ts"],
  },
  {
    name: "handshake-cancel-not-retried",
    why: "a handshake cancel that failed is never tried again: it stays until its backstop expiry",
    find: "this.#unsure.set(handshakeId(key), key);",
    replace: "",
    tests: ["tests/presence_redis_test.ts"],
  },
  {
    name: "ask-to-leaving-user-dropped",
    why: "an ask that reaches its recipient as it leaves, or after, stays pending (A never told)",
    find: "    users.onMissed((pseudo, frame) => this.undelivered(pseudo, frame));",
    replace: "",
    tests: ["tests/handshake_release_test.ts"],
  },
  // ---- issue 20: what a sender is told about a frame for another node is true
  {
    name: "relay-late-frames-delivered",
    why:
      "a frame that reaches its node past its deadline (its sender was told ERROR 9) is delivered",
    find: "if (now > e.deadline) {",
    replace: "if (false) {",
    tests: ["tests/relay_truth_test.ts"],
  },
  {
    name: "relay-late-broadcasts-delivered",
    why:
      "a broadcast that reaches a node past its deadline (its sender was told ERROR 9) is delivered",
    find: "if (m.deadline + MARGIN_MS < Date.now()) {",
    replace: "if (false) {",
    tests: ["tests/relay_truth_test.ts"],
  },
  {
    name: "relay-receiver-count-ignored",
    why: "a frame nobody received on the user's channel (the user left) is acked OK",
    find: "if (receivers === 0) {",
    replace: "if (false) {",
    tests: ["tests/presence_redis_test.ts"],
  },
  {
    name: "relay-delivers-without-vouching",
    why: "a node past its lease delivers frames to users another node may have taken over",
    find: "if (!voucher.vouching) return this.#hold(e);",
    replace: "",
    tests: ["tests/presence_redis_test.ts"],
  },
];
