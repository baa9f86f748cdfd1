#!/usr/bin/env bash
# The experiments behind README's results (2 cores, about 50 minutes in all). Each writes
# runs/paper/NAME/{results.csv,report.html}; rerun to resume. Usage: scripts/paper-experiments.sh [NAME...]
# with NAME among rt, rt-sampling, crowdflower, rt-noise (default: all, in that order).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-.build/release/winnow}
OUT=${OUT:-runs/paper}
RT=data/rotten-tomatoes
CF=data/crowdflower
# A small encoder trained from scratch (2 layers x 128, bert-base-uncased vocabulary), 2 epochs; one
# selection over all examples (README's tables were made before per-label selection became the default).
MODEL=(--vocab models/minilm/vocab.txt --layers 2 --hidden 128 --heads 2 --max-length 64 --epochs 2 --batch-size 32 --lr 1e-3 --no-per-label)
run() {
    case $1 in
    rt)           # every score vs random, hardest and easiest kept, dataset-normalised top-k
        $W experiment --train $RT/train.jsonl --test $RT/test.jsonl "${MODEL[@]}" \
            --methods vog,el2n,grand,forgetting,pvi,tracin --select hard,easy --normalize dataset \
            --keep 1.0,0.5 --seeds 2 --out $OUT/rt ;;
    crowdflower)  # 3 imbalanced classes: class vs dataset normalisation (12,000 training examples)
        $W experiment --train $CF/train-12k.jsonl --test $CF/test.jsonl "${MODEL[@]}" \
            --methods vog,el2n,forgetting --select easy --normalize dataset,class \
            --keep 1.0,0.5 --seeds 2 --out $OUT/crowdflower ;;
    rt-noise)     # 20 % of labels flipped: keep the easiest 80 % (prune the hardest) vs random
        $W experiment --train $RT/train.jsonl --test $RT/test.jsonl "${MODEL[@]}" --noise 0.2 \
            --methods el2n,forgetting,vog,pvi --select easy --keep 1.0,0.8 --seeds 2 --out $OUT/rt-noise ;;
    rt-sampling)  # keeping the hardest half with top-k, softmax, linear and stratified sampling
        $W experiment --train $RT/train.jsonl --test $RT/test.jsonl "${MODEL[@]}" \
            --methods el2n --select hard --sampling top,softmax,linear,stratified \
            --keep 1.0,0.5 --seeds 2 --out $OUT/rt-sampling ;;
    *) echo "unknown experiment $1" >&2; exit 2 ;;
    esac
}
for name in "${@:-rt rt-sampling crowdflower rt-noise}"; do
    for n in $name; do run "$n"; done
done
