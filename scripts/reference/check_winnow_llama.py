"""Checks that a Llama folder written by Winnow (`LlamaForCausalLM.save(to:)`) loads in transformers and
gives what Winnow's source gave.

    /tmp/ref/bin/python scripts/reference/check_winnow_llama.py tiny DIR      # DIR saved from Tests/Fixtures/llama/tiny.gguf
    /tmp/ref/bin/python scripts/reference/check_winnow_llama.py smollm2 DIR   # DIR saved from models/smollm2's GGUF

tiny: logits of the golden batch against transformers on the GGUF (Tests/Fixtures/llama/golden.safetensors,
gguf_logits); smollm2: the losses of Tests/Fixtures/llama/smollm2-losses.jsonl. Prints the largest
difference; exits 1 above 1e-5 (absolute logits) or 1e-5 (relative loss).
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
kind, folder = sys.argv[1], sys.argv[2]
m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
if kind == "tiny":
    g = load_file(os.path.join(repo, "Tests/Fixtures/llama/golden.safetensors"))
    with torch.no_grad():
        d = (m(input_ids=g["input_ids"], attention_mask=g["attention_mask"]).logits - g["gguf_logits"]).abs().max().item()
    print("largest |logit difference|:", d)
    sys.exit(0 if d <= 1e-5 else 1)
worst = 0.0
for line in open(os.path.join(repo, "Tests/Fixtures/llama/smollm2-losses.jsonl"), encoding="utf-8"):
    c = json.loads(line)
    ids = torch.tensor([c["input_ids"]])
    with torch.no_grad():
        worst = max(worst, abs(m(input_ids=ids, labels=ids).loss.item() - c["loss"]) / c["loss"])
print("largest relative loss difference:", worst)
sys.exit(0 if worst <= 1e-5 else 1)
