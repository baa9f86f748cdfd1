#!/usr/bin/env python3
"""Fine-tune a BERT-family classifier with PyTorch/transformers the way `winnow train --init` does.

A reference for the SNLI grid (issue 21): the same subset file trained by Winnow and by this script should
give test accuracies within seed noise; a larger gap points at the trainer, an equal one at the subset.
AdamW (weight decay as given), linear warm-up over --warmup of the steps then linear decay, gradient
clipping at 1.0, a fresh classification head, pairs tokenised with `text_pair` and truncated to
--max-length, epochs shuffled with --seed. Prints one JSON line: accuracy and macro F1 on --test.

Usage (in a throwaway venv with torch and transformers, never in CI):
    python scripts/reference/train_classifier_torch.py --init models/minilm \
        --data runs/snli/subsets/el2n-epoch1-hard-top-k0.5-s0.jsonl --test data/snli/test.jsonl \
        --epochs 2 --lr 5e-5 --batch-size 32 --max-length 64 --seed 0
"""
import argparse
import json
import random

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def read(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    return [r for r in rows if r.get("label") not in (None, "-")]


def batches(tok, rows, labels, size, max_length):
    for i in range(0, len(rows), size):
        chunk = rows[i:i + size]
        pair = [r.get("text_pair") for r in chunk]
        enc = tok([r["text"] for r in chunk], pair if all(p is not None for p in pair) else None,
                  truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        yield enc, torch.tensor([labels.index(str(r["label"])) for r in chunk])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--warmup", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    train, test = read(a.data), read(a.test)
    labels = sorted({str(r["label"]) for r in train} | {str(r["label"]) for r in test})
    tok = AutoTokenizer.from_pretrained(a.init)
    model = AutoModelForSequenceClassification.from_pretrained(a.init, num_labels=len(labels))
    steps = a.epochs * ((len(train) + a.batch_size - 1) // a.batch_size)
    warm = int(a.warmup * steps)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: s / max(1, warm) if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
    rng = random.Random(a.seed)
    step = 0
    for epoch in range(a.epochs):
        order = train[:]
        rng.shuffle(order)
        model.train()
        for enc, y in batches(tok, order, labels, a.batch_size, a.max_length):
            loss = torch.nn.functional.cross_entropy(model(**enc).logits, y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 50 == 0:
                print(f"step {step}/{steps} loss {loss.item():.4f}", flush=True)
    model.eval()
    pred, gold = [], []
    with torch.no_grad():
        for enc, y in batches(tok, test, labels, 256, a.max_length):
            pred += model(**enc).logits.argmax(-1).tolist()
            gold += y.tolist()
    acc = sum(p == g for p, g in zip(pred, gold)) / len(gold)
    f1s = []
    for c in range(len(labels)):
        tp = sum(p == c and g == c for p, g in zip(pred, gold))
        fp = sum(p == c and g != c for p, g in zip(pred, gold))
        fn = sum(p != c and g == c for p, g in zip(pred, gold))
        f1s.append(2 * tp / max(1, 2 * tp + fp + fn))
    share = max(pred.count(c) for c in range(len(labels))) / len(pred)
    print(json.dumps({"data": a.data, "seed": a.seed, "accuracy": acc, "macro_f1": sum(f1s) / len(f1s),
                      "largest_predicted_class_share": share}))


if __name__ == "__main__":
    main()
