#!/usr/bin/env bash
# The pruning grid of README ("Choosing a selection setting"): issue 21's reference table run with Winnow on a data set. MiniLM (models/minilm) fine-tuned
# with a fresh head, AdamW lr 5e-5, batch 32, max length 64, 10 % warm-up then linear decay, 2 epochs.
#   snli:            the first 20,000 pairs of data/snli/train.jsonl (already shuffled with
#                    random.Random(0) by scripts/fetch-data.sh snli), tested on the 9,824 official pairs;
#   rotten-tomatoes: data/rotten-tomatoes/{train,test}.jsonl (10,246 / 2,562 reviews);
#   crowdflower:     data/crowdflower/train-12k.jsonl and test.jsonl (12,000 / 7,632 tweets, 3 classes).
# Scores come from one full run (seed 0, 8 evenly spaced checkpoints; the scores of the table read the
# 4 evenly spaced ones among them, 2nd, 4th, 6th and 8th); each row prunes with dataset z-scores,
# retrains with seeds 0..2 and is evaluated on the test file.
#
# Usage: scripts/selection-grid.sh snli|rotten-tomatoes|crowdflower [KEEP...]   (default: 0.5 0.3 1.0; 1.0 = full data)
# ROWS_ONLY=random,forgetting-easy-top (row names, comma-separated) runs those rows alone.
# At every keep the RECOMMENDED rows run after the table's: the fewest forgetting events with ties broken by
# the highest cartography variability per label (`winnow prune --then-by ... --then-column variability`; the
# default of `winnow experiment`), the same with the hardest EL2N (epoch 1) breaking the ties (the earlier
# default), their baseline random per label, and forgetting alone per label; then the skewed rows again with
# per-label selection (PER_LABEL below).
# At keep 0.5 the RECIPES follow (drop-the-noisiest-then-random selections), then VoG from 2 and from 8
# checkpoints (the seed paper's open question on the number of checkpoints), then other tie-breaks for the
# recommended ranking (TIE_BREAKS), then dataset cartography's most ambiguous (AMBIGUOUS), then the recommended
# ranking and the most ambiguous from a 4-epoch scoring run's dynamics (LONGER_SCORING);
# on CrowdFlower, then the easiest half by VoG, EL2N and forgetting with dataset and with class z-scores.
# Writes OUT/results.csv (row,keep,seed,accuracy,macro_f1,examples,learned_nothing), one line per finished
# retraining (learned_nothing: `winnow eval` found one class in >= 95 % of the test predictions, or accuracy
# at most a point above the majority rate), and prints mean ± sample std per row, naming such retrainings. Rerun to resume: finished retrainings are skipped. A retraining
# at keep 0.5 takes about 7 minutes on 2 cores for SNLI (4.5 at keep 0.3, 8 at 0.7, 10 on all 20,000), 3.5 for
# Rotten Tomatoes and CrowdFlower, on a machine whose AVX-512 runs at the AVX2 rate.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-.build/release/winnow}
SEEDS=${SEEDS:-3}
DATASET=${1:?usage: scripts/selection-grid.sh snli|rotten-tomatoes|crowdflower [KEEP...]}
shift
case $DATASET in
    snli) OUT=${OUT:-runs/snli}; TEST=data/snli/test.jsonl; SOURCE=data/snli/train.jsonl; LIMIT=20000; TRAIN=$OUT/train20k.jsonl ;;
    rotten-tomatoes) OUT=${OUT:-runs/rt-minilm}; TEST=data/rotten-tomatoes/test.jsonl; SOURCE=data/rotten-tomatoes/train.jsonl; LIMIT=; TRAIN=$OUT/train.jsonl ;;
    crowdflower) OUT=${OUT:-runs/cf-minilm}; TEST=data/crowdflower/test.jsonl; SOURCE=data/crowdflower/train-12k.jsonl; LIMIT=; TRAIN=$OUT/train.jsonl ;;
    *) echo "selection-grid: unknown data set '$DATASET' (snli, rotten-tomatoes, crowdflower)" >&2; exit 2 ;;
esac
HP=(--init models/minilm --epochs 2 --lr 5e-5 --batch-size 32 --max-length 64)
HP4=(--init models/minilm --epochs 4 --lr 5e-5 --batch-size 32 --max-length 64)   # the longer scoring run's

[ -f "$SOURCE" ] || { echo "selection-grid: $SOURCE missing; run scripts/fetch-data.sh $DATASET" >&2; exit 1; }
[ -f models/minilm/model.safetensors ] || { echo "selection-grid: models/minilm missing; run scripts/fetch-pretrained.sh minilm" >&2; exit 1; }
mkdir -p "$OUT/scores" "$OUT/subsets" "$OUT/runs"
if [ ! -f "$TRAIN" ]; then
    if [ -n "$LIMIT" ]; then head -n "$LIMIT" "$SOURCE" > "$TRAIN.tmp"; else cp "$SOURCE" "$TRAIN.tmp"; fi
    mv "$TRAIN.tmp" "$TRAIN"
fi

# The scoring run (seed 0, 8 checkpoints, dynamics); it is also the full-data row of seed 0.
if [ ! -f "$OUT/full/trainer_state.json" ]; then
    rm -rf "$OUT/full.partial"
    $W train --data "$TRAIN" "${HP[@]}" --checkpoints 8 --seed 0 --out "$OUT/full.partial"
    mv "$OUT/full.partial" "$OUT/full"
fi
STEPS=($(ls -d "$OUT"/full/checkpoint-* | sed 's/.*checkpoint-//' | sort -n))
[ ${#STEPS[@]} = 8 ] || { echo "selection-grid: $OUT/full has ${#STEPS[@]} checkpoints, not 8; remove it to rerun" >&2; exit 1; }
CK4=${STEPS[1]},${STEPS[3]},${STEPS[5]},${STEPS[7]}   # the 4 evenly spaced checkpoints
CK2=${STEPS[3]},${STEPS[7]}
CK8=$(IFS=,; echo "${STEPS[*]}")
# Each score file is made when a row first needs it (the 4 evenly spaced checkpoints for VoG unless
# named; EL2N at the end of epoch 1, the 4th of the 8 checkpoints).
# A longer scoring run (seed 0, 4 epochs, 4 checkpoints; the retrainings keep 2 epochs): its dynamics give each
# example 4 presentations instead of 2 (forgetting counts and cartography's variability are coarse over 2).
full4() {
    [ -f "$OUT/full-4ep/trainer_state.json" ] && return
    rm -rf "$OUT/full-4ep.partial"
    $W train --data "$TRAIN" "${HP4[@]}" --checkpoints 4 --seed 0 --out "$OUT/full-4ep.partial"
    mv "$OUT/full-4ep.partial" "$OUT/full-4ep"
}
score() {   # score NAME
    local name=$1 args
    [ -f "$OUT/scores/$name.csv" ] && return
    case $name in
        forgetting-4ep|cartography-4ep)   # the training dynamics of the 4-epoch scoring run
            full4
            $W score "${name%-4ep}" --run "$OUT/full-4ep" --data "$TRAIN" --out "$OUT/scores/$name.csv"
            return ;;
        forgetting|aum) args=("$name") ;;
        vog) args=(vog --checkpoints "$CK4") ;;
        vog-2ck) args=(vog --checkpoints "$CK2") ;;
        vog-8ck) args=(vog --checkpoints "$CK8") ;;
        el2n-epoch1) args=(el2n --checkpoints "${STEPS[3]}") ;;
        el2n-last) args=(el2n --checkpoints "${STEPS[7]}") ;;
        el2n-8ck) args=(el2n --checkpoints "$CK8") ;;
        cartography) args=(cartography) ;;
        *) echo "selection-grid: no score named $name" >&2; exit 2 ;;
    esac
    # A scoring killed part-way resumes from its finished parts (OUT/scores/NAME.csv.parts).
    case $name in   # the dynamics scores make no model pass: no --max-length, no parts
        forgetting|aum|cartography) $W score "${args[@]}" --run "$OUT/full" --data "$TRAIN" --out "$OUT/scores/$name.csv" ;;
        *) $W score "${args[@]}" --run "$OUT/full" --data "$TRAIN" --max-length 64 --out "$OUT/scores/$name.csv" \
               $([ -d "$OUT/scores/$name.csv.parts" ] && echo --resume) ;;
    esac
}

# Rows: NAME SCORE SELECT SAMPLING [PRUNE ARGS] (a row normalises with dataset z-scores unless its PRUNE ARGS
# name --normalize). ROWS are
# the reference's table; RECOMMENDED (every keep) ranks by forgetting with cartography's variability, or EL2N,
# breaking its ties (--then-by takes a score name here) beside random and forgetting alone, per label; RECIPES (keep 0.5 only) drop the hardest fraction by a
# score (the likely mislabelled) and sample the rest uniformly (--sampling stratified --bins 1), or keep the
# EL2N scores nearest each label's median (--select moderate: both ends dropped).
RECOMMENDED=(
    "forgetting-then-variability-hard-per-label forgetting easy top --then-by cartography --then-column variability --per-label"
    "forgetting-then-el2n-hard-per-label forgetting easy top --then-by el2n-epoch1 --per-label"
    "random-per-label forgetting random top --per-label"
    "forgetting-easy-top-per-label forgetting easy top --per-label"
)
RECIPES=(
    "el2n-epoch1-moderate-per-label el2n-epoch1 moderate top --per-label"
    "aum-drop10-random aum hard stratified --beta 0.1 --bins 1"
    "el2n-epoch1-drop10-random el2n-epoch1 hard stratified --beta 0.1 --bins 1"
    "forgetting-drop10-random forgetting hard stratified --beta 0.1 --bins 1"
    "aum-drop20-random aum hard stratified --beta 0.2 --bins 1"
)
# Class against dataset normalisation (the seed paper's check on an imbalanced set; CrowdFlower, keep 0.5):
# keep the easiest half by each score, with dataset and with class z-scores.
NORMALISATION=(
    "vog-easy-top vog easy top"
    "vog-easy-top-class vog easy top --normalize class"
    "el2n-epoch1-easy-top el2n-epoch1 easy top"
    "el2n-epoch1-easy-top-class el2n-epoch1 easy top --normalize class"
    "forgetting-easy-top-class forgetting easy top --normalize class"
)
# Per-label selection (`winnow prune --per-label`: every label keeps its share of the data) of the rows whose
# subsets are skewed towards one class; they run at every keep after the table's rows.
PER_LABEL=(
    "el2n-epoch1-stratified-per-label el2n-epoch1 hard stratified --per-label"
    "el2n-epoch1-hard-top-per-label el2n-epoch1 hard top --per-label"
)
# Other tie-breaks for the fewest forgetting events (keep 0.5): the hardest among the pairs with equal forgetting
# counts by EL2N at the last checkpoint, by EL2N averaged over all 8 checkpoints, and by cartography's
# 1 - confidence (mean p_y over the training presentations; no model pass).
TIE_BREAKS=(
    "forgetting-then-el2n-last-hard-per-label forgetting easy top --then-by el2n-last --per-label"
    "forgetting-then-el2n-8ck-hard-per-label forgetting easy top --then-by el2n-8ck --per-label"
    "forgetting-then-cartography-hard-per-label forgetting easy top --then-by cartography --per-label"
)
# Dataset cartography's own selection (Swayamdipta et al. 2020): keep the most ambiguous, the highest
# variability of p_y over the training presentations (the recommended row uses it to break forgetting's ties).
AMBIGUOUS=(
    "cartography-ambiguous-per-label cartography hard top --column variability --per-label"
)
# The recommended ranking and cartography's selection from the 4-epoch scoring run's dynamics (keep 0.5).
LONGER_SCORING=(
    "forgetting-4ep-then-variability-4ep-hard-per-label forgetting-4ep easy top --then-by cartography-4ep --then-column variability --per-label"
    "cartography-4ep-ambiguous-per-label cartography-4ep hard top --column variability --per-label"
)
VOG_CHECKPOINTS=(
    "vog-2ck-hard-softmax vog-2ck hard softmax"
    "vog-8ck-hard-softmax vog-8ck hard softmax"
)
ROWS=(
    "random - random top"
    "forgetting-easy-top forgetting easy top"
    "el2n-epoch1-stratified el2n-epoch1 hard stratified"
    "vog-hard-softmax vog hard softmax"
    "vog-easy-softmax vog easy softmax"
    "aum-easy-top aum easy top"
    "vog-hard-top vog hard top"
    "el2n-epoch1-hard-top el2n-epoch1 hard top"
)
RESULTS=$OUT/results.csv
[ -f "$RESULTS" ] || echo "row,keep,seed,accuracy,macro_f1,examples,learned_nothing" > "$RESULTS"
# A results file of an earlier version lacks the last column: its rows read as unknown.
head -n 1 "$RESULTS" | grep -q ',learned_nothing$' || sed -i '1s/$/,learned_nothing/' "$RESULTS"
done_already() { grep -q "^$1,$2,$3," "$RESULTS"; }
record() {   # record ROW KEEP SEED RUN EXAMPLES
    local json acc f1
    json=$($W eval --run "$4" --data "$TEST" --max-length 64 --json)
    acc=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])')
    f1=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["macro_f1"])')
    nothing=$(printf '%s' "$json" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["learned_nothing"]))')
    echo "$1,$2,$3,$acc,$f1,$5,$nothing" >> "$RESULTS"
    echo "selection-grid: $1 keep $2 seed $3: accuracy $acc$([ "$nothing" = 1 ] && echo ' (learned nothing)')"
}
retrain() {   # retrain ROW KEEP SEED DATA
    local run=$OUT/runs/$1-k$2-s$3
    rm -rf "$run"
    $W train --data "$4" "${HP[@]}" --seed "$3" --no-dynamics --out "$run"
    record "$1" "$2" "$3" "$run" "$(wc -l < "$4")"
    rm -rf "$run"
}

wanted() { [ -z "${ROWS_ONLY:-}" ] || [[ ",$ROWS_ONLY," == *",$1,"* ]]; }
run_rows() {   # run_rows KEEP ROW...
    local k=$1 seed row name scores select sampling extra subset tie
    shift
    for seed in $(seq 0 $((SEEDS - 1))); do
        for row in "$@"; do
            read -r name scores select sampling extra <<< "$row"
            wanted "$name" || continue
            done_already "$name" "$k" "$seed" && continue
            subset=$OUT/subsets/$name-k$k-s$seed.jsonl
            if [ "$name" = random ]; then
                score forgetting
                $W prune --scores "$OUT/scores/forgetting.csv" --data "$TRAIN" --keep "$k" --select random --seed "$seed" --out "$subset"
            else
                score "$scores"
                if [[ " $extra " == *" --then-by "* ]]; then   # a score name: its file, made if needed
                    tie=$(sed 's/.*--then-by \([^ ]*\).*/\1/' <<< "$extra")
                    score "$tie"
                    extra=${extra/--then-by $tie/--then-by $OUT/scores/$tie.csv}
                fi
                [[ " $extra " == *" --normalize "* ]] || extra="--normalize dataset $extra"
                # shellcheck disable=SC2086
                # top-k by a score draws nothing: every seed retrains the same subset (prune refuses a --seed there);
                # a random selection (random per label) draws with the row's seed
                $W prune --scores "$OUT/scores/$scores.csv" --data "$TRAIN" --keep "$k" --select "$select" \
                    --sampling "$sampling" $([ "$sampling" = top ] && [ "$select" != random ] || echo --seed "$seed") $extra --out "$subset"
            fi
            retrain "$name" "$k" "$seed" "$subset"
        done
    done
}

for keep in "${@:-0.5 0.3 1.0}"; do
  for k in $keep; do
    if [ "$k" = 1.0 ]; then
        for seed in $(seq 0 $((SEEDS - 1))); do
            done_already full 1.0 "$seed" && continue
            if [ "$seed" = 0 ]; then record full 1.0 0 "$OUT/full" "$(wc -l < "$TRAIN")"; else retrain full 1.0 "$seed" "$TRAIN"; fi
        done
        continue
    fi
    run_rows "$k" "${ROWS[@]}"
    run_rows "$k" "${RECOMMENDED[@]}"
    run_rows "$k" "${PER_LABEL[@]}"
    if [ "$k" = 0.5 ]; then
        run_rows "$k" "${RECIPES[@]}"
        run_rows "$k" "${VOG_CHECKPOINTS[@]}"
        run_rows "$k" "${TIE_BREAKS[@]}"
        run_rows "$k" "${AMBIGUOUS[@]}"
        run_rows "$k" "${LONGER_SCORING[@]}"
        if [ "$DATASET" = crowdflower ]; then run_rows "$k" "${NORMALISATION[@]}"; fi
    fi
  done
done

# Mean ± sample std per row and keep, and the difference to random at the same keep ± two standard errors of
# the difference (a per-label row against random per label when that ran).
python3 - "$RESULTS" <<'EOF'
import csv, math, statistics, sys
rows, nothing = {}, {}
for r in csv.DictReader(open(sys.argv[1])):
    rows.setdefault((r["row"], r["keep"]), []).append(100 * float(r["accuracy"]))
    if r.get("learned_nothing") == "1":
        nothing.setdefault((r["row"], r["keep"]), []).append(r["seed"])
def sd(a): return statistics.stdev(a) if len(a) > 1 else float("nan")
for (row, keep), a in rows.items():
    seeds = nothing.get((row, keep))
    mark = f"; learned nothing with seed {', '.join(seeds)}" if seeds else ""
    base = "random-per-label" if row.endswith("per-label") and ("random-per-label", keep) in rows else "random"
    diff = ""
    if row not in ("random", base) and (base, keep) in rows and len(a) > 1 and len(rows[(base, keep)]) > 1:
        b = rows[(base, keep)]
        se2 = 2 * math.sqrt(sd(a) ** 2 / len(a) + sd(b) ** 2 / len(b))
        diff = f"  {statistics.mean(a) - statistics.mean(b):+.2f} ± {se2:.2f} against {base}"
    print(f"{row:36s} keep {keep}: {statistics.mean(a):.2f} ± {sd(a):.2f} ({len(a)} seeds{mark}){diff}")
EOF
