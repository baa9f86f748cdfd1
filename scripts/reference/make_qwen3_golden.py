"""A tiny random Qwen3 (the Llama architecture with an RMSNorm on each query and key head, q_norm and k_norm,
before the rotation; a head dimension apart from hidden / heads) saved as a Hugging Face folder, with
transformers' logits, gradients and each example's squared gradient norm, for
Tests/WinnowTests/LlamaGoldenTests.swift.

    /tmp/torchenv/bin/pip install torch transformers safetensors
    /tmp/torchenv/bin/python scripts/reference/make_qwen3_golden.py Tests/Fixtures/llama

Writes qwen3/config.json, qwen3/model.safetensors (Qwen3ForCausalLM: vocab 101, hidden 64, 2 layers, 4 heads of
24, 2 key/value heads, intermediate 96, tied embeddings; torch.manual_seed(3), every norm weight drawn from
N(1, 0.3) so that they matter) and qwen3-golden.safetensors: logits [3, 9, 101] of the right-padded batch of
golden.safetensors, grad.NAME of the batch loss with labels -100 at padding, and sqnorm.all / sqnorm.last [3]:
each example's squared norm of the gradient of its own mean next-token loss over every tensor and over
model.layers.1.* (float64 sums of float32 gradients).
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen3Config, Qwen3ForCausalLM

out = sys.argv[1]
g = load_file(os.path.join(out, "golden.safetensors"))
ids, mask = g["input_ids"], g["attention_mask"]
torch.manual_seed(3)
cfg = Qwen3Config(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=24, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
                  tie_word_embeddings=True, attention_bias=False, attn_implementation="eager")
model = Qwen3ForCausalLM(cfg).float().eval()
with torch.no_grad():
    for n, p in model.named_parameters():
        if "norm" in n:
            p.copy_(1 + 0.3 * torch.randn_like(p))
model.save_pretrained(os.path.join(out, "qwen3"), safe_serialization=True)
golden = {}
with torch.no_grad():
    golden["logits"] = model(input_ids=ids, attention_mask=mask).logits.float()
labels = ids.clone()
labels[mask == 0] = -100
model.zero_grad()
model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
for n, p in model.named_parameters():
    golden["grad." + n] = p.grad.detach().clone()
sq_all, sq_last = [], []
for b in range(ids.shape[0]):
    n = int(mask[b].sum())
    model.zero_grad()
    model(input_ids=ids[b:b + 1, :n], labels=ids[b:b + 1, :n]).loss.backward()
    sq_all.append(sum(p.grad.double().pow(2).sum() for p in model.parameters()))
    sq_last.append(sum(p.grad.double().pow(2).sum() for name, p in model.named_parameters() if name.startswith("model.layers.1.")))
golden["sqnorm.all"] = torch.tensor(sq_all, dtype=torch.float64)
golden["sqnorm.last"] = torch.tensor(sq_last, dtype=torch.float64)
save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(out, "qwen3-golden.safetensors"), metadata={"format": "pt"})
print("wrote", len(golden), "tensors;", [n for n, _ in model.named_parameters()][:8])
