# quell: build with the full Node image, run on distroless (no shell, no package manager) as uid 65532.
#
#   docker build -t quell .
#   docker run --read-only -v quell-data:/data -v "$PWD/quell.yaml:/config/quell.yaml:ro" \
#     -e SLACK_BOT_TOKEN_SECRET_ARN -e SLACK_APP_TOKEN_SECRET_ARN -e AWS_REGION -p 3000:3000 quell
#
# The Slack tokens (and with PostgreSQL, PGPASSWORD_SECRET_ARN's password) are read from AWS Secrets
# Manager at start, with the AWS credentials of the host (instance profile, ECS task role): only their
# ARNs are in the environment, never the values, so `docker inspect` shows no secret (docs/secrets.md).
# The image writes only to /data: point storage.url at it in quell.yaml (sqlite:/data/quell.db).
# See docs/deployment.md, "Docker image".

FROM node:24-bookworm-slim AS build
WORKDIR /src
# Dependencies first, so that source edits reuse this layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# tsc to dist/ (package.json "build"), then drop the dev dependencies (TypeScript, vitest, biome).
RUN npm run build && npm prune --omit=dev --no-audit --no-fund
# The data directory, owned by the runtime user; a new named volume mounted on /data copies this
# ownership. Distroless has no shell to create it there.
RUN mkdir -p /out/data

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production \
    QUELL_CONFIG=/config/quell.yaml \
    PORT=3000
# Application files stay owned by root: the process (uid 65532) can read them but not change them.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY quell.example.yaml ./quell.example.yaml
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]
USER 65532:65532
# HTTP mode's POST /slack/events, and GET /healthz (200 when the store answers, 503 when not) in both
# modes. There is no HEALTHCHECK: distroless has no curl or shell; point the orchestrator's HTTP probe
# at /healthz instead.
EXPOSE 3000
# The distroless entrypoint is node itself; the default command starts the bot. Run the CLI with
#   docker run --rm -v quell-data:/data -v "$PWD/quell.yaml:/config/quell.yaml:ro" quell bin/quell.js audit verify
ENTRYPOINT ["/nodejs/bin/node"]
# A small young generation (1 MB semi-spaces) keeps the peak under a burst of commands near the idle
# footprint, at no measurable cost to ack latency (docs/benchmarks.md, memory).
CMD ["--max-semi-space-size=1", "dist/main.js"]
