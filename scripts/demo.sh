#!/usr/bin/env bash
# The README's first command (make demo): a short pruning experiment on Rotten Tomatoes. A small
# encoder trained from scratch on the full set is scored with VoG; the hardest 70 % and 50 % and random
# subsets of the same sizes are retrained with 2 seeds from the same initialisation and evaluated on the
# held-out 20 %. About 3 minutes on 2 cores after the release build. Rerun to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/demo}
W=.build/release/winnow
$W experiment --train data/rotten-tomatoes/train.jsonl --test data/rotten-tomatoes/test.jsonl \
    --vocab models/minilm/vocab.txt --layers 2 --hidden 128 --heads 2 --max-length 64 \
    --epochs 2 --batch-size 32 --lr 1e-3 --methods vog --keep 1.0,0.7,0.5 --seeds 2 --out "$OUT"
echo "demo: scores in $OUT/scores/, pruned sets in $OUT/subsets/, scoring run in $OUT/full/"
echo "demo: open $OUT/report.html (scripts/render-report.sh $OUT/report.html renders it to PNG)"
