"""A tiny random Gemma 3 text model (norms scaling by 1 + w, embeddings by sqrt(hidden), GELU-tanh gating, norms
on the attention's and MLP's outputs, per-head q and k norms, local and global layers with their own RoPE bases,
query_pre_attn_scalar) saved as a Hugging Face folder, with transformers' logits, gradients and each example's
squared gradient norm, for Tests/WinnowTests/LlamaGoldenTests.swift.

    /tmp/torchenv/bin/pip install torch transformers safetensors
    /tmp/torchenv/bin/python scripts/reference/make_gemma3_golden.py Tests/Fixtures/llama

Writes gemma3/config.json, gemma3/model.safetensors (Gemma3ForCausalLM: vocab 623, hidden 64, 3 layers (local,
global, local; window 12), 4 heads of 24, 2 key/value heads, intermediate 96, query_pre_attn_scalar 20, RoPE bases
1e6 and 1e4, tied embeddings; torch.manual_seed(5), every norm weight drawn from N(0, 0.3) so that they matter), with the Gemma-form tokenizer of Tests/Fixtures/tokenizer/spm-gemma (623 tokens), and
gemma3-golden.safetensors: logits [3, 9, 623] of the right-padded batch of golden.safetensors, grad.NAME of the
batch loss with labels -100 at padding, sqnorm.all / sqnorm.last [3]: each example's squared norm of the gradient
of its own mean next-token loss over every tensor and over model.layers.2.* (float64 sums of float32 gradients),
and vog.grad [tokens, 64]: d (mean over each example's targets of the target's logit) / d inputs_embeds on its
real tokens, packed in batch order. gemma3-cls/: Gemma3TextForSequenceClassification with the same body and a score
head drawn from N(0, 0.3) (labels a, b, c), and in gemma3-golden.safetensors cls_logits [3, 3] and cls.grad.NAME of
the cross-entropy with labels [2, 0, 1] (pooled at each row's last token that is not the pad id 0). gemma3-lora/: a
peft LoRA adapter on gemma3/ (r 4, alpha 8, every projection: q, k, v, o, gate, up, down; B drawn from N(0, 0.05) so
that it is not zero), and lora.sqnorm [3]: each example's squared norm of the gradient of its own mean next-token
loss over the adapter's tensors.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, Gemma3TextForSequenceClassification

out = sys.argv[1]
g = load_file(os.path.join(out, "golden.safetensors"))
ids, mask = g["input_ids"], g["attention_mask"]
torch.manual_seed(5)
cfg = Gemma3TextConfig(vocab_size=623, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=24, max_position_embeddings=64, rms_norm_eps=1e-6,
                       query_pre_attn_scalar=20, sliding_window=12,
                       layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                       rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
                                        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}},
                       tie_word_embeddings=True, pad_token_id=0, bos_token_id=2, eos_token_id=1,
                       attn_implementation="eager")
model = Gemma3ForCausalLM(cfg).float().eval()
with torch.no_grad():
    for n, p in model.named_parameters():
        if "norm" in n:
            p.copy_(0.3 * torch.randn_like(p))
model.save_pretrained(os.path.join(out, "gemma3"), safe_serialization=True)
for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(out, "..", "tokenizer", "spm-gemma", name), os.path.join(out, "gemma3", name))
golden = {}
with torch.no_grad():
    golden["logits"] = model(input_ids=ids, attention_mask=mask).logits.float()
labels = ids.clone()
labels[mask == 0] = -100
model.zero_grad()
model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
for n, p in model.named_parameters():
    golden["grad." + n] = p.grad.detach().clone()
sq_all, sq_last, vog = [], [], []
for b in range(ids.shape[0]):
    n = int(mask[b].sum())
    model.zero_grad()
    model(input_ids=ids[b:b + 1, :n], labels=ids[b:b + 1, :n]).loss.backward()
    sq_all.append(sum(p.grad.double().pow(2).sum() for p in model.parameters()))
    sq_last.append(sum(p.grad.double().pow(2).sum() for name, p in model.named_parameters() if name.startswith("model.layers.2.")))
    # VoG's gradient: inputs_embeds are the scaled embeddings (Gemma3TextScaledWordEmbedding's output).
    emb = model.model.embed_tokens(ids[b:b + 1, :n]).detach().requires_grad_(True)
    logits = model(inputs_embeds=emb).logits[0]
    target = ids[b, 1:n]
    logits[torch.arange(n - 1), target].mean().backward()
    vog.append(emb.grad[0].detach().clone())
golden["sqnorm.all"] = torch.tensor(sq_all, dtype=torch.float64)
golden["sqnorm.last"] = torch.tensor(sq_last, dtype=torch.float64)
golden["vog.grad"] = torch.cat(vog, 0)
cls_cfg = Gemma3TextConfig.from_dict(cfg.to_dict())
cls_cfg.num_labels = 3
cls_cfg.id2label = {0: "a", 1: "b", 2: "c"}
cls_cfg.label2id = {"a": 0, "b": 1, "c": 2}
cls = Gemma3TextForSequenceClassification(cls_cfg).float().eval()
with torch.no_grad():
    state = {k: v for k, v in model.state_dict().items() if k.startswith("model.")}
    missing = cls.load_state_dict(state, strict=False)
    assert missing.missing_keys == ["score.weight"], missing
    cls.score.weight.copy_(0.3 * torch.randn_like(cls.score.weight))
cls.save_pretrained(os.path.join(out, "gemma3-cls"), safe_serialization=True)
for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(out, "..", "tokenizer", "spm-gemma", name), os.path.join(out, "gemma3-cls", name))
cls.zero_grad()
o = cls(input_ids=ids, attention_mask=mask, labels=torch.tensor([2, 0, 1]))
o.loss.backward()
golden["cls_logits"] = o.logits.detach().float()
for n, p in cls.named_parameters():
    golden["cls.grad." + n] = p.grad.detach().clone()
from peft import LoraConfig, get_peft_model  # noqa: E402

base = Gemma3ForCausalLM.from_pretrained(os.path.join(out, "gemma3"), dtype=torch.float32, attn_implementation="eager").eval()
lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
with torch.no_grad():
    for n, p in lora.named_parameters():
        if "lora_B" in n:
            p.copy_(0.05 * torch.randn_like(p))
lora.save_pretrained(os.path.join(out, "gemma3-lora"))
os.remove(os.path.join(out, "gemma3-lora", "README.md"))     # peft's model card
cfg_path = os.path.join(out, "gemma3-lora", "adapter_config.json")
ac = json.load(open(cfg_path))
ac["base_model_name_or_path"] = "../gemma3"
json.dump(ac, open(cfg_path, "w"), indent=2, sort_keys=True)
sq = []
for b in range(ids.shape[0]):
    n = int(mask[b].sum())
    lora.zero_grad()
    lora(input_ids=ids[b:b + 1, :n], labels=ids[b:b + 1, :n]).loss.backward()
    sq.append(sum(p.grad.double().pow(2).sum() for name, p in lora.named_parameters() if "lora_" in name))
golden["lora.sqnorm"] = torch.tensor(sq, dtype=torch.float64)
save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(out, "gemma3-golden.safetensors"), metadata={"format": "pt"})
print("wrote", len(golden), "tensors;", [n for n, _ in model.named_parameters()][:14])
