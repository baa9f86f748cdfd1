#!/usr/bin/env bash
# PRESENCE evidence for README (2 cores). Usage: scripts/presence-evidence.sh noise|compare [SEEDS]
#   noise    5 % of Austen lines replaced by noise; plain MLM pre-training with per-sample SI logged;
#            mean SI of noisy vs clean lines and the AUROC of SI for finding them.
#   compare  plain vs PRESENCE MLM pre-training with the same step budget on Austen: held-out MLM loss,
#            then Rotten Tomatoes accuracy after fine-tuning each (seeds 0..SEEDS-1, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-.build/release/winnow}
OUT=${OUT:-runs/presence}
STEPS=${STEPS:-1000}
LM=(--vocab models/minilm/vocab.txt --layers 2 --hidden 128 --heads 2 --seq-len 64 --batch-size 32 --steps "$STEPS" --lr 1e-3)
mkdir -p "$OUT"
case ${1:?usage: presence-evidence.sh noise|compare [SEEDS]} in
noise)
    python3 scripts/data/noisy_corpus.py data/austen/corpus.txt "$OUT/austen-noisy.txt" --fraction 0.05 --seed 0
    rm -rf "$OUT/noise-run"
    $W pretrain --corpus "$OUT/austen-noisy.txt" "${LM[@]}" --microbatch-size 1 --seed 0 \
        --si-log "$OUT/noise-si.csv" --out "$OUT/noise-run"
    python3 scripts/data/si_auroc.py "$OUT/noise-si.csv" "$OUT/austen-noisy.txt.lines.csv" | tee "$OUT/noise-auroc.txt"
    python3 scripts/data/si_auroc.py "$OUT/noise-si.csv" "$OUT/austen-noisy.txt.lines.csv" --from-step $((STEPS / 2)) \
        | sed 's/^/second half: /' | tee -a "$OUT/noise-auroc.txt" ;;
compare)
    SEEDS=${2:-3}
    echo "reweight,seed,heldout_mlm_loss,rt_accuracy" > "$OUT/compare.csv"
    for seed in $(seq 0 $((SEEDS - 1))); do
        for rw in none presence; do
            run="$OUT/$rw-s$seed"
            rm -rf "$run" "$run-rt"
            $W pretrain --corpus data/austen/corpus.txt --heldout data/austen/heldout.txt "${LM[@]}" \
                --reweight $rw $([ "$rw" = presence ] && echo --microbatch-size 4 --tau1 1 --tau2=-1) --seed "$seed" --out "$run"
            $W train --init "$run" --data data/rotten-tomatoes/train.jsonl --out "$run-rt" --max-length 64 \
                --epochs 2 --batch-size 32 --lr 1e-3 --seed "$seed"
            acc=$($W eval --run "$run-rt" --data data/rotten-tomatoes/test.jsonl --max-length 64 --json \
                | python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])')
            loss=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["loss"])' "$run/heldout.json")
            echo "$rw,$seed,$loss,$acc" | tee -a "$OUT/compare.csv"
        done
    done ;;
*) echo "presence-evidence.sh: unknown part $1" >&2; exit 2 ;;
esac
