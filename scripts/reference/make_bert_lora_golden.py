"""A PEFT LoRA adapter of a BERT sequence classifier (task SEQ_CLS) on Tests/Fixtures/tiny-bert/run, with
each example's logits, loss and squared gradient norms, for Tests/WinnowTests/BertLoRAGoldenTests.swift.

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch transformers safetensors peft
    /tmp/tv/bin/python scripts/reference/make_bert_lora_golden.py Tests/Fixtures/tiny-bert

Writes into the tiny-bert fixture (which make_tiny_run.py made first):
  lora/adapter_config.json, lora/adapter_model.safetensors   peft's LoRA (r 4, alpha 8, targets query,
      value, dense, so every dense layer and the pooler; init_lora_weights=False, so B is not zero;
      torch.manual_seed(0)) with the classifier saved beside it (modules_to_save) and moved away from
      the base's head; base_model_name_or_path "../run"
  lora-golden.json   per example of test.jsonl (ids from the run's tokenizer): logits and loss of the
      adapted model, and the squared gradient norms of the loss over the LoRA tensors, over those of
      encoder layer 1, and over every parameter (base included); the mean loss of the first four
      training examples as one padded batch and its gradient for every adapter and head tensor
Deterministic on CPU; float64.
"""
import json
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, BertForSequenceClassification

out = sys.argv[1]
run = os.path.join(out, "run")
base = BertForSequenceClassification.from_pretrained(run).float().eval()
tok = AutoTokenizer.from_pretrained(run)
torch.manual_seed(0)
cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value", "dense"], init_lora_weights=False,
                 bias="none", task_type="SEQ_CLS")
model = get_peft_model(base, cfg)
with torch.no_grad():
    for p in model.base_model.model.classifier.modules_to_save.default.parameters():
        p.add_(0.1 * torch.randn_like(p))
model.save_pretrained(os.path.join(out, "lora"))
cpath = os.path.join(out, "lora", "adapter_config.json")
c = json.load(open(cpath))
c["base_model_name_or_path"] = "../run"
json.dump(c, open(cpath, "w"), indent=2, sort_keys=True)

model = model.double().eval()
named = {n: p for n, p in model.named_parameters() if "original_module" not in n}
for p in named.values():
    p.requires_grad_(True)
sets = {"lora": lambda n: "lora_" in n, "lora-layer-1": lambda n: "lora_" in n and ".layer.1." in n, "all": lambda n: True}
labels = base.config.label2id


def encode(path, n):
    rows = [json.loads(l) for l in open(path)][:n]
    return [(tok(r["text"], truncation=True, max_length=64)["input_ids"], labels[r["label"]]) for r in rows]


res = {"examples": []}
for ids, y in encode(os.path.join(out, "test.jsonl"), 12):
    logits = model(input_ids=torch.tensor([ids])).logits[0]
    loss = torch.nn.functional.cross_entropy(logits[None], torch.tensor([y]))
    grads = torch.autograd.grad(loss, list(named.values()))
    sq = {k: sum(float((g ** 2).sum()) for n, g in zip(named, grads) if sel(n)) for k, sel in sets.items()}
    res["examples"].append({"ids": ids, "label": y, "logits": logits.tolist(), "loss": float(loss), "sq_norm": sq})


def peft_name(n):
    return n.replace(".default", "").replace("modules_to_save.", "")


res["tensor_names"] = sorted(peft_name(n) for n in named if "lora_" in n or "modules_to_save" in n)
rows = encode(os.path.join(out, "train.jsonl"), 4)
T = max(len(ids) for ids, _ in rows)
ids = torch.zeros(4, T, dtype=torch.long)
mask = torch.zeros(4, T, dtype=torch.long)
for b, (e, _) in enumerate(rows):
    ids[b, :len(e)] = torch.tensor(e)
    mask[b, :len(e)] = 1
trained = {n: p for n, p in named.items() if "lora_" in n or "modules_to_save" in n}
loss = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([y for _, y in rows])).loss
grads = torch.autograd.grad(loss, list(trained.values()))
res["batch_loss"] = float(loss)
res["batch_grads"] = {peft_name(n): g.flatten().tolist() for n, g in zip(trained, grads)}
json.dump(res, open(os.path.join(out, "lora-golden.json"), "w"))
print("wrote", os.path.join(out, "lora"), "and lora-golden.json")
