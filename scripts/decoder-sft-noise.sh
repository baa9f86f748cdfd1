#!/usr/bin/env bash
# README's "Flipped answers in instruction data": SmolLM2-135M fine-tuned with a LoRA adapter on Rotten
# Tomatoes as prompt/completion pairs (scripts/data/to_prompts.py; the first N training reviews, default
# 600), 20 % of the answers flipped (fresh <-> rotten, seeded), then every pair scored with the adapter:
# completion loss, and self-influence over the adapter (--params lora) and over the last decoder layer.
# Prints the AUROC of each score for the flipped pairs, and the base model's completion loss as the
# before-training baseline. Rerun to reuse finished steps.
#
# Usage: scripts/decoder-sft-noise.sh [OUT] [N]   (default runs/decoder-sft-noise 600)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-.build/release/winnow}
OUT=${1:-runs/decoder-sft-noise}
N=${2:-600}
MODEL=models/smollm2
[ -f data/rotten-tomatoes/train.jsonl ] || { echo "decoder-sft-noise: run scripts/fetch-data.sh first" >&2; exit 1; }
mkdir -p "$OUT"
DATA=$OUT/train.jsonl
if [ ! -f "$DATA" ]; then
    python3 scripts/data/to_prompts.py data/rotten-tomatoes/train.jsonl "$OUT/clean.jsonl" --limit "$N"
    python3 - "$OUT/clean.jsonl" "$DATA" <<'PY'
import json, random, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rng = random.Random(0)
flip = sorted(rng.sample(range(len(rows)), round(0.2 * len(rows))))
for i in flip:
    new = "rotten" if rows[i]["label"] == "fresh" else "fresh"
    rows[i]["completion"] = " " + new
open(sys.argv[2], "w").write("".join(json.dumps(r) + "\n" for r in rows))
open(sys.argv[2] + ".lines.csv", "w").write("line,kind\n" + "".join(f"{i + 1},flipped\n" for i in flip))
print(f"decoder-sft-noise: {len(flip)} of {len(rows)} answers flipped -> {sys.argv[2]}")
PY
fi
[ -f "$OUT/sft/adapter_model.safetensors" ] || $W train --init $MODEL --data "$DATA" --lora-rank 8 --lora-targets q_proj,v_proj \
    --epochs 2 --batch-size 8 --max-length 96 --checkpoints 1 --out "$OUT/sft" $([ -d "$OUT/sft" ] && echo --resume)
score() {   # score NAME RUN METHOD [ARGS...]
    local name=$1 run=$2; shift 2
    [ -f "$OUT/$name.csv" ] || $W score "$@" --run "$run" --data "$DATA" --max-length 96 --batch-size 8 --out "$OUT/$name.csv"
}
score base-loss $MODEL loss
score loss "$OUT/sft" loss
score si-lora "$OUT/sft" tracin --params lora
score si-last-layer "$OUT/sft" tracin --params last-layer
python3 scripts/data/score_auroc.py "$DATA.lines.csv" "completion loss, base model=$OUT/base-loss.csv" \
    "completion loss, fine-tuned=$OUT/loss.csv" "self-influence, LoRA adapter=$OUT/si-lora.csv" \
    "self-influence, last decoder layer=$OUT/si-last-layer.csv" --markdown
