"""Chat messages as ids through real chat templates, for Tests/WinnowTests/ChatTemplateTests.swift: the ids
transformers' apply_chat_template(messages, tokenize=True) gives, and the assistant turns' tokens found
independently of Winnow's method (from the fast tokenizer's offsets).

    /tmp/ref/bin/pip install transformers jinja2
    /tmp/ref/bin/python scripts/reference/make_chat_template_golden.py Tests/Fixtures/chat-templates/golden.json   # first
    /tmp/ref/bin/python scripts/reference/make_chat_ids_golden.py Tests/Fixtures/chat-templates/ids.json

Templates (from golden.json): Qwen2.5, Llama 3.2, Gemma 2, Phi-3.5, Mistral Nemo, SmolLM3, DeepSeek-R1 (Qwen
distill) and Granite 3.3. Tokenizers: the tiny decoder's byte-level BPE (Tests/Fixtures/decoder/tied) and the
SentencePiece fixture (Tests/Fixtures/tokenizer/spm-legacy), each with its special tokens. For each
conversation with an assistant turn (four of roles and contents, and the whole conversations of lines.jsonl:
tools, tool calls, reasoning, contents of parts; a case's "line" is its 0-based line there): "input_ids" = apply_chat_template(..., tokenize=True) (strftime_now fixed
at 2026-12-07 09:05 as in golden.json), and "scored" = 1 for every token whose character span (offsets of
the rendered text) ends inside an assistant turn: from the end of the messages before it rendered with
add_generation_prompt to where the rendering that ends with the turn and the whole conversation's part
(what a template writes only after the last message, such as Phi-3.5's EOS, belongs to the last turn),
trailing whitespace aside. A conversation whose earlier turns the template writes otherwise once it goes on
(Mistral Nemo puts the system message into the last user turn) is marked "not_located"; one the template
refuses carries its "error".
"""
import datetime as dt
import json
import os
import sys

import transformers.utils.chat_template_utils as ctu
from transformers import AutoTokenizer


class FixedDatetime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 12, 7, 9, 5, 0)


ctu.datetime = FixedDatetime
out = sys.argv[1]
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
golden = {t["name"]: t["template"] for t in json.load(open(os.path.join(repo, "Tests/Fixtures/chat-templates/golden.json"), encoding="utf-8"))}
names = ["Qwen-Qwen2.5-7B-Instruct", "meta-llama-Llama-3.2-3B-Instruct", "google-gemma-2-2b-it", "microsoft-Phi-3.5-mini-instruct",
         "mistralai-Mistral-Nemo-Instruct-2407", "HuggingFaceTB-SmolLM3-3B", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
         "ibm-granite-granite-3.3-2B-Instruct"]
U, A, S = "user", "assistant", "system"
conversations = [
    [(U, "Hello, who are you?"), (A, "I am a helpful assistant.")],
    [(S, "You answer briefly."), (U, "What is 2 + 2?"), (A, "4")],
    [(U, "Name a fruit."), (A, "An apple."), (U, "Another one?"), (A, "A pear.")],
    [(U, "  spaces around  \n"), (A, "\nLine one\nline two  ")],
]
# The tiny decoder's tokenizer with merges of two line breaks and two spaces added (as SmolLM2's and GPT-2's
# vocabularies have them): under GPT-2's pattern a run of line breaks before a turn is then one token in the
# text before the turn but two in the whole conversation, where the offsets decide.
ws = os.path.join(repo, "Tests/Fixtures/chat-templates/tied-ws")
os.makedirs(ws, exist_ok=True)
tj = json.load(open(os.path.join(repo, "Tests/Fixtures/decoder/tied/tokenizer.json"), encoding="utf-8"))
base = len(tj["model"]["vocab"])
for a in tj["added_tokens"]:          # added tokens after the vocabulary move up by the two new tokens
    if a["id"] >= base:
        a["id"] += 2
for k, pair in enumerate([("\u010a", "\u010a"), ("\u0120", "\u0120")]):
    tj["model"]["vocab"][pair[0] + pair[1]] = base + k
    merges = tj["model"]["merges"]
    merges.insert(0, list(pair) if merges and isinstance(merges[0], list) else pair[0] + " " + pair[1])
with open(os.path.join(ws, "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(tj, f, ensure_ascii=False)
with open(os.path.join(repo, "Tests/Fixtures/decoder/tied/tokenizer_config.json"), encoding="utf-8") as f:
    cfg = json.load(f)
with open(os.path.join(ws, "tokenizer_config.json"), "w", encoding="utf-8") as f:
    json.dump(cfg, f, ensure_ascii=False)
# The whole conversations of lines.jsonl (tools, tool calls, reasoning, contents of parts; every other line).
line_file = [json.loads(l) for l in open(os.path.join(repo, "Tests/Fixtures/chat-templates/lines.jsonl"), encoding="utf-8")]
inputs = [([{"role": r, "content": c} for r, c in conv], None, None, {"messages": [list(x) for x in conv]}) for conv in conversations]
inputs += [(line_file[k]["messages"], line_file[k].get("tools"), line_file[k].get("documents"), {"line": k}) for k in range(0, len(line_file), 2)]
result = []
for tok_name in ["Tests/Fixtures/decoder/tied", "Tests/Fixtures/tokenizer/spm-legacy", "Tests/Fixtures/chat-templates/tied-ws"]:
    tok = AutoTokenizer.from_pretrained(os.path.join(repo, tok_name))
    # Offsets as the text holds the tokens: ByteLevel's post-processor would trim the spaces off them.
    if tok.backend_tokenizer.post_processor is not None and "ByteLevel" in str(tok.backend_tokenizer.post_processor):
        tok.backend_tokenizer.post_processor = None
    specials = {k: v for k, v in tok.special_tokens_map.items() if isinstance(v, str)}
    for name in names:
        t = golden[name]
        for msgs, tools, documents, source in inputs:
            def render(m, gen):
                return tok.apply_chat_template(m, tools=tools, documents=documents, chat_template=t, tokenize=False, add_generation_prompt=gen)
            try:
                full = render(msgs, False)
            except Exception as e:
                result.append({"tokenizer": tok_name, "template": name, **source, "error": str(e)})
                continue
            ids = tok.apply_chat_template(msgs, tools=tools, documents=documents, chat_template=t, tokenize=True, add_generation_prompt=False)
            if not isinstance(ids, list):      # transformers 5 returns a BatchEncoding
                ids = ids["input_ids"]
            enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
            assert enc["input_ids"] == ids, (name, tok_name)
            spans = []
            located = True
            for i, m in enumerate(msgs):
                if m["role"] != "assistant":
                    continue
                p, r = render(msgs[:i], True), render(msgs[:i + 1], False)
                if not (r.startswith(p) and full.startswith(p)):
                    located = False      # the template writes earlier turns otherwise once the conversation goes on
                    break
                end = len(os.path.commonprefix([r, full]))
                while end > len(p) and full[end - 1].isspace():
                    end -= 1
                spans.append((len(p), end))
            # A token that starts before a turn and ends inside it counts as the turn's; one that ends past it does not.
            scored = [int(any(a < e and b > s and b <= e for s, e in spans)) for a, b in enc["offset_mapping"]]
            case = {"tokenizer": tok_name, "template": name, "special_tokens": specials, **source}
            result.append(dict(case, input_ids=ids, scored=scored) if located else dict(case, not_located=True))
with open(out, "w", encoding="utf-8") as f:
    json.dump(result, f, ensure_ascii=False)
print(len(result), "cases,", sum("error" in r for r in result), "raising,", sum("not_located" in r for r in result), "with turns not located")
