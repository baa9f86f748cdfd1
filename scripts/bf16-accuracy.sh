#!/usr/bin/env bash
# README's bf16 accuracy table (issue 22): `--precision bf16` against F32 on real models and data.
#   SNLI:  the MiniLM run of scripts/selection-grid.sh snli (runs/snli/full) on the 9,824 official test pairs:
#          EL2N and loss scores (Spearman bf16 vs F32), predicted probabilities (largest difference),
#          and test accuracy both ways.
#   Rotten Tomatoes: a small encoder trained from scratch (2 layers x 128, 3 epochs, as "Quick start")
#          on the train split, scored and predicted on the test split; and SmolLM2's per-review loss on
#          the first 300 test reviews (a decoder's forward-only score).
# Usage: scripts/bf16-accuracy.sh [OUT]   (default runs/bf16; W=winnow binary)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-.build/release/winnow}
OUT=${1:-runs/bf16}
mkdir -p "$OUT"
[ -f runs/snli/full/trainer_state.json ] || { echo "bf16-accuracy: runs/snli/full missing; run scripts/selection-grid.sh snli first" >&2; exit 1; }
[ -f "$OUT/rt-run/trainer_state.json" ] || $W train --data data/rotten-tomatoes/train.jsonl --vocab models/minilm/vocab.txt --layers 2 --hidden 128 \
    --heads 2 --epochs 3 --max-length 64 --out "$OUT/rt-run" $([ -d "$OUT/rt-run" ] && echo --resume)
[ -f "$OUT/rt-300.jsonl" ] || head -n 300 data/rotten-tomatoes/test.jsonl > "$OUT/rt-300.jsonl"
for p in f32 bf16; do
    for m in el2n loss; do
        [ -f "$OUT/snli-$m-$p.csv" ] || $W score $m --run runs/snli/full --checkpoints last --data data/snli/test.jsonl --max-length 64 \
            --precision $p --out "$OUT/snli-$m-$p.csv"
        [ -f "$OUT/rt-$m-$p.csv" ] || $W score $m --run "$OUT/rt-run" --checkpoints last --data data/rotten-tomatoes/test.jsonl \
            --max-length 64 --precision $p --out "$OUT/rt-$m-$p.csv"
    done
    [ -f "$OUT/snli-pred-$p.csv" ] || $W predict --run runs/snli/full --data data/snli/test.jsonl --max-length 64 --precision $p --out "$OUT/snli-pred-$p.csv"
    [ -f "$OUT/rt-pred-$p.csv" ] || $W predict --run "$OUT/rt-run" --data data/rotten-tomatoes/test.jsonl --max-length 64 --precision $p --out "$OUT/rt-pred-$p.csv"
    [ -f "$OUT/smollm2-loss-$p.csv" ] || $W score loss --run models/smollm2 --data "$OUT/rt-300.jsonl" --max-length 128 --batch-size 8 \
        --precision $p --out "$OUT/smollm2-loss-$p.csv"
done

python3 - "$OUT" <<'EOF'
import csv, sys
out = sys.argv[1]

def col(path, name):
    return [float(r[name]) for r in csv.DictReader(open(path))]

def ranks(x):
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r

def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a); ma = sum(ra) / n; mb = sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5

def probs(path):
    rows = list(csv.DictReader(open(path)))
    keys = [k for k in rows[0] if k.startswith("p_")]
    return rows, [[float(r[k]) for k in keys] for r in rows]

print(f"{'model, data':42s} {'Spearman EL2N':>14s} {'Spearman loss':>14s} {'max |dp|':>9s} {'accuracy f32 / bf16':>20s}")
for name, label in [("snli", "MiniLM fine-tuned, SNLI test (9,824)"), ("rt", "2 x 128 from scratch, Rotten Tomatoes test")]:
    se = spearman(col(f"{out}/{name}-el2n-f32.csv", "score"), col(f"{out}/{name}-el2n-bf16.csv", "score"))
    sl = spearman(col(f"{out}/{name}-loss-f32.csv", "score"), col(f"{out}/{name}-loss-bf16.csv", "score"))
    rf, pf = probs(f"{out}/{name}-pred-f32.csv")
    rb, pb = probs(f"{out}/{name}-pred-bf16.csv")
    dp = max(abs(x - y) for a, b in zip(pf, pb) for x, y in zip(a, b))
    acc = lambda rows: 100 * sum(r["label"] == r["predicted"] for r in rows) / len(rows)
    print(f"{label:42s} {se:14.5f} {sl:14.5f} {dp:9.4f} {acc(rf):9.2f} / {acc(rb):.2f}")
sd = spearman(col(f"{out}/smollm2-loss-f32.csv", "score"), col(f"{out}/smollm2-loss-bf16.csv", "score"))
lf, lb = col(f"{out}/smollm2-loss-f32.csv", "score"), col(f"{out}/smollm2-loss-bf16.csv", "score")
rel = max(abs(a - b) / abs(a) for a, b in zip(lf, lb))
print(f"{'SmolLM2, 300 Rotten Tomatoes reviews':42s} {'':14s} {sd:14.5f}   (largest relative loss difference {rel:.4f})")
EOF
