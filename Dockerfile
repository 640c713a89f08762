# A ChatOS node. Built by docker-compose.yml; runs the same `deno task serve`
# code with its configuration from the environment (see README, Configuration).
FROM denoland/deno:2.9.6

WORKDIR /app
COPY deno.json deno.lock ./
COPY src ./src
# Fetch npm:ioredis at build time, so a node starts without the network.
RUN deno cache src/server/main.ts src/presence/redis.ts src/ops/presence.ts

USER deno
# 7777 clients, 7778 node-to-node link bridges, 9090 admin HTTP (/metrics, /healthz, /readyz)
EXPOSE 7777 7778 9090
# -A: Deno reads /proc/self/limits (the descriptor budget's default) only with --allow-all.
# --v8-flags: the young generation's cap (src/ops/node_command.ts says why).
ENTRYPOINT ["deno", "run", "-A", "--v8-flags=--max-semi-space-size=8", "src/server/main.ts"]
