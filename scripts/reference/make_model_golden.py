#!/usr/bin/env python3
"""Golden tensors for the tiny BERT classifier (run by hand, never in CI).

    HF_HUB_OFFLINE=1 /tmp/ref/bin/python scripts/reference/make_model_golden.py

Needs Tests/Fixtures/tiny-bert/run/ from make_tiny_run.py. Writes
  Tests/Fixtures/tiny-bert/golden.safetensors      forward/backward/optimizer goldens (last checkpoint)
  Tests/Fixtures/tiny-bert/paperhead/{model.safetensors, config.json, golden.safetensors}
  Tests/Fixtures/tiny-bert/dtypes/{model-f16.safetensors, model-bf16.safetensors}
All float tensors are F32 (except the dtypes files), integer tensors I64. Everything runs in
model.eval() (dropout off), eager attention, float32, CPU.
"""
import json
import os
import re
import shutil
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "Tests" / "Fixtures" / "tiny-bert"
RUN = FIX / "run"
MAX_LENGTH = 32


def last_checkpoint(run: Path) -> Path:
    cks = sorted((p for p in run.iterdir() if p.name.startswith("checkpoint-")),
                 key=lambda p: int(p.name.split("-")[1]))
    return cks[-1]


def read_jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def make_batch(tok):
    """4 single sentences of different token lengths from train.jsonl + 2 pairs from pairs.jsonl."""
    train = read_jsonl(FIX / "train.jsonl")
    pairs = read_jsonl(FIX / "pairs.jsonl")
    label2id = {"neg": 0, "pos": 1}
    encs = [(i, tok(r["text"], truncation=True, max_length=MAX_LENGTH)) for i, r in enumerate(train)]
    by_len = {}
    for i, e in encs:
        by_len.setdefault(len(e["input_ids"]), i)  # first example of each length
    lengths = sorted(by_len)
    # shortest, longest (truncated to 32 if any is longer), and two in between
    picks = [lengths[0], lengths[len(lengths) // 3], lengths[(2 * len(lengths)) // 3], lengths[-1]]
    rows, sources = [], []
    for L in picks:
        i = by_len[L]
        e = encs[i][1]
        rows.append((e["input_ids"], e["token_type_ids"], label2id[train[i]["label"]]))
        sources.append({"kind": "single", "file": "train.jsonl", "index": i, "id": train[i]["id"],
                        "text": train[i]["text"]})
    # pair-003 has a long premise; pair-000 is short. Labels: entailment -> 1, other -> 0.
    for j in (0, 3):
        p = pairs[j]
        e = tok(p["premise"], p["hypothesis"], truncation="longest_first", max_length=MAX_LENGTH)
        rows.append((e["input_ids"], e["token_type_ids"], 1 if p["label"] == "entailment" else 0))
        sources.append({"kind": "pair", "file": "pairs.jsonl", "index": j, "id": p["id"],
                        "premise": p["premise"], "hypothesis": p["hypothesis"]})
    T = max(len(r[0]) for r in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.int64)
    tt = torch.zeros(len(rows), T, dtype=torch.int64)
    am = torch.zeros(len(rows), T, dtype=torch.int64)
    for b, (a, t, _) in enumerate(rows):
        ids[b, : len(a)] = torch.tensor(a)
        tt[b, : len(a)] = torch.tensor(t)
        am[b, : len(a)] = 1
    labels = torch.tensor([r[2] for r in rows], dtype=torch.int64)
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": am, "labels": labels}, sources


def decay_names(model):
    """Hugging Face Trainer's rule: no weight decay on biases and LayerNorm parameters."""
    ln_params = set()
    for mname, m in model.named_modules():
        if isinstance(m, torch.nn.LayerNorm):
            for pname, _ in m.named_parameters(recurse=False):
                ln_params.add(f"{mname}.{pname}" if mname else pname)
    pat = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")
    return {n for n, _ in model.named_parameters() if n not in ln_params and not pat.search(n.lower())}


def load_classifier(ck: Path):
    model = BertForSequenceClassification.from_pretrained(str(ck), attn_implementation="eager",
                                                          dtype=torch.float32)
    model.eval()
    return model


def grads_of(model, batch):
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    out.loss.backward()
    return out, {f"grad.{n}": p.grad.detach().clone() for n, p in model.named_parameters()}


def optimizer_run(make_model, batch, kind):
    model = make_model()
    if kind == "adamw":
        dec = decay_names(model)
        groups = [
            {"params": [p for n, p in model.named_parameters() if n in dec], "weight_decay": 0.01},
            {"params": [p for n, p in model.named_parameters() if n not in dec], "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01, foreach=False)
    losses = []
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out = {f"{kind}.{n}": p.detach().clone() for n, p in model.named_parameters()}
    out[f"{kind}_loss"] = torch.tensor(losses, dtype=torch.float32)  # loss before each step
    return out


class PaperHeadBert(BertForSequenceClassification):
    """BertForSequenceClassification with the paper's 3-layer head (64 wide, GELU between)."""

    def __init__(self, config, head_seed=1):
        super().__init__(config)
        h = config.hidden_size
        torch.manual_seed(head_seed)  # PyTorch default nn.Linear init under seed 1
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(h, 64), torch.nn.GELU(), torch.nn.Linear(64, 64), torch.nn.GELU(),
            torch.nn.Linear(64, config.num_labels),
        )


def main():
    torch.manual_seed(0)
    ck = last_checkpoint(RUN)
    print("last checkpoint", ck)
    tok = BertTokenizer(vocab=str(RUN / "vocab.txt"), do_lower_case=True)
    batch, sources = make_batch(tok)
    print("batch input_ids", list(batch["input_ids"].shape), "lengths", batch["attention_mask"].sum(1).tolist())

    # ---- forward / backward goldens
    model = load_classifier(ck)
    out = {k: v for k, v in batch.items()}
    model.zero_grad(set_to_none=True)
    res = model(**batch, output_hidden_states=True)
    res.loss.backward()
    out["logits"] = res.logits.detach().clone()
    out["loss"] = res.loss.detach().clone().reshape(())
    for i, h in enumerate(res.hidden_states):
        out[f"hidden.{i}"] = h.detach().clone()
    for n, p in model.named_parameters():
        out[f"grad.{n}"] = p.grad.detach().clone()
    with torch.no_grad():
        out["pooled"] = model.bert(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                                   attention_mask=batch["attention_mask"]).pooler_output.clone()
        ref = torch.nn.functional.cross_entropy(res.logits, batch["labels"])
        assert torch.allclose(ref, res.loss)

    # d(sum_b logits[b, y_b]) / d inputs_embeds
    model.zero_grad(set_to_none=True)
    emb = model.bert.embeddings.word_embeddings(batch["input_ids"]).detach().requires_grad_(True)
    logits = model(inputs_embeds=emb, token_type_ids=batch["token_type_ids"],
                   attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(logits, res.logits, atol=1e-6)
    logits.gather(1, batch["labels"][:, None]).sum().backward()
    out["inputs_embeds_grad"] = emb.grad.detach().clone()
    pad = batch["attention_mask"] == 0
    print("max |inputs_embeds_grad| on pad positions", out["inputs_embeds_grad"][pad].abs().max().item())

    # optimizers: 3 steps each on the same batch, eval mode, mean CE
    out.update(optimizer_run(lambda: load_classifier(ck), batch, "adamw"))
    out.update(optimizer_run(lambda: load_classifier(ck), batch, "sgd"))

    out = {k: (v.contiguous() if v.dtype == torch.int64 else v.to(torch.float32).contiguous()) for k, v in out.items()}
    save_file(out, str(FIX / "golden.safetensors"), metadata={"format": "pt"})
    (FIX / "golden-batch.json").write_text(json.dumps(sources, indent=1, ensure_ascii=False) + "\n")
    print("golden.safetensors", len(out), "tensors; loss", out["loss"].item())

    # ---- paper head variant
    pdir = FIX / "paperhead"
    pdir.mkdir(exist_ok=True)
    cfg = BertConfig.from_pretrained(str(ck))
    cfg._attn_implementation = "eager"
    pmodel = PaperHeadBert(cfg)
    sd = load_file(str(ck / "model.safetensors"))
    enc = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
    missing, unexpected = pmodel.load_state_dict(enc, strict=False)
    assert not unexpected and all(m.startswith("classifier.") for m in missing), (missing, unexpected)
    pmodel.eval()
    psd = {k: v.detach().clone().contiguous() for k, v in pmodel.state_dict().items()}
    save_file(psd, str(pdir / "model.safetensors"), metadata={"format": "pt"})
    conf = json.loads((ck / "config.json").read_text())
    conf["winnow_head"] = "paper"
    (pdir / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    shutil.copyfile(RUN / "vocab.txt", pdir / "vocab.txt")
    pres = pmodel(**batch)
    pres.loss.backward()
    pout = {k: v for k, v in batch.items()}
    pout["logits"] = pres.logits.detach().clone()
    pout["loss"] = pres.loss.detach().clone().reshape(())
    for n, p in pmodel.named_parameters():
        pout[f"grad.{n}"] = p.grad.detach().clone()
    save_file(pout, str(pdir / "golden.safetensors"), metadata={"format": "pt"})
    print("paperhead: head params", [n for n in psd if n.startswith("classifier.")], "loss", pres.loss.item())

    # ---- dtype variants of the last checkpoint
    ddir = FIX / "dtypes"
    ddir.mkdir(exist_ok=True)
    save_file({k: v.to(torch.float16).contiguous() for k, v in sd.items()},
              str(ddir / "model-f16.safetensors"), metadata={"format": "pt"})
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in sd.items()},
              str(ddir / "model-bf16.safetensors"), metadata={"format": "pt"})
    print("dtypes written from", ck / "model.safetensors")


if __name__ == "__main__":
    main()
