"""A PEFT LoRA adapter of a decoder classifier (LlamaForSequenceClassification, task SEQ_CLS) on
Tests/Fixtures/llama/cls, with logits, losses and gradients, for Tests/WinnowTests/DecoderClassifierScoreTests.swift.

    /tmp/tv/bin/python scripts/reference/make_llama_cls_lora_golden.py Tests/Fixtures/llama

Writes (beside the classifier of make_llama_golden.py):
  cls-lora/adapter_config.json, cls-lora/adapter_model.safetensors   peft's LoRA (r 4, alpha 8, targets
      q_proj, v_proj, down_proj; init_lora_weights=False, so B is not zero; torch.manual_seed(0)), the
      score head saved beside it (modules_to_save) and moved by 0.1 N(0, 1) from the base's;
      base_model_name_or_path "../cls"
  cls-lora-golden.json   for the right-padded batch of golden.safetensors with labels [2, 0, 1]: logits,
      the mean cross-entropy and its gradient for every adapter and head tensor; per example (alone,
      unpadded): its loss and squared gradient norms over the adapter and over every parameter
Deterministic on CPU; float64.
"""
import json
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import LlamaForSequenceClassification

out = sys.argv[1]
base = LlamaForSequenceClassification.from_pretrained(os.path.join(out, "cls")).float().eval()
torch.manual_seed(0)
cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False,
                 bias="none", task_type="SEQ_CLS")
model = get_peft_model(base, cfg)
with torch.no_grad():
    for p in model.base_model.model.score.modules_to_save.default.parameters():
        p.add_(0.1 * torch.randn_like(p))
model.save_pretrained(os.path.join(out, "cls-lora"))
cpath = os.path.join(out, "cls-lora", "adapter_config.json")
c = json.load(open(cpath))
c["base_model_name_or_path"] = "../cls"
json.dump(c, open(cpath, "w"), indent=2, sort_keys=True)
readme = os.path.join(out, "cls-lora", "README.md")
if os.path.exists(readme):
    os.remove(readme)

model = model.double().eval()
named = {n: p for n, p in model.named_parameters() if "original_module" not in n}
for p in named.values():
    p.requires_grad_(True)
g = load_file(os.path.join(out, "golden.safetensors"))
ids, mask = g["input_ids"].long(), g["attention_mask"].long()
labels = torch.tensor([2, 0, 1])


def peft_name(n):
    return n.replace(".default", "").replace("modules_to_save.", "")


res = {}
logits = model(input_ids=ids, attention_mask=mask).logits
loss = torch.nn.functional.cross_entropy(logits, labels)
trained = {n: p for n, p in named.items() if "lora_" in n or "modules_to_save" in n}
grads = torch.autograd.grad(loss, list(trained.values()))
res["logits"] = logits.tolist()
res["batch_loss"] = float(loss)
res["batch_grads"] = {peft_name(n): gr.flatten().tolist() for n, gr in zip(trained, grads)}
res["tensor_names"] = sorted(peft_name(n) for n in trained)
rows = []
for b in range(3):
    n = int(mask[b].sum())
    lg = model(input_ids=ids[b:b + 1, :n]).logits
    l = torch.nn.functional.cross_entropy(lg, labels[b:b + 1])
    gr = torch.autograd.grad(l, list(named.values()))
    sq = {"lora": sum(float((x ** 2).sum()) for k, x in zip(named, gr) if "lora_" in k),
          "all": sum(float((x ** 2).sum()) for x in gr)}
    rows.append({"loss": float(l), "sq_norm": sq})
res["examples"] = rows
json.dump(res, open(os.path.join(out, "cls-lora-golden.json"), "w"))
print("wrote", os.path.join(out, "cls-lora"), "and cls-lora-golden.json")
