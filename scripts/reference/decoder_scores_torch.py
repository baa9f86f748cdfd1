"""PyTorch reference for decoder scores on a real model: each line's mean next-token loss and its
self-influence ||d loss / d theta||^2 over the first decoder layer, the last one and all parameters,
one example at a time (a loop of single-example backward passes), with the loop's time.

    /tmp/ref/bin/pip install torch transformers gguf accelerate
    /tmp/ref/bin/python scripts/reference/decoder_scores_torch.py models/smollm2 CORPUS.jsonl OUTDIR [--max-length 128] [--threads 2]

The model is the folder's GGUF file loaded by transformers (dequantised to F32), so the weights are
Winnow's. Writes OUTDIR/torch-{loss,si-first-layer,si-last-layer,si-all}.csv (index,line,score) and
OUTDIR/torch-timing.json (seconds per pass).
"""
import argparse
import glob
import json
import os
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("data")
ap.add_argument("out")
ap.add_argument("--max-length", type=int, default=128)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--only", default="loss,si-first-layer,si-last-layer,si-all")
a = ap.parse_args()
torch.set_num_threads(a.threads)
gguf = glob.glob(os.path.join(a.model, "*.gguf"))[0]
tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf), dtype=torch.float32).eval()
L = model.config.num_hidden_layers
lines = [json.loads(l)["text"] for l in open(a.data, encoding="utf-8")]
encs = [tok(t, add_special_tokens=False)["input_ids"][:a.max_length] for t in lines]
os.makedirs(a.out, exist_ok=True)
named = list(model.named_parameters())
sets = {"si-first-layer": [p for n, p in named if n.startswith("model.layers.0.")],
        "si-last-layer": [p for n, p in named if n.startswith(f"model.layers.{L - 1}.")],
        "si-all": [p for _, p in named]}
timing = {}
for what in a.only.split(","):
    scores = []
    t0 = time.time()
    for e in encs:
        x = torch.tensor([e])
        if len(e) < 2:
            scores.append(0.0)
            continue
        if what == "loss":
            with torch.no_grad():
                scores.append(float(model(input_ids=x, labels=x).loss))
            continue
        loss = model(input_ids=x, labels=x).loss
        grads = torch.autograd.grad(loss, sets[what])
        scores.append(float(sum((g.double() ** 2).sum() for g in grads)))
    timing[what] = time.time() - t0
    with open(os.path.join(a.out, f"torch-{what}.csv"), "w") as f:
        f.write("index,line,score\n")
        for i, s in enumerate(scores):
            f.write(f"{i},{i + 1},{s:.9g}\n")
    print(what, f"{timing[what]:.1f} s", flush=True)
with open(os.path.join(a.out, "torch-timing.json"), "w") as f:
    json.dump({"examples": len(encs), "seconds": timing}, f, indent=1)
