#!/usr/bin/env bash
# README's "PRESENCE on a pretrained decoder" (issue 23): continued pre-training of SmolLM2-135M (a LoRA
# adapter, r 8 on every projection, lr 1e-3) on 2,000 Austen paragraphs of 6-60 words, 20 % of them
# replaced by noise (random letters, shuffled words, repetitive pseudo-German: scripts/data/noisy_corpus.py,
# seed 0). Each variant runs STEPS steps of 16 windows of at most 64 tokens with per-sample weights
# (--microbatch-size 1), for seeds 0..SEEDS-1, and is evaluated on the first 200 clean held-out
# paragraphs (data/austen/heldout.txt):
#   plain          plain training (SI over the last layer logged, not used)
#   presence-first PRESENCE as the paper: tau 1 for the first half, then -1; SI over the first decoder layer
#   presence-last  the same with SI over the last decoder layer
#   inverse-last   tau -1 throughout (the paper's tau2-only ablation), SI over the last layer
# Prints mean ± sample std of the held-out loss, the share of the weight mass the noisy lines received
# (plain: their share of the samples), the mean weight entropy, and the AUROC of per-sample SI for the
# noisy lines over the whole run, per variant. Rerun to resume: finished runs are skipped. Each run takes
# about 5 minutes on 2 cores (the whole grid about an hour).
#
# Usage: scripts/presence-decoder.sh [OUT]   (default runs/presence-decoder; STEPS=60 SEEDS=3 W=winnow binary)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-.build/release/winnow}
OUT=${1:-runs/presence-decoder}
STEPS=${STEPS:-60}
SEEDS=${SEEDS:-3}
MODEL=models/smollm2
[ -f data/austen/corpus.txt ] || { echo "presence-decoder: run scripts/fetch-data.sh austen first" >&2; exit 1; }
ls $MODEL/*.gguf >/dev/null 2>&1 || { echo "presence-decoder: run scripts/fetch-pretrained.sh smollm2 first" >&2; exit 1; }
mkdir -p "$OUT"
CORPUS=$OUT/noisy.txt
[ -f "$CORPUS" ] || python3 scripts/data/noisy_corpus.py data/austen/corpus.txt "$CORPUS" --fraction 0.2 --seed 0 \
    --kinds letters,shuffled,pseudo-german --max-lines 2000 --min-words 6 --max-words 60
HELDOUT=$OUT/heldout.txt
[ -f "$HELDOUT" ] || { head -n 200 data/austen/heldout.txt > "$HELDOUT.tmp"; mv "$HELDOUT.tmp" "$HELDOUT"; }

VARIANTS=(
    "plain --reweight none --si-params last-layer"
    "presence-first --reweight presence --si-params first-layer"
    "presence-last --reweight presence --si-params last-layer"
    "inverse-last --reweight presence --si-params last-layer --tau1=-1 --tau2=-1"
)
for seed in $(seq 0 $((SEEDS - 1))); do
    for v in "${VARIANTS[@]}"; do
        read -r name args <<< "$v"
        run=$OUT/$name-s$seed
        [ -f "$run/heldout.json" ] && continue
        # shellcheck disable=SC2086
        $W pretrain --init $MODEL --corpus "$CORPUS" --heldout "$HELDOUT" --seq-len 64 --batch-size 16 --steps "$STEPS" \
            --checkpoints 2 --microbatch-size 1 --lora-rank 8 --lora-targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
            --lr 1e-3 --seed "$seed" $args --si-log "$run.si-log.csv" --out "$run" $([ -d "$run" ] && echo --resume)
    done
done

python3 - "$OUT" "$SEEDS" <<'EOF'
import csv, json, statistics, sys
out, seeds = sys.argv[1], int(sys.argv[2])
noisy = {int(r["line"]) for r in csv.DictReader(open(f"{out}/noisy.txt.lines.csv"))}

def auroc(pos, neg):
    # Mann-Whitney U with ties counted half.
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank, i, sum_pos = 0.0, 0, 0.0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        r = (i + 1 + j) / 2
        sum_pos += r * sum(1 for k in range(i, j) if allv[k][1])
        i = j
    return (sum_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))

def ms(xs, fmt):
    return (fmt % statistics.mean(xs)) + (" ± " + fmt % statistics.stdev(xs) if len(xs) > 1 else "")

print(f"{'variant':16s} {'held-out loss':>16s} {'noise weight share':>20s} {'weight entropy':>15s} {'SI AUROC (noisy)':>17s}  seeds")
for name in ["plain", "presence-first", "presence-last", "inverse-last"]:
    loss, share, ent, au = [], [], [], []
    for s in range(seeds):
        run = f"{out}/{name}-s{s}"
        try:
            loss.append(json.load(open(f"{run}/heldout.json"))["loss"])
        except FileNotFoundError:
            continue
        rows = list(csv.DictReader(open(f"{run}.si-log.csv")))
        w = [float(r["weight"]) for r in rows]
        total = sum(w)
        share.append(sum(x for r, x in zip(rows, w) if int(r["line"]) in noisy) / total)
        hist = json.load(open(f"{run}/trainer_state.json"))["log_history"]
        e = [h["weight_entropy"] for h in hist if "weight_entropy" in h]
        ent.append(statistics.mean(e) if e else float("nan"))
        si_pos = [float(r["si"]) for r in rows if int(r["line"]) in noisy]
        si_neg = [float(r["si"]) for r in rows if int(r["line"]) not in noisy]
        au.append(auroc(si_pos, si_neg))
    if loss:
        print(f"{name:16s} {ms(loss, '%.4f'):>16s} {ms(share, '%.3f'):>20s} {ms(ent, '%.3f'):>15s} {ms(au, '%.3f'):>17s}  {len(loss)}")
EOF
