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
ENTRYPOINT ["deno", "run", "-A", "src/server/main.ts"]
