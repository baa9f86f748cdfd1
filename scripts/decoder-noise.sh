#!/usr/bin/env bash
# README's "Junk in a corpus, seen by a pretrained decoder": 600 Austen paragraphs of 8-40 words, 20 % of
# them replaced by noise (random letters, shuffled words, repetitive pseudo-German; scripts/data/noisy_corpus.py,
# seed 0), scored with SmolLM2-135M: per-line mean next-token loss, and self-influence ||d loss / d theta||^2
# over the first decoder layer, the last one and all parameters. Prints the AUROC of each score for the
# noisy lines (scripts/data/score_auroc.py). About 15 minutes on 2 cores. Rerun to reuse finished scores.
#
# Usage: scripts/decoder-noise.sh [OUT]   (default runs/decoder-noise)
# The corpus's shape comes from LINES (600), MIN_WORDS (8), MAX_WORDS (40) and SEED (0) in the
# environment, e.g. LINES=623 MIN_WORDS=4 MAX_WORDS=1000 SEED=1 for lines like the issue's reference corpus;
# GERMAN_WORDS=8-12 makes each pseudo-German line 8-12 words long instead of the replaced line's length.
# SOURCE (default data/austen/corpus.txt, one paragraph a line) names another text, e.g. the printed lines
# of Sense and Sensibility: python3 scripts/data/austen.py printed --rdata \
#   /usr/lib/R/site-library/janeaustenr/data/Rdata --out data/austen/printed-sense.txt
# With LENGTH_NEUTRAL=1, also self-influence times each line's target-token count (`winnow score --length-neutral`).
# With REF=/path/to/python (torch, transformers, gguf, accelerate), also runs the PyTorch reference
# (scripts/reference/decoder_scores_torch.py) on the same lines and prints its AUROCs beside Winnow's.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-.build/release/winnow}
OUT=${1:-runs/decoder-noise}
MODEL=models/smollm2
SOURCE=${SOURCE:-data/austen/corpus.txt}
[ -f "$SOURCE" ] || { echo "decoder-noise: $SOURCE missing; run scripts/fetch-data.sh austen first" >&2; exit 1; }
ls $MODEL/*.gguf >/dev/null 2>&1 || { echo "decoder-noise: run scripts/fetch-pretrained.sh smollm2 first" >&2; exit 1; }
mkdir -p "$OUT"
CORPUS=$OUT/corpus.jsonl
[ -f "$CORPUS" ] || python3 scripts/data/noisy_corpus.py "$SOURCE" "$CORPUS" --fraction 0.2 --seed "${SEED:-0}" \
    --kinds letters,shuffled,pseudo-german --max-lines "${LINES:-600}" --min-words "${MIN_WORDS:-8}" --max-words "${MAX_WORDS:-40}" \
    ${GERMAN_WORDS:+--german-words "$GERMAN_WORDS"} --jsonl
score() {   # score NAME METHOD [ARGS...]
    local name=$1; shift
    [ -f "$OUT/$name.csv" ] || $W score "$@" --run $MODEL --data "$CORPUS" --max-length 128 --batch-size 8 --out "$OUT/$name.csv"
}
score loss loss
score si-first-layer tracin --params first-layer
score si-last-layer tracin --params last-layer
score si-all tracin --params all
ARGS=("loss (perplexity filter)=$OUT/loss.csv" "SI, first decoder layer=$OUT/si-first-layer.csv"
      "SI, last decoder layer=$OUT/si-last-layer.csv" "SI, all parameters=$OUT/si-all.csv")
echo "Winnow, SmolLM2-135M on $CORPUS:"
python3 scripts/data/score_auroc.py "$CORPUS.lines.csv" "${ARGS[@]}" --markdown
if [ -n "${LENGTH_NEUTRAL:-}" ]; then   # self-influence times each line's target tokens (winnow score --length-neutral)
    score si-first-layer-ln tracin --params first-layer --length-neutral
    score si-last-layer-ln tracin --params last-layer --length-neutral
    score si-all-ln tracin --params all --length-neutral
    echo "Length-neutral self-influence (--length-neutral):"
    python3 scripts/data/score_auroc.py "$CORPUS.lines.csv" "SI x tokens, first decoder layer=$OUT/si-first-layer-ln.csv" \
        "SI x tokens, last decoder layer=$OUT/si-last-layer-ln.csv" "SI x tokens, all parameters=$OUT/si-all-ln.csv" --markdown
fi
if [ -n "${REF:-}" ]; then
    "$REF" scripts/reference/decoder_scores_torch.py $MODEL "$CORPUS" "$OUT" --max-length 128
    echo "PyTorch reference on the same lines:"
    python3 scripts/data/score_auroc.py "$CORPUS.lines.csv" "loss=$OUT/torch-loss.csv" "SI first=$OUT/torch-si-first-layer.csv" \
        "SI last=$OUT/torch-si-last-layer.csv" "SI all=$OUT/torch-si-all.csv" --markdown
fi
