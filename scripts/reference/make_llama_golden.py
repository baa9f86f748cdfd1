"""A tiny random Llama (grouped-query attention, untied head, sizes that are no powers of two) saved as a
Hugging Face folder and as a GGUF file, with transformers' logits, losses and gradients, for
Tests/WinnowTests/LlamaGoldenTests.swift.

    /tmp/ref/bin/pip install torch transformers gguf safetensors
    /tmp/ref/bin/python scripts/reference/make_llama_golden.py Tests/Fixtures/llama

Writes:
  hf/config.json, hf/model.safetensors     LlamaForCausalLM: vocab 101, hidden 64, 2 layers, 4 heads of 16,
                                           2 key/value heads, intermediate 96, rms_norm_eps 1e-5,
                                           rope_theta 10000, untied lm_head (torch.manual_seed(0))
  tiny.gguf                                the same weights as llama.cpp's converter writes them (Q and K
                                           rows permuted), token_embd and lm_head as Q8_0, ffn_down as
                                           Q4_1, attn_v as F16, the rest F32; no tokenizer
  cls/config.json, cls/model.safetensors   LlamaForSequenceClassification over the same base, 3 labels,
                                           pad_token_id 0, a fresh score head (seed 1)
  golden.safetensors                       input_ids [3, 9] (right-padded with 0) and attention_mask;
                                           hf_logits [3, 9, 101] (every position); hf_losses [3] (each
                                           example's mean next-token cross-entropy over its real tokens,
                                           one example at a time); grad.NAME for every parameter of the
                                           batch loss transformers computes with labels = input_ids and
                                           -100 at padding (the mean over all real target tokens);
                                           gguf_logits, gguf_losses (the GGUF file loaded by transformers,
                                           dequantised to F32); cls_logits [3, 3] and cls.grad.NAME of
                                           cross-entropy with labels [2, 0, 1]
Deterministic on CPU in float32.
"""
import json
import os
import sys

import numpy as np
import torch
from gguf import GGMLQuantizationType as T, GGUFWriter, quants
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=None, attn_implementation="eager")
model = LlamaForCausalLM(cfg).float().eval()
with torch.no_grad():      # norms away from 1, so that a missing or swapped norm weight shows
    for n, p in model.named_parameters():
        if "norm" in n:
            p.copy_(1 + 0.3 * torch.randn_like(p))
model.save_pretrained(os.path.join(out, "hf"), safe_serialization=True)

lengths = [9, 6, 4]
ids = torch.zeros(3, 9, dtype=torch.long)
mask = torch.zeros(3, 9, dtype=torch.long)
g = torch.Generator().manual_seed(3)
for b, n in enumerate(lengths):
    ids[b, :n] = torch.randint(3, 101, (n,), generator=g)
    mask[b, :n] = 1
golden = {"input_ids": ids, "attention_mask": mask}


def per_example_losses(m):
    out = []
    for b, n in enumerate(lengths):
        x = ids[b:b + 1, :n]
        out.append(m(input_ids=x, labels=x).loss.detach())
    return torch.stack(out)


with torch.no_grad():
    golden["hf_logits"] = model(input_ids=ids, attention_mask=mask).logits.float()
    golden["hf_losses"] = per_example_losses(model)
labels = ids.clone()
labels[mask == 0] = -100
model.zero_grad()
model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
for n, p in model.named_parameters():
    golden["grad." + n] = p.grad.detach().clone()

# The GGUF file, as llama.cpp's converter writes a Llama: Q and K rows permuted.
def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
w = GGUFWriter(os.path.join(out, "tiny.gguf"), arch="llama")
w.add_context_length(64)
w.add_embedding_length(64)
w.add_block_count(2)
w.add_feed_forward_length(96)
w.add_head_count(4)
w.add_head_count_kv(2)
w.add_rope_freq_base(10000.0)
w.add_rope_dimension_count(16)
w.add_layer_norm_rms_eps(1e-5)
w.add_vocab_size(101)
def put(name, x, qtype=T.F32):
    if qtype == T.F32:
        w.add_tensor(name, x)
    else:
        w.add_tensor(name, quants.quantize(x, qtype), raw_dtype=qtype)
put("token_embd.weight", sd["model.embed_tokens.weight"], T.Q8_0)
put("output.weight", sd["lm_head.weight"], T.Q8_0)
put("output_norm.weight", sd["model.norm.weight"])
for i in range(2):
    p = f"model.layers.{i}."
    put(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
    put(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
    put(f"blk.{i}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], 4))
    put(f"blk.{i}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], 2))
    put(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"], T.F16)
    put(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
    put(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
    put(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
    put(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"], T.Q4_1)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# The GGUF file through transformers' own loader (dequantised to F32, Q and K un-permuted).
from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
loaded = load_gguf_checkpoint(os.path.join(out, "tiny.gguf"), return_tensors=True, model_to_load=model)
gm = LlamaForCausalLM(cfg).float().eval()
state = {k: torch.as_tensor(np.asarray(v)) for k, v in loaded["tensors"].items()}
missing = gm.load_state_dict(state, strict=False)
assert not missing.unexpected_keys, missing
with torch.no_grad():
    golden["gguf_logits"] = gm(input_ids=ids, attention_mask=mask).logits.float()
    golden["gguf_losses"] = per_example_losses(gm)

# Sequence classification over the same base.
torch.manual_seed(1)
ccfg = LlamaConfig(**{**cfg.to_dict(), "num_labels": 3, "pad_token_id": 0, "id2label": {0: "a", 1: "b", 2: "c"},
                      "label2id": {"a": 0, "b": 1, "c": 2}})
cls = LlamaForSequenceClassification(ccfg).float().eval()
cls.model.load_state_dict(model.model.state_dict())
cls.save_pretrained(os.path.join(out, "cls"), safe_serialization=True)
y = torch.tensor([2, 0, 1])
cls.zero_grad()
o = cls(input_ids=ids, attention_mask=mask, labels=y)
o.loss.backward()
golden["cls_logits"] = o.logits.detach().float()
for n, p in cls.named_parameters():
    golden["cls.grad." + n] = p.grad.detach().clone()

save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(out, "golden.safetensors"), metadata={"format": "pt"})
print("wrote", out, {k: tuple(v.shape) for k, v in golden.items() if not k.startswith(("grad.", "cls.grad."))})
