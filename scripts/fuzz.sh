#!/usr/bin/env bash
# Fuzzes winnow's parsers of untrusted files with libFuzzer + AddressSanitizer:
#   scripts/fuzz.sh SECONDS [TARGET...]      TARGETs: safetensors jsonl csv vocab gguf tokenizer-json decoder-jsonl scores
#                                            bert-config llama-config adapter-config trainer-state tokenizer-config shard-manifest chat-template
#                                            (default: all, two at a time)
# Seeds come from the test fixtures; a crash is copied to Tests/Fixtures/fuzz/TARGET/ (commit it: the
# FuzzRegressionTests replay every file there) and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:?usage: fuzz.sh SECONDS [TARGET...]}
shift || true
TARGETS=("${@:-safetensors jsonl csv vocab gguf tokenizer-json decoder-jsonl scores bert-config llama-config adapter-config trainer-state tokenizer-config chat-template}")
TARGETS=(${TARGETS[@]})
swift build --traits Fuzz --scratch-path .build/fuzz --product winnow-fuzz -Xcc -O2 \
    -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address -Xswiftc -use-ld=lld >&2
BIN=.build/fuzz/debug/winnow-fuzz
WORK=.build/fuzz/work
F=Tests/Fixtures
mkdir -p "$WORK"
seed() {  # seed corpus per target
    local t=$1 d="$WORK/corpus-$1"
    mkdir -p "$d"
    case $t in
    safetensors) cp $F/tiny-bert/dtypes/*.safetensors $F/lm/mlm/model.safetensors $F/tiny-bert/golden.safetensors "$d"/ ;;
    jsonl) cp $F/tiny-bert/train.jsonl $F/tiny-bert/pairs.jsonl "$d"/; head -c 2000 $F/tiny-bert/test.jsonl > "$d/short.jsonl" ;;
    csv) printf 'label,a,b\npos,1,2.5\nneg,-3e4,0\n' > "$d/a.csv"; printf 'x,label\n1,"q,u"\n2,b\n' > "$d/b.csv" ;;
    vocab) cp $F/tiny-bert/vocab.txt "$d"/; printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\n' > "$d/small.txt" ;;
    gguf) cp $F/gguf/types.gguf $F/tokenizer/gguf-llama-bpe/tokenizer.gguf "$d"/; cp $F/tokenizer/gguf-llama-spm/tokenizer.gguf "$d"/spm.gguf; cp $F/llama/gemma3.gguf $F/llama/qwen3.gguf "$d"/ ;;
    tokenizer-json) cp $F/tokenizer/spm-legacy/tokenizer.json "$d"/spm-legacy.json; cp $F/tokenizer/spm-split/tokenizer.json "$d"/spm-split.json; cp $F/tokenizer/spm-gemma/tokenizer.json "$d"/spm-gemma.json; cp $F/tokenizer/bpe-digits/tokenizer.json "$d"/digits.json; cp $F/tokenizer/bpe-plain/tokenizer.json "$d"/plain.json; cp $F/tokenizer/bpe-llama3/tokenizer.json "$d"/llama3.json; cp $F/tokenizer/bpe-qwen2/tokenizer.json "$d"/qwen2.json ;;
    decoder-jsonl) cp $F/decoder/text.jsonl $F/decoder/pc.jsonl $F/decoder/chat.jsonl "$d"/ ;;
    bert-config) cp $F/tiny-bert/null-run/config.json "$d"/ ;;
    llama-config) cp $F/llama/hf/config.json "$d"/hf.json; cp $F/llama/qwen2/config.json "$d"/qwen2.json ;;
    adapter-config) cp $F/llama/cls-lora/adapter_config.json "$d"/cls.json; cp $F/tiny-bert/lora/adapter_config.json "$d"/bert.json ;;
    trainer-state) cp $F/tiny-bert/null-run/trainer_state.json "$d"/ ;;
    tokenizer-config) ;;   # the hand-written inputs below (ok-*: a BERT, a ChatML and a named-template config)
    shard-manifest) ;;     # the hand-written inputs below
    chat-template) python3 -c "import json,sys; [open(sys.argv[1] + '/' + t['name'] + '.jinja', 'w').write(t['template']) for t in json.load(open('$F/chat-templates/golden.json'))]" "$d" ;;
    scores) printf 'index,line,id,label,score\n0,1,a,pos,0.5\n1,3,"b,c",neg,-1e-3\n' > "$d/a.csv"; printf '{"line": 2, "score": 1.5, "label": "x"}\n' > "$d/b.jsonl" ;;
    esac
    [ -d "$F/fuzz/$t" ] && cp "$F/fuzz/$t"/* "$d"/ 2>/dev/null || true
    echo "$d"
}
run() {
    local t=$1 corpus
    corpus=$(seed "$t")
    mkdir -p "$WORK/crash-$t"
    echo "fuzz: $t for $SECONDS_EACH s" >&2
    # -detect_leaks=0: Foundation's Data(contentsOf:) leaks one 4 KiB buffer when it reads an empty file
    # (reported by LeakSanitizer at exit on the first fuzz run); winnow cannot free it. -detect_leaks=0 stops
    # libFuzzer's checks during the run, ASAN_OPTIONS=detect_leaks=0 the report at exit.
    if ! ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} WINNOW_FUZZ_TARGET=$t "$BIN" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=4096 -max_len=65536 -detect_leaks=0 \
            -artifact_prefix="$WORK/crash-$t/" "$corpus" > "$WORK/$t.log" 2>&1; then
        mkdir -p "$F/fuzz/$t"
        cp "$WORK/crash-$t"/* "$F/fuzz/$t"/ 2>/dev/null || true
        echo "fuzz: $t FOUND A CRASH (see $WORK/$t.log; inputs copied to $F/fuzz/$t/)" >&2
        return 1
    fi
    echo "fuzz: $t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$WORK/$t.log" | tail -1), no crash" >&2
}
status=0
pids=()
for t in "${TARGETS[@]}"; do
    run "$t" & pids+=($!)
    if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}" || status=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
