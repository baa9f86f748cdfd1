#!/usr/bin/env bash
# The README's first command (make demo): train a small encoder from scratch on Rotten Tomatoes
# and evaluate it on the held-out 20%.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/demo}
W=.build/release/winnow
$W train --data data/rotten-tomatoes/train.jsonl --vocab models/minilm/vocab.txt --out "$RUN" \
    --layers 2 --hidden 128 --heads 2 --max-length 64 --epochs 3 --batch-size 32 --lr 1e-3 --seed 0 --checkpoints 3
$W eval --run "$RUN" --data data/rotten-tomatoes/test.jsonl --max-length 64
echo "demo: run folder in $RUN (config.json, checkpoint-*/, dynamics.safetensors)"
