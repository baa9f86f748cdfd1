"""Per-example losses of pretrained SmolLM2-135M-Instruct (the GGUF file dequantised to F32 by
transformers) on a few texts, for Tests/WinnowTests/SmolLM2Tests.swift and `winnow score loss`.

    /tmp/ref/bin/pip install torch transformers gguf
    bash scripts/fetch-pretrained.sh smollm2
    /tmp/ref/bin/python scripts/reference/make_smollm2_golden.py Tests/Fixtures/llama/smollm2-losses.jsonl

One line per text: {"text", "input_ids", "loss"} with input_ids = AutoTokenizer(...)(text)["input_ids"]
and loss = model(input_ids, labels=input_ids).loss (mean next-token cross-entropy, nats), one text at a
time, float32 on CPU.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
folder, name = os.path.join(repo, "models/smollm2"), "SmolLM2-135M-Instruct.Q4_1.gguf"
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
texts = [
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
    "a gorgeously strange movie, heady and fragrant with the spice of life.",
    "the film is strictly routine.",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>",
    "zqx vbnm lkj poiu ytre wqas dfgh",
    "dog the over jumps fox brown lazy quick the",
    "Die Katze sitzt auf der Matte und schaut aus dem Fenster.",
]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for t in texts:
        ids = tok(t)["input_ids"]
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
        f.write(json.dumps({"text": t, "input_ids": ids, "loss": loss}, ensure_ascii=False) + "\n")
        print(f"{loss:.4f}  {t[:60]!r}")
