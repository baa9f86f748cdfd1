"""A PEFT LoRA adapter on the tiny tied decoder of Tests/Fixtures/decoder, with each example's loss and
squared gradient norms over the adapter and over every parameter, for Tests/WinnowTests/LoRAGoldenTests.swift.

    /tmp/ref/bin/pip install torch transformers safetensors peft
    /tmp/ref/bin/python scripts/reference/make_lora_golden.py Tests/Fixtures/decoder

Writes (beside the decoder fixture, which make_decoder_score_golden.py made first):
  lora/adapter_config.json, lora/adapter_model.safetensors   peft's LoRA (r 4, alpha 8, targets q_proj,
      v_proj, o_proj, gate_proj, down_proj; init_lora_weights=False, so B is not zero; torch.manual_seed(0)),
      base_model_name_or_path "../tied"
  lora-golden.json   per example of pc.jsonl and chat.jsonl (Winnow's ids and scored tokens from
      golden.json): loss of the adapted model, and the squared gradient norms of the loss over the
      LoRA tensors, over the LoRA tensors of model.layers.1, and over every parameter (base included)
Deterministic on CPU; gradients in float64.
"""
import json
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM

out = sys.argv[1]
base = LlamaForCausalLM.from_pretrained(os.path.join(out, "tied")).float().eval()
torch.manual_seed(0)
cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"],
                 init_lora_weights=False, bias="none", task_type="CAUSAL_LM")
model = get_peft_model(base, cfg)
model.save_pretrained(os.path.join(out, "lora"))
# base_model_name_or_path as a path relative to the adapter folder
cpath = os.path.join(out, "lora", "adapter_config.json")
c = json.load(open(cpath))
c["base_model_name_or_path"] = "../tied"
json.dump(c, open(cpath, "w"), indent=2, sort_keys=True)

model = model.double().eval()
for p in model.parameters():
    p.requires_grad_(True)
named = dict(model.named_parameters())
sets = {"lora": lambda n: "lora_" in n, "lora-last-layer": lambda n: "lora_" in n and ".layers.1." in n, "all": lambda n: True}
golden = json.load(open(os.path.join(out, "golden.json")))
res = {}
for name in ("pc", "chat"):
    rows = []
    for r in golden["tied"][name]:
        e, s = r["ids"], r["scored"]
        x = torch.tensor([e])
        logits = model(input_ids=x).logits[0]
        pos = [j for j in range(1, len(e)) if s[j]]
        loss = torch.nn.functional.cross_entropy(logits[[j - 1 for j in pos]], torch.tensor([e[j] for j in pos], dtype=torch.long))
        grads = torch.autograd.grad(loss, list(named.values()))
        sq = {k: sum(float((g ** 2).sum()) for n, g in zip(named, grads) if sel(n)) for k, sel in sets.items()}
        rows.append({"loss": float(loss), "sq_norm": sq})
    res[name] = rows
res["tensor_names"] = sorted(n for n in named if "lora_" in n)
# Training: the first four pc examples as one right-padded batch, the mean cross-entropy over all their
# scored tokens (transformers' loss with -100 elsewhere), and its gradient for every LoRA tensor.
rows = golden["tied"]["pc"][:4]
T = max(len(r["ids"]) for r in rows)
ids = torch.zeros(4, T, dtype=torch.long)
mask = torch.zeros(4, T, dtype=torch.long)
labels = torch.full((4, T), -100, dtype=torch.long)
for b, r in enumerate(rows):
    n = len(r["ids"])
    ids[b, :n] = torch.tensor(r["ids"])
    mask[b, :n] = 1
    for j in range(1, n):
        if r["scored"][j]:
            labels[b, j] = r["ids"][j]
lora = {n: p for n, p in named.items() if "lora_" in n}
loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
grads = torch.autograd.grad(loss, list(lora.values()))
res["batch_loss"] = float(loss)
res["batch_grads"] = {n.replace(".default", ""): g.flatten().tolist() for n, g in zip(lora, grads)}
# VoG over two checkpoints, the base (adapter disabled) and the adapted model: per pc example, the mean
# over its tokens and hidden dims of the std over the two of d(mean over scored tokens of the target's
# logit) / d inputs_embeds.
emb = model.get_input_embeddings()
vog = []
for r in golden["tied"]["pc"]:
    e, s_ = r["ids"], r["scored"]
    pos = [j for j in range(1, len(e)) if s_[j]]
    gs = []
    for adapted in (False, True):
        x = emb(torch.tensor([e])).detach().requires_grad_(True)
        if adapted:
            z = model(inputs_embeds=x).logits[0]
        else:
            with model.disable_adapter():
                z = model(inputs_embeds=x).logits[0]
        target = torch.stack([z[j - 1, e[j]] for j in pos]).mean()
        gs.append(torch.autograd.grad(target, x)[0][0])
    g = torch.stack(gs)
    vog.append(float(g.std(dim=0, unbiased=False).mean()))
res["vog_base_then_adapted"] = vog
with open(os.path.join(out, "lora-golden.json"), "w") as f:
    json.dump(res, f, indent=1)
print("wrote", out)
