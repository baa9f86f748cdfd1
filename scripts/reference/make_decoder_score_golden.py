"""Tiny Llama decoders with a real byte-level BPE tokenizer, decoder data in the three formats, and each
example's scores computed one example at a time with PyTorch autograd, for
Tests/WinnowTests/DecoderScoreGoldenTests.swift.

    /tmp/ref/bin/pip install torch transformers safetensors
    /tmp/ref/bin/python scripts/reference/make_decoder_score_golden.py Tests/Fixtures/decoder

Writes:
  tied/, untied/      LlamaForCausalLM (vocab 401 = Tests/Fixtures/tokenizer/bpe-plain, hidden 48, 2 layers,
                      4 heads of 12, 2 key/value heads, intermediate 80, max positions 256, norm weights
                      away from 1), embeddings tied to the output layer or not (torch.manual_seed(0));
                      tokenizer.json (bpe-plain) and tokenizer_config.json (SmolLM2's ChatML chat template,
                      eos_token <|im_end|>)
  text.jsonl, pc.jsonl, chat.jsonl   text / prompt + completion / messages examples
  golden.json         per model, file and example: the ids and scored flags (Winnow's rules, the chat
                      ids checked against transformers' apply_chat_template), loss (mean next-token
                      cross-entropy over scored tokens), el2n (mean ||softmax - onehot||_2 over them),
                      and the squared gradient norm of the loss over all, first-layer, last-layer,
                      embeddings and model.layers.1.mlp. tensors
Texts are truncated to MAX_LENGTH = 160 tokens. Deterministic on CPU in float32 (gradients in float64).
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

MAX_LENGTH = 160
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
tok_json = os.path.join(here, "..", "..", "Tests", "Fixtures", "tokenizer", "bpe-plain", "tokenizer.json")
CHAT_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                 "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
                 "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
tok = PreTrainedTokenizerFast(tokenizer_file=tok_json, eos_token="<|im_end|>", bos_token="<|im_start|>", pad_token="<s>")
tok.chat_template = CHAT_TEMPLATE
EOS = tok.convert_tokens_to_ids("<|im_end|>")


def ids(s):
    return tok(s, add_special_tokens=False)["input_ids"]


texts = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog near the river bank today.",
         "Hello", "Numbers like 12 and 345 appear here.", "she said: hello there, how are you doing?",
         "The the the the the the the the the the the the the the the the the the the the the the the the the the",
         "Short one.", "Pride and Prejudice is a novel by Jane Austen, published in 1813, about manners.",
         " ".join(["It is a truth universally acknowledged, that a single man in possession of a good fortune must be in want of a wife."] * 2)]
pcs = [("Question: what is two plus two?\nAnswer:", " four"), ("Translate to French: cat", " chat"),
       ("Write a short line about the sea.", " The sea is wide and grey under the morning sky, and it sings."),
       ("Summarise: the cat sat on the mat and slept all day long.", " A cat slept."),
       ("Is this review positive? 'I loved every minute of it.'", " yes"), ("Name a colour.", " blue")]
chats = [[{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"}],
         [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
          {"role": "assistant", "content": "Paris."}],
         [{"role": "user", "content": "Say a number"}, {"role": "assistant", "content": "42"},
          {"role": "user", "content": "Another"}, {"role": "assistant", "content": "7"}],
         # Contents starting with whitespace: the role's newline and the content's merge into one token.
         [{"role": "user", "content": "\n\nHello"}, {"role": "assistant", "content": "\n\nHi there"}],
         [{"role": "user", "content": "  indented"}, {"role": "assistant", "content": " ok\n"}]]


def encode_text(t):
    e = ids(t)[:MAX_LENGTH]
    return e, [False] + [True] * (len(e) - 1)


def encode_pc(p, c):
    pi, full = ids(p), ids(p + c)
    cut = len(pi) if full[:len(pi)] == pi else next(i for i in range(len(pi)) if i >= len(full) or full[i] != pi[i])
    e = full + [EOS]
    s = [False] * cut + [True] * (len(full) - cut) + [True]
    s[0] = False
    return e[:MAX_LENGTH], s[:MAX_LENGTH]


def encode_chat(msgs):
    turns = msgs if msgs[0]["role"] == "system" else [{"role": "system", "content": DEFAULT_SYSTEM}] + msgs
    e, s = [], []
    for m in turns:
        # Special tokens split the text first, so "ROLE\nCONTENT" is one piece of the rendered string; the
        # content's tokens start where "ROLE\n"'s own ids end (a token spanning both counts as content).
        head, body = ids(m["role"] + "\n"), ids(m["role"] + "\n" + m["content"])
        cut = len(head) if body[:len(head)] == head else next(i for i in range(len(head)) if i >= len(body) or body[i] != head[i])
        a = m["role"] == "assistant"
        for part, scored in ((ids("<|im_start|>"), False), (body[:cut], False), (body[cut:], a), (ids("<|im_end|>"), a), (ids("\n"), False)):
            e += part
            s += [scored] * len(part)
    full = tok.apply_chat_template(msgs, tokenize=True)
    full = full["input_ids"] if isinstance(full, dict) or hasattr(full, "keys") else full
    assert e == list(full), (e, full)
    s[0] = False
    return e[:MAX_LENGTH], s[:MAX_LENGTH]


files = {
    "text": ([{"text": t, "id": f"t{i}"} for i, t in enumerate(texts)], [encode_text(t) for t in texts]),
    "pc": ([{"prompt": p, "completion": c, "label": "qa" if "?" in p else "other"} for p, c in pcs], [encode_pc(p, c) for p, c in pcs]),
    "chat": ([{"messages": m} for m in chats], [encode_chat(m) for m in chats]),
}
for name, (rows, _) in files.items():
    with open(os.path.join(out, name + ".jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")

SELECTIONS = {"all": lambda n: True, "first-layer": lambda n: n.startswith("model.layers.0."),
              "last-layer": lambda n: n.startswith("model.layers.1."), "embeddings": lambda n: n.startswith("model.embed_tokens."),
              "model.layers.1.mlp.": lambda n: n.startswith("model.layers.1.mlp.")}
golden = {}
for tied in (True, False):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=401, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0,
                      tie_word_embeddings=tied, bos_token_id=2, eos_token_id=EOS, pad_token_id=None, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "embed" in n or "lm_head" in n:
                p.mul_(8)       # larger logits, so that EL2N and the head's gradient are far from uniform
    folder = os.path.join(out, "tied" if tied else "untied")
    model.save_pretrained(folder, safe_serialization=True)
    shutil.copy(tok_json, os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": CHAT_TEMPLATE, "eos_token": "<|im_end|>", "bos_token": "<|im_start|>",
                   "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)
    model64 = model.double()
    named = dict(model64.named_parameters())
    per_model = {}
    flat = {}
    for name, (_, encs) in files.items():
        rows = []
        for e, s in encs:
            x = torch.tensor([e])
            logits = model64(input_ids=x).logits[0]
            tgt_pos = [j for j in range(1, len(e)) if s[j]]
            if not tgt_pos:      # nothing to score: Winnow writes 0
                rows.append({"ids": e, "scored": s, "loss": 0.0, "el2n": 0.0, "sq_norm": {k: 0.0 for k in SELECTIONS}})
                flat.setdefault(name, []).append({k: torch.zeros(sum(p.numel() for n, p in named.items() if SELECTIONS[k](n)), dtype=torch.float64)
                                                  for k in ("all", "last-layer")})
                continue
            z = logits[[j - 1 for j in tgt_pos]]
            y = torch.tensor([e[j] for j in tgt_pos], dtype=torch.long)
            loss = torch.nn.functional.cross_entropy(z, y)
            p = torch.softmax(z, -1)
            el2n = (p - torch.nn.functional.one_hot(y, 401).double()).norm(dim=-1).mean()
            grads = torch.autograd.grad(loss, list(named.values()))
            sq = {k: sum(float((g ** 2).sum()) for (n, _), g in zip(named.items(), grads) if sel(n)) for k, sel in SELECTIONS.items()}
            rows.append({"ids": e, "scored": s, "loss": float(loss), "el2n": float(el2n), "sq_norm": sq})
            flat.setdefault(name, []).append({k: torch.cat([g.flatten() for (n, _), g in zip(named.items(), grads) if sel(n)])
                                             for k, sel in SELECTIONS.items() if k in ("all", "last-layer")})
        per_model[name] = rows
    # Train-to-test: gradient dot products of every pc (target) example with every text (training) example.
    per_model["dots_pc_text"] = {k: [[float(t[k] @ r[k]) for r in flat["text"]] for t in flat["pc"]] for k in ("all", "last-layer")}
    golden["tied" if tied else "untied"] = per_model
with open(os.path.join(out, "golden.json"), "w") as f:
    json.dump(golden, f, indent=1)
print("wrote", out)
