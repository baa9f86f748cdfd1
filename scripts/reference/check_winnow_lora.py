"""Loads a LoRA adapter folder written by `winnow train --lora-rank` with peft and prints each example's
loss over its scored tokens beside Winnow's `winnow score loss --checkpoints last` of the same adapter
(run by hand; without --checkpoints last a run's score averages its checkpoints, while peft loads the final adapter).

    /tmp/ref/bin/python scripts/reference/check_winnow_lora.py RUN DATA.jsonl WINNOW_LOSS.csv [--max-length N]

The ids and scored tokens follow docs/contracts.md §2b (text and prompt + completion here; the base
model's folder must hold tokenizer.json). Prints the largest relative difference.
"""
import argparse
import csv
import json
import os

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("run")
ap.add_argument("data")
ap.add_argument("winnow")
ap.add_argument("--max-length", type=int, default=128)
a = ap.parse_args()
base = json.load(open(os.path.join(a.run, "adapter_config.json")))["base_model_name_or_path"]
tok = AutoTokenizer.from_pretrained(base)
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), a.run).eval()
eos = tok.convert_tokens_to_ids(json.load(open(os.path.join(base, "tokenizer_config.json")))["eos_token"])
theirs = []
for line in open(a.data):
    r = json.loads(line)
    if "text" in r:
        ids = tok(r["text"])["input_ids"][:a.max_length]     # with the BOS/EOS the tokenizer adds (contracts §2b)
        scored = [False] + [True] * (len(ids) - 1)
    else:
        p, full = tok(r["prompt"], add_special_tokens=False)["input_ids"], tok(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]
        bos = [tok.bos_token_id] if tok("")["input_ids"][:1] == [tok.bos_token_id] and tok.bos_token_id is not None else []
        ids = (bos + full + [eos])[:a.max_length]
        scored = ([False] * (len(bos) + len(p)) + [True] * (len(full) - len(p) + 1))[:a.max_length]
        scored[0] = False
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    pos = [j for j in range(1, len(ids)) if scored[j]]
    theirs.append(float(torch.nn.functional.cross_entropy(logits[[j - 1 for j in pos]], torch.tensor([ids[j] for j in pos]))))
mine = [float(r["score"]) for r in csv.DictReader(open(a.winnow))]
for t, m in zip(theirs, mine):
    print(f"peft {t:.6f}  winnow {m:.6f}")
print("largest relative difference", max(abs(t - m) / abs(t) for t, m in zip(theirs, mine)))
