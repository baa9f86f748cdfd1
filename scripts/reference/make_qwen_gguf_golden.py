"""The tiny Qwen2, Qwen3 and Gemma 3 of Tests/Fixtures/llama/qwen2, qwen3 and gemma3 as GGUF files, as llama.cpp's
converter (convert_hf_to_gguf.py, classes Qwen2Model, Qwen3Model and Gemma3Model) writes them, for Tests/WinnowTests/LlamaGoldenTests.swift:
architecture qwen2 / qwen3 with `ARCH.*` metadata (`ARCH.attention.key_length` the head dimension), the tensors
under llama.cpp's names in F32 with Q and K rows as Hugging Face has them (a NEOX rotation: no permutation),
Qwen2's q/k/v biases (`blk.N.attn_q.bias`...) and Qwen3's per-head norms (`blk.N.attn_q_norm.weight`,
`blk.N.attn_k_norm.weight`), no output.weight (tied embeddings); Gemma 3's norms as 1 + w (the converter's
norm_shift) under its names (`post_attention_norm`, `ffn_norm` for pre_feedforward_layernorm, `post_ffw_norm`) and
`gemma3.attention.sliding_window`. The test loads each and compares every tensor with the folder's.

    /tmp/torchenv/bin/pip install gguf safetensors numpy
    /tmp/torchenv/bin/python scripts/reference/make_qwen_gguf_golden.py Tests/Fixtures/llama
"""
import json
import os
import sys

import numpy as np
from gguf import GGUFWriter
from safetensors.numpy import load_file

out = sys.argv[1]
NAMES = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
         "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
         "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
         "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
         "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
         "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
GEMMA = {"post_attention_layernorm.weight": "post_attention_norm.weight", "pre_feedforward_layernorm.weight": "ffn_norm.weight",
         "post_feedforward_layernorm.weight": "post_ffw_norm.weight"}
for arch in ["qwen2", "qwen3", "gemma3"]:
    folder = os.path.join(out, arch)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    sd = load_file(os.path.join(folder, "model.safetensors"))
    w = GGUFWriter(os.path.join(out, arch + ".gguf"), arch=arch)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    rope = cfg.get("rope_theta") or cfg["rope_parameters"].get("rope_theta") or cfg["rope_parameters"]["full_attention"]["rope_theta"]
    w.add_rope_freq_base(float(rope))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    if arch == "gemma3":
        w.add_sliding_window(cfg["sliding_window"])
    if "head_dim" in cfg and arch in ("qwen3", "gemma3"):
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
    w.add_vocab_size(cfg["vocab_size"])
    for name, x in sd.items():
        x = x.astype(np.float32)
        if arch == "gemma3" and name.endswith("norm.weight"):
            x = x + np.float32(1)
        if name == "model.embed_tokens.weight":
            w.add_tensor("token_embd.weight", x)
        elif name == "model.norm.weight":
            w.add_tensor("output_norm.weight", x)
        elif name == "lm_head.weight":
            w.add_tensor("output.weight", x)
        else:
            parts = name.split(".")
            rest = ".".join(parts[3:])
            w.add_tensor(f"blk.{parts[2]}.{(GEMMA.get(rest) if arch == 'gemma3' else None) or NAMES[rest]}", x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", arch + ".gguf,", len(sd), "tensors")
