#!/usr/bin/env bash
# Runs the kernel tests and the parser tests under AddressSanitizer (Swift and C) and
# UndefinedBehaviorSanitizer (C kernels; Swift traps on overflow and bounds by itself, and swiftc has no
# UBSan on Linux). UBSan traps (-fsanitize-trap), so any undefined behaviour or ASan report fails the
# run. CI runs this after the main tests.
set -euo pipefail
cd "$(dirname "$0")/.."
FLAGS=(--scratch-path .build/sanitize -Xcc -O2 -Xswiftc -sanitize=address -Xcc -fsanitize=address,undefined
       -Xcc -fsanitize-trap=undefined -Xcc -fno-omit-frame-pointer)
swift build --build-tests "${FLAGS[@]}"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
# Kernels (finite differences, optimised vs reference), every parser of untrusted files, the parallel
# regions and the gradient factors that view workspace buffers (use-after-free would show here).
swift test --skip-build "${FLAGS[@]}" \
    --filter 'CKernelsTests|FuzzRegressionTests|LlamaGoldenTests|TokenizerTests|TokenizerUnitTests|LongTextTokenizerTests|ModelGoldenTests|LanguageModelTests|SelectionTests|ParallelTests|GradientFactorViewTests|PerExampleGradientTests'
