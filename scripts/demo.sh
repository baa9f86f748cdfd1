#!/usr/bin/env bash
# The README's first command (make demo): pruning half of a real training set, three ways. MiniLM
# (models/minilm, pretrained) is fine-tuned with a fresh head on the first 3,000 Rotten Tomatoes training
# reviews (2 epochs, lr 5e-5, batch 16, max length 64, 4 checkpoints); every review is scored; half
# is kept, within each label, by the recommended setting (the fewest forgetting events, top-k, ties broken
# by the highest variability of p_y over training: the default of winnow experiment), by the seed paper's VoG
# setting (keep the hardest, top-k) and at random; each half is retrained with seeds 0 and 1 from the
# same initialisation and evaluated on the 2,562 held-out reviews; the full-data row is the scoring run itself
# (--full-seeds 1). One chart and one table in OUT/report.html. 10.7 minutes on 2 cores after the release build
# (batch 16: 1,500 reviews in batches of 32 left a retraining at the majority class). Rerun to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/demo}
W=${W:-.build/release/winnow}
RT=data/rotten-tomatoes
[ -f $RT/train-3k.jsonl ] || { head -n 3000 $RT/train.jsonl > $RT/train-3k.jsonl.tmp; mv $RT/train-3k.jsonl.tmp $RT/train-3k.jsonl; }
$W experiment --train $RT/train-3k.jsonl --test $RT/test.jsonl --init models/minilm \
    --epochs 2 --lr 5e-5 --batch-size 16 --max-length 64 --score-checkpoints 4 \
    --settings forgetting:easy:top+cartography.variability:hard,vog:hard:top --keep 1.0,0.5 --seeds 2 --full-seeds 1 --out "$OUT"
echo "demo: scores in $OUT/scores/, pruned sets in $OUT/subsets/, scoring run in $OUT/full/"
echo "demo: open $OUT/report.html (scripts/render-report.sh $OUT/report.html renders it to PNG)"
