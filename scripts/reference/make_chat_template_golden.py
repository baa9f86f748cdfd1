"""Real chat templates and what transformers' apply_chat_template renders with them, for
Tests/WinnowTests/ChatTemplateTests.swift: the Jinja templates llama.cpp keeps for its tests
(models/templates/*.jinja: Qwen2.5, Qwen3, Llama 3.1-3.3, Gemma 2, Phi-3.5, Mistral Nemo and Small,
SmolLM3, DeepSeek, Granite and others, copied from each model's Hugging Face repo), from the
llama-cpp-python source package on PyPI (checked against PyPI's sha256).

    /tmp/ref/bin/pip install transformers jinja2
    /tmp/ref/bin/python scripts/reference/make_chat_template_golden.py Tests/Fixtures/chat-templates/golden.json

For each template and each of eight conversations (one or two turns, with and without a system message,
contents with spaces and line breaks at their edges, non-ASCII text; prompts with add_generation_prompt),
the text transformers' render_jinja_template writes (its Jinja environment: trim_blocks, lstrip_blocks,
the generation block, loop controls, raise_exception, strftime_now fixed at 2026-12-07 09:05 local time,
namespace, a json.dumps tojson), or the error it raises. Special tokens are spelt <BOS>, <EOS>, <UNK>,
<PAD>. Deterministic.
"""
import datetime as dt
import glob
import hashlib
import json
import os
import re
import sys
import tarfile
import tempfile
import urllib.request

import transformers.utils.chat_template_utils as ctu

out = sys.argv[1]
work = tempfile.mkdtemp(prefix="winnow-templates-")
index = urllib.request.urlopen("https://pypi.org/simple/llama-cpp-python/", timeout=60).read().decode()
url = re.search(r'href="([^"]*/llama_cpp_python-0\.3\.36\.tar\.gz)#sha256=([0-9a-f]+)"', index)
path = os.path.join(work, "sdist.tar.gz")
urllib.request.urlretrieve(url.group(1), path)
if hashlib.sha256(open(path, "rb").read()).hexdigest() != url.group(2):
    sys.exit("make_chat_template_golden: the download does not match PyPI's sha256")
templates = {}
with tarfile.open(path) as tar:
    for m in tar.getmembers():
        if "/models/templates/" in m.name and m.name.endswith(".jinja"):
            templates[os.path.basename(m.name)[:-len(".jinja")]] = tar.extractfile(m).read().decode("utf-8")


class FixedDatetime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 12, 7, 9, 5, 0)


ctu.datetime = FixedDatetime
U, A, S = "user", "assistant", "system"
conversations = [
    ([(U, "Hello, who are you?"), (A, "I am a helpful assistant.")], False),
    ([(S, "You answer briefly."), (U, "What is 2 + 2?"), (A, "4")], False),
    ([(U, "Name a fruit."), (A, "An apple."), (U, "Another one?"), (A, "A pear.")], False),
    ([(S, "Be terse."), (U, "Hi"), (A, "Hello."), (U, "Bye"), (A, "Goodbye.")], False),
    ([(U, "  spaces around  \n"), (A, "\nLine one\nline two  ")], False),
    ([(U, "Ça va? 日本語 😀"), (A, "Très bien — merci!")], False),
    ([(U, "What is the capital of France?")], True),
    ([(S, "You answer briefly."), (U, "Name a colour."), (A, "Red."), (U, "And another?")], True),
]
specials = {"bos_token": "<BOS>", "eos_token": "<EOS>", "unk_token": "<UNK>", "pad_token": "<PAD>"}
golden = []
for name in sorted(templates):
    t = templates[name]
    cases = []
    for msgs, gen in conversations:
        messages = [{"role": r, "content": c} for r, c in msgs]
        case = {"messages": [[r, c] for r, c in msgs], "add_generation_prompt": gen}
        try:
            rendered, _ = ctu.render_jinja_template(conversations=[messages], chat_template=t, add_generation_prompt=gen, **specials)
            case["output"] = rendered[0]
        except Exception as e:  # the template's own raise_exception, or an error of the template itself
            case["error"] = type(e).__name__ + ": " + str(e)
        cases.append(case)
    golden.append({"name": name, "template": t, "cases": cases})
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w", encoding="utf-8") as f:
    json.dump(golden, f, ensure_ascii=False, indent=0)
print(len(golden), "templates,", sum(len(g["cases"]) for g in golden), "cases,",
      sum("error" in c for g in golden for c in g["cases"]), "raising")
