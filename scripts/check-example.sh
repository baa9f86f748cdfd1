#!/usr/bin/env bash
# Builds Examples/EmbedWinnow (a separate package that uses only Winnow's public API) and checks that
# its output equals `winnow score`'s byte for byte, for every method that needs no extra input, on the
# tiny fixture run. Needs the winnow debug build (`make build`: `swift build -Xcc -O2`). Prints "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
if ! swift build --package-path Examples/EmbedWinnow -Xcc -O2 >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "example: building Examples/EmbedWinnow failed" >&2; exit 1
fi
tail -n 1 "$log"; rm -f "$log"
embed=Examples/EmbedWinnow/.build/debug/embed-winnow
winnow=.build/debug/winnow
data=Tests/Fixtures/tiny-bert/train.jsonl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A small run trained by winnow (checkpoints and dynamics, so every method applies).
run=$tmp/run
"$winnow" train --data "$data" --vocab Tests/Fixtures/tiny-bert/run/vocab.txt --layers 1 --hidden 32 --heads 2 --epochs 2 \
    --batch-size 16 --lr 1e-3 --max-length 32 --checkpoints 3 --out "$run" >/dev/null 2>&1
pass=0; fail=0
for method in vog el2n grand loss margin forgetting cartography aum tracin; do
    # The dynamics scores make no model pass: they take no --max-length.
    case $method in forgetting|cartography|aum) len=() ;; *) len=(--max-length 32) ;; esac
    "$winnow" score "$method" --run "$run" --data "$data" "${len[@]}" --out "$tmp/cli-$method.csv" 2>/dev/null
    "$embed" --run "$run" --data "$data" --method "$method" --max-length 32 --out "$tmp/embed-$method.csv" >/dev/null
    if cmp -s "$tmp/cli-$method.csv" "$tmp/embed-$method.csv"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); echo "example: $method: embed-winnow's output differs from winnow score's" >&2
    fi
done
# The library's pruning writes what `winnow prune` writes.
"$embed" --run "$run" --data "$data" --method el2n --max-length 32 --out "$tmp/e.csv" --keep 0.5 --pruned "$tmp/embed-kept.jsonl" >/dev/null
"$winnow" prune --scores "$tmp/e.csv" --data "$data" --keep 0.5 --select easy --out "$tmp/cli-kept.jsonl" >/dev/null 2>&1
if cmp -s "$tmp/cli-kept.jsonl" "$tmp/embed-kept.jsonl"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "example: pruned files differ" >&2; fi
echo "example: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
