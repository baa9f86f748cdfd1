"""Real chat templates and what transformers' apply_chat_template renders with them, for
Tests/WinnowTests/ChatTemplateTests.swift: the Jinja templates llama.cpp keeps for its tests
(models/templates/*.jinja: Qwen2.5, Qwen3, Llama 3.1-3.3, Gemma 2, Phi-3.5, Mistral Nemo and Small,
SmolLM3, DeepSeek, Granite and others, copied from each model's Hugging Face repo), from the
llama-cpp-python source package on PyPI (checked against PyPI's sha256).

    /tmp/ref/bin/pip install transformers jinja2
    /tmp/ref/bin/python scripts/reference/make_chat_template_golden.py Tests/Fixtures/chat-templates/golden.json

For each template and each of eight conversations (one or two turns, with and without a system message,
contents with spaces and line breaks at their edges, non-ASCII text; prompts with add_generation_prompt), and
eight more written as JSONL lines (tools, tool calls, tool messages, reasoning, contents of parts, a user's
name, documents), each whole and up to its last assistant turn with add_generation_prompt (lines.jsonl beside; a case's
"line" is its 0-based line there),
the text transformers' render_jinja_template writes (after apply_chat_template's normalisation, which drops
message keys whose value is None) (its Jinja environment: trim_blocks, lstrip_blocks,
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
from transformers.tokenization_utils_base import _normalize_chat_messages

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
# Conversations as a JSONL line writes them, every key passed on (tools, tool calls with arguments as an object
# and as a JSON string, a null content, a tool message with its name and id, reasoning under each of its names,
# a content of parts, a user's name), each rendered whole and up to its last assistant turn with
# add_generation_prompt.
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city now.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"},
                                                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                          "required": ["city"]}}}
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
structured = [
    {"messages": [{"role": "user", "content": "What is the weather in Paris?"},
                  {"role": "assistant", "content": "", "tool_calls": [CALL]},
                  {"role": "tool", "name": "get_weather", "tool_call_id": "call_1", "content": "{\"temperature\": 21}"},
                  {"role": "assistant", "content": "It is 21 °C in Paris."}], "tools": [WEATHER]},
    {"messages": [{"role": "system", "content": "You call tools when they help."},
                  {"role": "user", "content": "Weather in Oslo, in fahrenheit?"},
                  {"role": "assistant", "content": None, "tool_calls": [{"id": "call_9", "type": "function", "function": {
                      "name": "get_weather", "arguments": "{\"city\": \"Oslo\", \"unit\": \"fahrenheit\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_9", "content": "45"},
                  {"role": "assistant", "content": "45 °F."}], "tools": [WEATHER]},
    {"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}], "tools": [WEATHER]},
    {"messages": [{"role": "user", "content": "What is 2 + 2?"},
                  {"role": "assistant", "content": "The answer is 4.", "reasoning_content": "Two and two make four."}]},
    {"messages": [{"role": "user", "content": "And 3 + 3?"},
                  {"role": "assistant", "content": "6", "thinking": "Three and three.", "reasoning": "ignored: thinking comes first"}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Describe a cat."}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "A small furry animal."}]}]},
    {"messages": [{"role": "user", "name": "alice", "content": "Hello there."}, {"role": "assistant", "content": "Hello, Alice."}]},
    {"messages": [{"role": "user", "content": "When was the bridge built?"}, {"role": "assistant", "content": "In 1889 [1]."}],
     "documents": [{"title": "Bridge", "text": "The bridge was built in 1889."}, {"title": "Town", "text": "The town has 4,000 people."}]},
]
lines = []
for conv in structured:
    msgs = conv["messages"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    for upto, gen in [(len(msgs), False), (last, True)]:
        extra = {k: conv[k] for k in ("tools", "documents") if k in conv}
        lines.append((json.dumps({"messages": msgs[:upto], **extra}, ensure_ascii=False), gen))
with open(os.path.join(os.path.dirname(out), "lines.jsonl"), "w", encoding="utf-8") as f:
    f.writelines(line + "\n" for line, _ in lines)
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
    for k, (line, gen) in enumerate(lines):
        case = {"line": k, "add_generation_prompt": gen}
        try:
            # As apply_chat_template: message keys whose value is None dropped first.
            rendered, _ = ctu.render_jinja_template(conversations=[_normalize_chat_messages(json.loads(line)["messages"])], tools=json.loads(line).get("tools"),
                                                    documents=json.loads(line).get("documents"),
                                                    chat_template=t, add_generation_prompt=gen, **specials)
            case["output"] = rendered[0]
        except Exception as e:
            case["error"] = type(e).__name__ + ": " + str(e)
        cases.append(case)
    golden.append({"name": name, "template": t, "cases": cases})
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w", encoding="utf-8") as f:
    json.dump(golden, f, ensure_ascii=False, indent=0)
print(len(golden), "templates,", sum(len(g["cases"]) for g in golden), "cases,",
      sum("error" in c for g in golden for c in g["cases"]), "raising")
