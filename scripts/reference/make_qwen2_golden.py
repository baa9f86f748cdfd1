"""A tiny random Qwen2 (the Llama architecture with biases on q, k and v) saved as a Hugging Face folder,
with transformers' logits and gradients, for Tests/WinnowTests/LlamaGoldenTests.swift.

    /tmp/ref/bin/pip install torch transformers safetensors
    /tmp/ref/bin/python scripts/reference/make_qwen2_golden.py Tests/Fixtures/llama

Writes qwen2/config.json, qwen2/model.safetensors (Qwen2ForCausalLM: vocab 101, hidden 64, 2 layers,
4 heads of 16, 2 key/value heads, intermediate 96, tied embeddings; torch.manual_seed(2), biases drawn
from N(0, 0.5) so that they matter) and qwen2-golden.safetensors: logits [3, 9, 101] of the right-padded
batch of golden.safetensors and grad.NAME of the batch loss with labels -100 at padding.
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2Config, Qwen2ForCausalLM

out = sys.argv[1]
g = load_file(os.path.join(out, "golden.safetensors"))
ids, mask = g["input_ids"], g["attention_mask"]
torch.manual_seed(2)
cfg = Qwen2Config(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
                  tie_word_embeddings=True, attn_implementation="eager")
model = Qwen2ForCausalLM(cfg).float().eval()
with torch.no_grad():
    for n, p in model.named_parameters():
        if n.endswith(".bias"):
            p.copy_(0.5 * torch.randn_like(p))
model.save_pretrained(os.path.join(out, "qwen2"), safe_serialization=True)
golden = {}
with torch.no_grad():
    golden["logits"] = model(input_ids=ids, attention_mask=mask).logits.float()
labels = ids.clone()
labels[mask == 0] = -100
model.zero_grad()
model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
for n, p in model.named_parameters():
    golden["grad." + n] = p.grad.detach().clone()
save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(out, "qwen2-golden.safetensors"), metadata={"format": "pt"})
print("wrote", sorted(golden)[:3], "...")
