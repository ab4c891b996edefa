# syntax=docker/dockerfile:1.7
# The one drugsync image for every ECS task (binlog-reader, backfill, verify, resync, embedder): the esbuild
# bundle of the CLI with production dependencies only, on the official Node 22 LTS image. Build, push and
# the digest pin: docs/image.md. Contract with the task definitions (infra/):
#   ENTRYPOINT node /app/dist/drugsync.mjs; the task passes only the command, e.g. ["verify","--json"]
#   user node (uid 1000); read-only root filesystem, writable /tmp (DRUGSYNC_STATE_DIR=/tmp/drugsync)
#   RDS CA bundle at /app/certs/rds-global-bundle.pem (DB_TLS=true, DB_TLS_CA_FILE=that path)
# Two builds of one commit with the same arguments use the same bytes: the base by digest, the dependencies
# by the lock file, the RDS CA bundle by its sha256.

# The Node 22 base. A release build (RELEASE=true, the default) must name it by digest, and is refused otherwise:
#   --build-arg NODE_IMAGE=node:22.20.0-bookworm-slim@sha256:<digest>   (docs/image.md says how to get it)
# A local build on a tag says so with --build-arg RELEASE=false (scripts/image.sh builds without Docker Hub).
ARG NODE_IMAGE=node:22.20.0-bookworm-slim
ARG RELEASE=true

# ---- base: the Node image, checked to be pinned by digest for a release build; every stage starts here
FROM ${NODE_IMAGE} AS base
ARG NODE_IMAGE
ARG RELEASE
RUN node -e " \
  const [release, image] = process.argv.slice(1); \
  if (release !== 'true' && release !== 'false') { console.error('RELEASE must be true or false, not ' + release); process.exit(1); } \
  if (release === 'true' && !/@sha256:[0-9a-f]{64}$/.test(image)) { \
    console.error('NODE_IMAGE=' + image + ' is not pinned by digest: a release build needs --build-arg NODE_IMAGE=<image>:<tag>@sha256:<digest> (docs/image.md, The digest pin), or --build-arg RELEASE=false for a local build'); \
    process.exit(1); } \
  console.log('base ' + image + (release === 'true' ? ' (release, pinned by digest)' : ' (local build)'));" "$RELEASE" "$NODE_IMAGE"

# ---- build: every dependency, then the bundle (dist/drugsync.mjs + source map)
FROM base AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.ts ./scripts/
COPY services ./services
RUN npm run build

# ---- deps: production dependencies only, from the lock file. No optional ones: onnxruntime-node and the
# tokenizer serve only the local MiniLM embedder (docs/embeddings.md); test/bundle.test.ts runs this command.
FROM base AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# (npm leaves an empty directory for each scope it omitted: removed)
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force \
  && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete

# ---- certs: the Amazon RDS CA bundle (every region), pinned by its sha256 and checked to be RDS CA certificates
FROM base AS certs
ADD --checksum=sha256:e5bb2084ccf45087bda1c9bffdea0eb15ee67f0b91646106e466714f9de3c7e3 --chmod=0444 \
  https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /certs/rds-global-bundle.pem
RUN node -e " \
  const fs = require('node:fs'); const { X509Certificate } = require('node:crypto'); \
  const pem = fs.readFileSync('/certs/rds-global-bundle.pem', 'utf8'); \
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []; \
  const rds = certs.map((c) => new X509Certificate(c)).filter((c) => c.ca && /Amazon RDS/.test(c.subject)); \
  if (certs.length === 0 || rds.length !== certs.length) { console.error('not an RDS CA bundle'); process.exit(1); } \
  console.log(rds.length + ' RDS CA certificates');"

# ---- runtime
FROM base AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    DRUGSYNC_STATE_DIR=/tmp/drugsync
WORKDIR /app
# owned by root, read-only for the node user: the task cannot change its own code
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/package.json ./package.json
COPY --from=build /src/dist ./dist
COPY --from=certs /certs/rds-global-bundle.pem ./certs/rds-global-bundle.pem
# the base image's `node` user, numeric so that a runtime can tell it is not root without /etc/passwd
USER 1000:1000
# the only writable place with a read-only root filesystem (ECS: a task volume mounted here)
VOLUME ["/tmp"]
# Node runs as PID 1 under `docker run`; the commands handle SIGTERM themselves (the reader publishes what it
# holds, checkpoints and exits 0). ECS task definitions enable the init process (initProcessEnabled), which
# forwards signals and reaps children; locally use `docker run --init`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/drugsync.mjs"]
CMD ["--help"]
