#!/usr/bin/env python3
"""Checks that a run folder written by winnow loads in transformers and predicts what winnow predicts.

Run by hand (needs torch and transformers, never in CI):
    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch transformers
    winnow predict --run RUN --data DATA.jsonl --out /tmp/winnow-pred.csv --max-length 64
    /tmp/ref/bin/python scripts/reference/check_winnow_run.py RUN DATA.jsonl /tmp/winnow-pred.csv 64
Loads RUN and every RUN/checkpoint-* with BertForSequenceClassification.from_pretrained and
BertTokenizer, checks the probabilities of every example against winnow's CSV (max |diff| <= 1e-4),
and that trainer_state.json parses as transformers.TrainerState.
"""
import csv, json, os, sys
import torch
from transformers import BertForSequenceClassification, BertTokenizer, TrainerState

run, data, pred_csv, max_len = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = BertForSequenceClassification.from_pretrained(run).eval()
tok = BertTokenizer.from_pretrained(run)
labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
rows = [json.loads(l) for l in open(data) if l.strip()]
texts = [r.get("text") or r.get("sentence") for r in rows]
with open(pred_csv) as f:
    winnow = list(csv.DictReader(f))
assert len(winnow) == len(texts), (len(winnow), len(texts))
worst = 0.0
with torch.no_grad():
    for i in range(0, len(texts), 64):
        enc = tok(texts[i:i + 64], truncation=True, max_length=max_len, padding=True, return_tensors="pt")
        p = torch.softmax(model(**enc).logits, -1)
        for j in range(p.shape[0]):
            w = winnow[i + j]
            for k, name in enumerate(labels):
                worst = max(worst, abs(float(w["p_" + name]) - float(p[j, k])))
print(f"{run}: {len(texts)} examples, labels {labels}, max |p_winnow - p_transformers| = {worst:.2e}")
for name in sorted(os.listdir(run)):
    if name.startswith("checkpoint-"):
        BertForSequenceClassification.from_pretrained(os.path.join(run, name))
        TrainerState.load_from_json(os.path.join(run, name, "trainer_state.json"))
        print(f"  {name}: loads, trainer_state.json parses")
assert worst <= 1e-4, worst
print("OK")
