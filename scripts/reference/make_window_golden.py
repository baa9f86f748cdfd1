"""Sliding-window attention against transformers, for Tests/WinnowTests/LlamaGoldenTests.swift: sequences longer than
the window, where windowed and full causal attention differ.

    /tmp/torchenv/bin/pip install torch transformers safetensors
    /tmp/torchenv/bin/python scripts/reference/make_window_golden.py Tests/Fixtures/llama

Writes window-golden.safetensors:
- gemma.input_ids, gemma.attention_mask [2, 20]: lengths 20 and 15, right-padded with 0 (ids from
  torch.Generator().manual_seed(7)); gemma.logits [2, 20, 623] and gemma.grad.NAME of the batch loss (labels -100 at
  padding) of Tests/Fixtures/llama/gemma3 (local layers with a window of 12 keys, a global one);
- mistral.logits [3, 9, 101] and mistral.grad.NAME: the tiny Llama of Tests/Fixtures/llama/hf read as a
  MistralForCausalLM with sliding_window 4, on the right-padded batch of golden.safetensors;
- qwen2.logits and qwen2.grad.NAME: the tiny Qwen2 of Tests/Fixtures/llama/qwen2 with use_sliding_window, sliding_window
  3 and max_window_layers 1 (layer 1 local, layer 0 global), on the same batch.
Eager attention, float32.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

out = sys.argv[1]
golden = {}


def run(model, ids, mask, prefix):
    model.eval()
    with torch.no_grad():
        golden[prefix + ".logits"] = model(input_ids=ids, attention_mask=mask).logits.float()
    labels = ids.clone()
    labels[mask == 0] = -100
    model.zero_grad()
    model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    for n, p in model.named_parameters():
        golden[prefix + ".grad." + n] = p.grad.detach().clone()


gen = torch.Generator().manual_seed(7)
ids = torch.randint(3, 623, (2, 20), generator=gen)
mask = torch.ones(2, 20, dtype=torch.long)
mask[1, 15:] = 0
ids[mask == 0] = 0
golden["gemma.input_ids"], golden["gemma.attention_mask"] = ids, mask
gemma = AutoModelForCausalLM.from_pretrained(os.path.join(out, "gemma3"), dtype=torch.float32, attn_implementation="eager")
assert gemma.config.sliding_window == 12
run(gemma, ids, mask, "gemma")

g = load_file(os.path.join(out, "golden.safetensors"))
cfg = json.load(open(os.path.join(out, "hf", "config.json")))
cfg.update(model_type="mistral", architectures=["MistralForCausalLM"], sliding_window=4)
mistral = MistralForCausalLM(MistralConfig.from_dict(cfg, attn_implementation="eager")).float()
missing = mistral.load_state_dict(load_file(os.path.join(out, "hf", "model.safetensors")), strict=True)
run(mistral, g["input_ids"], g["attention_mask"], "mistral")
cfg = json.load(open(os.path.join(out, "qwen2", "config.json")))
cfg.update(use_sliding_window=True, sliding_window=3, max_window_layers=1)
cfg.pop("layer_types", None)
qwen = Qwen2ForCausalLM(Qwen2Config.from_dict(cfg, attn_implementation="eager")).float()
assert qwen.config.layer_types == ["full_attention", "sliding_attention"], qwen.config.layer_types
missing = qwen.load_state_dict(load_file(os.path.join(out, "qwen2", "model.safetensors")), strict=False)
assert set(missing.missing_keys) <= {"lm_head.weight"} and not missing.unexpected_keys, missing
assert qwen.lm_head.weight.data_ptr() == qwen.model.embed_tokens.weight.data_ptr()   # tied
run(qwen, g["input_ids"], g["attention_mask"], "qwen2")
save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(out, "window-golden.safetensors"), metadata={"format": "pt"})
print("wrote", len(golden), "tensors")
