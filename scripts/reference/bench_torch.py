#!/usr/bin/env python3
"""PyTorch anchors for `winnow bench`, measured on this machine in the same session.

    /tmp/ref/bin/python scripts/reference/bench_torch.py [--json] [--repeats 3]

Never run in CI (it needs torch and transformers: `python3 -m venv /tmp/ref && /tmp/ref/bin/pip
install torch transformers`). Same shapes and the same timing rule as `winnow bench`: BERT-small =
BertForSequenceClassification with 4 layers, hidden 512, 8 heads, intermediate 2048, 2 labels;
batch 32 of sequence 128 random token ids; best of `--repeats` timings after one warm-up; torch
with 2 threads (this machine's cores).

  forward       model.eval(), torch.no_grad(), one batch                        -> examples/s
  training step model.train() (dropout 0.1), cross-entropy, backward, AdamW     -> examples/s
  grad norms    per-example ||d CE / d theta|| over every parameter, eval mode:
                  vmap: torch.func.vmap(grad(functional_call)) over the batch
                  loop: one backward per example (batch of 1)                   -> examples/s

With --model smollm2 (as `winnow bench --model smollm2`): SmolLM2-135M-Instruct from
models/smollm2's GGUF, dequantised to F32 by transformers (needs gguf and accelerate), or --model FOLDER, any Hugging
Face causal-LM folder (as `winnow bench --model FOLDER`; a Gemma 3 with its local layers), batch 8 of 128
random tokens: forward = logits at every position under no_grad; training step = next-token loss with
labels = input_ids, backward, AdamW; per-example gradient norms of each sequence's mean loss over the last
decoder layer (the faster of a single-example backward loop and torch.func.vmap) and over all parameters
(the loop), and over a peft LoRA adapter (r 8, alpha 16, q_proj and v_proj; needs peft).
"""
import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from torch.func import functional_call, grad, vmap  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402


def best(repeats, fn):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--model", help="smollm2 (models/smollm2's GGUF) or a Hugging Face causal-LM folder (as `winnow bench --model FOLDER`)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        return causal_lm(args)
    torch.manual_seed(1)
    B, T = 32, 128
    cfg = BertConfig(vocab_size=30522, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                     intermediate_size=2048, max_position_embeddings=512, num_labels=2,
                     attn_implementation="eager")
    model = BertForSequenceClassification(cfg)
    ids = torch.randint(1000, 21000, (B, T))
    ids[:, 0], ids[:, -1] = 2, 3
    mask = torch.ones(B, T, dtype=torch.long)
    labels = torch.arange(B) % 2

    n = 2048
    a, b = torch.full((n, n), 0.5), torch.full((n, n), 0.25)
    sgemm = 2 * n ** 3 / best(args.repeats, lambda: torch.mm(a, b)) / 1e9

    model.eval()

    def fwd():
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
    tf = best(args.repeats, fwd)

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)

    def step():
        opt.zero_grad(set_to_none=False)
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        opt.step()
    ts = best(args.repeats, step)

    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p, i, m, y):
        # No attention_mask under vmap (transformers inspects it with data-dependent control flow);
        # every token is real here, so the result is the same.
        logits = functional_call(model, p, (i.unsqueeze(0),)).logits
        return torch.nn.functional.cross_entropy(logits, y.unsqueeze(0))
    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0, 0))

    def norms_vmap():
        g = per_example(params, ids, mask, labels)
        return torch.sqrt(sum(v.flatten(1).pow(2).sum(1) for v in g.values()))
    tv = best(args.repeats, norms_vmap)

    def norms_loop():
        out = []
        for j in range(B):
            model.zero_grad(set_to_none=True)
            logits = model(input_ids=ids[j:j + 1], attention_mask=mask[j:j + 1]).logits
            torch.nn.functional.cross_entropy(logits, labels[j:j + 1]).backward()
            out.append(torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters() if p.grad is not None)))
        return out
    tl = best(args.repeats, norms_loop)

    r = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "sgemm_gflops": sgemm,
         "forward_examples_per_s": B / tf, "train_examples_per_s": B / ts,
         "grad_norm_vmap_examples_per_s": B / tv, "grad_norm_loop_examples_per_s": B / tl}
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        for k, v in r.items():
            print(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}")


def causal_lm(args):
    from transformers import AutoModelForCausalLM
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if args.model == "smollm2":
        model = AutoModelForCausalLM.from_pretrained(os.path.join(repo, "models/smollm2"), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                                     dtype=torch.float32, attn_implementation="eager")
    else:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager")
    torch.manual_seed(1)
    B, T = 8, 128
    ids = torch.randint(100, model.config.vocab_size, (B, T))
    model.eval()

    def fwd():
        with torch.no_grad():
            model(input_ids=ids)
    tf = best(args.repeats, fwd)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)

    def step():
        opt.zero_grad(set_to_none=False)
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
    ts = best(args.repeats, step)
    r = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "model": os.path.basename(args.model.rstrip("/")), "seq_len": T,
         "batch_size": B, "forward_examples_per_s": B / tf, "train_examples_per_s": B / ts}
    # Per-example squared gradient norms of each sequence's mean next-token loss, eval mode: over the last
    # decoder layer and over every parameter; the faster of a loop of single-example backward passes and
    # torch.func.vmap (last layer only: vmap over all 135M parameters per example does not fit).
    model.eval()
    L = model.config.num_hidden_layers
    named = dict(model.named_parameters())
    last = {n: p for n, p in named.items() if n.startswith(f"model.layers.{L - 1}.")}

    def loop(params):
        def run():
            for b in range(B):
                x = ids[b:b + 1]
                g = torch.autograd.grad(model(input_ids=x, labels=x).loss, params)
                sum(float((t ** 2).sum()) for t in g)
        return run
    frozen = {n: p.detach() for n, p in named.items() if n not in last}

    def loss_one(p, x):
        x = x.unsqueeze(0)
        return functional_call(model, {**frozen, **p}, (x,), {"labels": x}).loss

    def vmapped():
        with torch.no_grad():
            g = vmap(grad(loss_one), in_dims=(None, 0))({n: p.detach() for n, p in last.items()}, ids)
            sum((t.flatten(1) ** 2).sum(1) for t in g.values())
    t_loop_last = best(args.repeats, loop(list(last.values())))
    t_vmap_last = best(args.repeats, vmapped)
    t_loop_all = best(args.repeats, loop(list(named.values())))
    r.update({"grad_norms_last_layer_loop_examples_per_s": B / t_loop_last, "grad_norms_last_layer_vmap_examples_per_s": B / t_vmap_last,
              "grad_norms_last_layer_examples_per_s": B / min(t_loop_last, t_vmap_last), "grad_norms_all_examples_per_s": B / t_loop_all})
    # A LoRA adapter with peft (r 8, alpha 16 on q_proj and v_proj), B not zero: per-example gradient norms
    # over the adapter, the faster of the loop and vmap.
    from peft import LoraConfig, get_peft_model
    pm = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                                          init_lora_weights=False)).eval()
    lnamed = dict(pm.named_parameters())
    lora = {n: p for n, p in lnamed.items() if "lora_" in n}
    lfrozen = {n: p.detach() for n, p in lnamed.items() if n not in lora}

    def lloop():
        for b in range(B):
            x = ids[b:b + 1]
            g = torch.autograd.grad(pm(input_ids=x, labels=x).loss, list(lora.values()))
            sum(float((t ** 2).sum()) for t in g)

    def lloss(p, x):
        x = x.unsqueeze(0)
        return functional_call(pm, {**lfrozen, **p}, (), {"input_ids": x, "labels": x}).loss

    def lvmap():
        with torch.no_grad():
            g = vmap(grad(lloss), in_dims=(None, 0))({n: p.detach() for n, p in lora.items()}, ids)
            sum((t.flatten(1) ** 2).sum(1) for t in g.values())
    t_loop_lora = best(args.repeats, lloop)
    t_vmap_lora = best(args.repeats, lvmap)
    r.update({"grad_norms_lora_loop_examples_per_s": B / t_loop_lora, "grad_norms_lora_vmap_examples_per_s": B / t_vmap_lora,
              "grad_norms_lora_examples_per_s": B / min(t_loop_lora, t_vmap_lora)})
    print(json.dumps(r, sort_keys=True) if args.json else "\n".join(f"{k}: {v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
