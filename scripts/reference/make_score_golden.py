#!/usr/bin/env python3
"""Reference data-influence scores (docs/contracts.md §4) for the tiny BERT run, by torch autograd.

    HF_HUB_OFFLINE=1 /tmp/ref/bin/python scripts/reference/make_score_golden.py

Needs Tests/Fixtures/tiny-bert/{run,null-run,train.jsonl,test.jsonl} from make_tiny_run.py.
Writes Tests/Fixtures/tiny-bert/scores.safetensors. Definitions (K = all checkpoints of run, in step
order; every model in eval mode, float32, eager attention; each example run alone, i.e. no padding,
which equals a padded batch because pad positions are masked; statistics accumulated in float64 and
stored as F32):

  z = logits, p = softmax(z), y = label index (label2id of the run's config), CE = cross-entropy.
  eta_k   = learning_rate of the log_history entry (checkpoint-k/trainer_state.json) with the largest
            step <= k.
  g_k(x)  = d CE(x) / d theta at checkpoint k, theta = every named parameter of
            BertForSequenceClassification (all 41 tensors), flattened.
  vog     = mean over real tokens t and dims h of sqrt( (1/K) sum_k (G_k[t,h] - M[t,h])^2 ),
            G_k = d z_y / d E, E = word-embedding rows fed as inputs_embeds (before position/type
            embeddings and LayerNorm), real tokens = all tokens of the example incl. [CLS]/[SEP],
            M = mean over k of G_k.
  el2n    = (1/K) sum_k || p_k - onehot(y) ||_2
  grand   = (1/K) sum_k || g_k ||_2
  tracin_self_all        = sum_k eta_k || g_k ||^2
  tracin_self_classifier = sum_k eta_k || g_k restricted to classifier.weight, classifier.bias ||^2
  tracin_test[i, j]      = sum_k eta_k g_k(test_i) . g_k(train_j)       (all parameters)
  pvi     = -log2 p_null(y | [CLS] [SEP]) + log2 p(y | x), both from the LAST checkpoint of
            null-run and run respectively.
Extra tensors for debugging: labels, test_labels, lengths (real tokens), logits_k [K,N,2],
el2n_k, grand_k, sqnorm_all_k, sqnorm_classifier_k [K,N], pvi_log2p, pvi_log2p_null [N].
"""
import json
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import BertForSequenceClassification, BertTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "Tests" / "Fixtures" / "tiny-bert"
RUN = FIX / "run"
NULL_RUN = FIX / "null-run"
MAX_LENGTH = 32


def checkpoints(run: Path):
    cks = [p for p in run.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")]
    return sorted(cks, key=lambda p: int(p.name.split("-")[1]))


def eta_of(ck: Path) -> float:
    step = int(ck.name.split("-")[1])
    state = json.loads((ck / "trainer_state.json").read_text())
    entries = [h for h in state["log_history"] if "learning_rate" in h and h["step"] <= step]
    best = max(entries, key=lambda h: h["step"])
    return float(best["learning_rate"])


def load(ck: Path):
    m = BertForSequenceClassification.from_pretrained(str(ck), attn_implementation="eager", dtype=torch.float32)
    m.eval()
    return m


def read_jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def encode(tok, rows, label2id):
    out = []
    for r in rows:
        e = tok(r["text"], truncation=True, max_length=MAX_LENGTH)
        out.append((torch.tensor([e["input_ids"]]), torch.tensor([e["token_type_ids"]]), label2id[r["label"]]))
    return out


def per_example(model, ids, tt, y):
    """Return logits [2], flat CE gradient over all params (float32), classifier sq-norm, G = dz_y/dE."""
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, token_type_ids=tt).logits[0]
    ce = torch.nn.functional.cross_entropy(logits[None], torch.tensor([y]))
    grads = torch.autograd.grad(ce, params)
    flat = torch.cat([g.reshape(-1) for g in grads])
    cls_sq = sum(float((g.double() ** 2).sum()) for n, g in zip(names, grads) if n.startswith("classifier."))
    emb = model.bert.embeddings.word_embeddings(ids).detach().requires_grad_(True)
    z = model(inputs_embeds=emb, token_type_ids=tt).logits[0]
    (G,) = torch.autograd.grad(z[y], emb)
    return logits.detach(), flat.detach(), cls_sq, G[0].detach()


def main():
    torch.manual_seed(0)
    cks = checkpoints(RUN)
    steps = [int(c.name.split("-")[1]) for c in cks]
    etas = [eta_of(c) for c in cks]
    print("checkpoints", steps, "eta", etas)
    conf = json.loads((cks[-1] / "config.json").read_text())
    label2id = conf["label2id"]
    tok = BertTokenizer(vocab=str(RUN / "vocab.txt"), do_lower_case=True)
    train = encode(tok, read_jsonl(FIX / "train.jsonl"), label2id)
    test = encode(tok, read_jsonl(FIX / "test.jsonl"), label2id)
    N, NT, K = len(train), len(test), len(cks)

    logits_k = torch.zeros(K, N, 2, dtype=torch.float64)
    el2n_k = torch.zeros(K, N, dtype=torch.float64)
    grand_k = torch.zeros(K, N, dtype=torch.float64)
    sq_all_k = torch.zeros(K, N, dtype=torch.float64)
    sq_cls_k = torch.zeros(K, N, dtype=torch.float64)
    tracin_test = torch.zeros(NT, N, dtype=torch.float64)
    G_all = [[None] * K for _ in range(N)]

    for k, ck in enumerate(cks):
        model = load(ck)
        train_g = []
        for i, (ids, tt, y) in enumerate(train):
            logits, flat, cls_sq, G = per_example(model, ids, tt, y)
            p = torch.softmax(logits.double(), -1)
            onehot = torch.zeros(2, dtype=torch.float64)
            onehot[y] = 1
            logits_k[k, i] = logits.double()
            el2n_k[k, i] = torch.linalg.vector_norm(p - onehot)
            sq = float((flat.double() ** 2).sum())
            sq_all_k[k, i] = sq
            grand_k[k, i] = sq ** 0.5
            sq_cls_k[k, i] = cls_sq
            G_all[i][k] = G.double()
            train_g.append(flat.double())
        train_g = torch.stack(train_g)  # [N, P]
        test_g = torch.stack([per_example(model, ids, tt, y)[1].double() for ids, tt, y in test])
        tracin_test += etas[k] * (test_g @ train_g.T)
        print(f"checkpoint-{steps[k]}: P = {train_g.shape[1]} params, mean el2n {el2n_k[k].mean():.6f}")

    eta = torch.tensor(etas, dtype=torch.float64)
    vog = torch.zeros(N, dtype=torch.float64)
    for i in range(N):
        G = torch.stack(G_all[i])  # [K, T, H]
        std = torch.sqrt(((G - G.mean(0, keepdim=True)) ** 2).mean(0))  # population std over k
        vog[i] = std.mean()

    # PVI from the last checkpoints of run and null-run
    model = load(cks[-1])
    null_model = load(checkpoints(NULL_RUN)[-1])
    e0 = tok("")
    null_ids, null_tt = torch.tensor([e0["input_ids"]]), torch.tensor([e0["token_type_ids"]])
    with torch.no_grad():
        null_logp = torch.log_softmax(null_model(input_ids=null_ids, token_type_ids=null_tt).logits[0].double(), -1)
        log2p = torch.zeros(N, dtype=torch.float64)
        log2p_null = torch.zeros(N, dtype=torch.float64)
        for i, (ids, tt, y) in enumerate(train):
            logp = torch.log_softmax(model(input_ids=ids, token_type_ids=tt).logits[0].double(), -1)
            log2p[i] = logp[y] / torch.log(torch.tensor(2.0, dtype=torch.float64))
            log2p_null[i] = null_logp[y] / torch.log(torch.tensor(2.0, dtype=torch.float64))
    pvi = -log2p_null + log2p

    f32 = lambda t: t.to(torch.float32).contiguous()  # noqa: E731
    out = {
        "vog": f32(vog),
        "el2n": f32(el2n_k.mean(0)),
        "grand": f32(grand_k.mean(0)),
        "tracin_self_all": f32((eta[:, None] * sq_all_k).sum(0)),
        "tracin_self_classifier": f32((eta[:, None] * sq_cls_k).sum(0)),
        "tracin_test": f32(tracin_test),
        "pvi": f32(pvi),
        "eta": f32(eta),
        "steps": torch.tensor(steps, dtype=torch.int64),
        "labels": torch.tensor([y for _, _, y in train], dtype=torch.int64),
        "test_labels": torch.tensor([y for _, _, y in test], dtype=torch.int64),
        "lengths": torch.tensor([ids.shape[1] for ids, _, _ in train], dtype=torch.int64),
        "logits_k": f32(logits_k),
        "el2n_k": f32(el2n_k),
        "grand_k": f32(grand_k),
        "sqnorm_all_k": f32(sq_all_k),
        "sqnorm_classifier_k": f32(sq_cls_k),
        "pvi_log2p": f32(log2p),
        "pvi_log2p_null": f32(log2p_null),
    }
    save_file(out, str(FIX / "scores.safetensors"),
              # one metadata key only: safetensors writes the metadata map in random order
              metadata={"format": "pt"})
    for name in ["vog", "el2n", "grand", "tracin_self_all", "tracin_self_classifier", "pvi"]:
        t = out[name]
        print(f"{name:24s} min {t.min():.6g} max {t.max():.6g} mean {t.mean():.6g}")
    print("tracin_test", list(out["tracin_test"].shape), "range", out["tracin_test"].min().item(),
          out["tracin_test"].max().item())


if __name__ == "__main__":
    main()
