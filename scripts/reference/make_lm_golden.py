#!/usr/bin/env python3
"""Golden tensors for the language models (run by hand, never in CI).

    /tmp/ref/bin/python scripts/reference/make_lm_golden.py

For each objective a tiny model is initialised by transformers with a fixed seed and saved with
save_pretrained (safetensors; the decoder is tied to the word embeddings):
  Tests/Fixtures/lm/mlm/     BertForMaskedLM
  Tests/Fixtures/lm/causal/  BertLMHeadModel (is_decoder=True: causal self-attention)
each with config.json, model.safetensors, vocab.txt and golden.safetensors holding
  input_ids, attention_mask [B,T] (I64), targets [B*T] (I64, -1 = no loss),
  logits [B*T, V] at every position (eval mode), loss (winnow's: the mean over samples of each sample's
  mean token cross-entropy over its targets), and grad.<name> for every parameter of that loss.
Float tensors F32; everything in eval mode (no dropout), eager attention, CPU.
"""
import os
import shutil
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import BertConfig, BertForMaskedLM, BertLMHeadModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VOCAB = ROOT / "Tests" / "Fixtures" / "tiny-bert" / "vocab.txt"
OUT = ROOT / "Tests" / "Fixtures" / "lm"


def config(causal: bool) -> BertConfig:
    v = sum(1 for _ in open(VOCAB, encoding="utf-8"))
    return BertConfig(vocab_size=v, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                      max_position_embeddings=64, is_decoder=causal, attn_implementation="eager")


def batch(v: int):
    g = torch.Generator().manual_seed(7)
    B, T = 3, 10
    lengths = [10, 7, 4]
    ids = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b, L in enumerate(lengths):
        ids[b, :L] = torch.randint(5, v, (L,), generator=g)
        ids[b, 0] = 2  # [CLS] in the fixture vocabulary
        mask[b, :L] = 1
    return ids, mask, lengths


def winnow_loss(logits, targets, B, T):
    ce = torch.nn.functional.cross_entropy(logits, targets.clamp(min=0), reduction="none")
    ce = torch.where(targets >= 0, ce, torch.zeros_like(ce)).view(B, T)
    counts = (targets.view(B, T) >= 0).sum(1)
    per = ce.sum(1) / counts.clamp(min=1)
    has = counts > 0
    return per[has].mean()


def main():
    for name, causal in [("mlm", False), ("causal", True)]:
        torch.manual_seed(11 if causal else 3)
        cfg = config(causal)
        model = (BertLMHeadModel if causal else BertForMaskedLM)(cfg).eval()
        # Non-trivial LayerNorm and bias values so their gradients are checked too.
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "LayerNorm" in n or n.endswith("bias"):
                    p.add_(0.05 * torch.randn_like(p))
        d = OUT / name
        if d.exists():
            shutil.rmtree(d)
        model.save_pretrained(d, safe_serialization=True)
        shutil.copy(VOCAB, d / "vocab.txt")
        ids, mask, lengths = batch(cfg.vocab_size)
        B, T = ids.shape
        targets = torch.full((B, T), -1, dtype=torch.long)
        if causal:
            for b, L in enumerate(lengths):
                targets[b, : L - 1] = ids[b, 1:L]
        else:
            g = torch.Generator().manual_seed(5)
            for b, L in enumerate(lengths):
                for t in range(1, L):
                    if torch.rand(1, generator=g).item() < 0.4:
                        targets[b, t] = ids[b, t]
                        ids[b, t] = 4  # [MASK]
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
        logits = out.logits.reshape(B * T, -1)
        loss = winnow_loss(logits, targets.reshape(-1), B, T)
        model.zero_grad()
        loss.backward()
        tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids), "targets": targets.reshape(-1),
                   "logits": logits.detach().contiguous(), "loss": loss.detach().reshape(1)}
        for n, p in model.named_parameters():
            if p.grad is not None:
                tensors["grad." + n] = p.grad.detach().clone().contiguous()
        save_file(tensors, str(d / "golden.safetensors"))
        print(name, "loss", float(loss), "params", sum(1 for _ in model.named_parameters()))


if __name__ == "__main__":
    main()
