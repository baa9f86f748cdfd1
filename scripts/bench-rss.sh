#!/usr/bin/env bash
# Peak memory of `winnow score` as the data set grows (issue: streaming). Generates synthetic JSONL files of
# N examples from the tiny fixture's vocabulary and scores them with the tiny 4-checkpoint run, printing
# peak RSS (GNU time's maximum resident set size) and time for each N.
# Usage: scripts/bench-rss.sh [N ...]   (default: 10000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${WINNOW:-.build/release/winnow}
RUN=Tests/Fixtures/tiny-bert/run
TMP=${TMPDIR:-/tmp}/winnow-rss
mkdir -p "$TMP"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(10000 1000000)
printf "%-9s %-8s %12s %10s\n" examples method peak_rss_MiB seconds
for n in "${sizes[@]}"; do
    f="$TMP/synthetic-$n.jsonl"
    [ -s "$f" ] || python3 - "$n" "$f" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
words = [w.strip() for w in open("Tests/Fixtures/tiny-bert/vocab.txt") if w.strip() and not w.startswith(("[", "##"))]
rng = random.Random(0)
with open(path + ".tmp", "w") as f:
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 24)))
        f.write(json.dumps({"id": f"s{i}", "text": text, "label": rng.choice(["neg", "pos"])}) + "\n")
import os; os.replace(path + ".tmp", path)
PY
    for method in el2n vog; do
        /usr/bin/time -f "%M %e" -o "$TMP/time.txt" "$W" score "$method" --run "$RUN" --data "$f" --max-length 32 \
            --batch-size 64 --out "$TMP/out.csv" 2>/dev/null
        read -r kb secs < "$TMP/time.txt"
        printf "%-9s %-8s %12.1f %10s\n" "$n" "$method" "$(echo "$kb / 1024" | bc -l)" "$secs"
    done
done
