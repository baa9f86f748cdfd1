"""Winnow's byte-level BPE on real vocabularies: llama.cpp's vocabulary-only GGUF files of GPT-2, Llama 3
(llama-bpe) and Qwen2, with the texts llama.cpp tests them on and the ids Hugging Face's tokenizers give
for them (models/ggml-vocab-NAME.gguf.inp / .out, made by llama.cpp's convert_hf_to_gguf_update.py from
each model's own tokenizer). The files come from the llama-cpp-python source package on PyPI (about
77 MB; nothing is committed).

    python3 scripts/reference/check_llamacpp_vocabs.py [WINNOW]      # default .build/release/winnow

Prints, per vocabulary, how many of its texts get other ids than Hugging Face's (BOS aside), and exits 1
when any does.
"""
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

winnow = sys.argv[1] if len(sys.argv) > 1 else ".build/release/winnow"
work = tempfile.mkdtemp(prefix="winnow-vocabs-")
# The source package's address from PyPI's simple index (pip download would build the package's metadata
# first); its sha256 is checked.
index = urllib.request.urlopen("https://pypi.org/simple/llama-cpp-python/", timeout=60).read().decode()
url = re.search(r'href="([^"]*/llama_cpp_python-0\.3\.36\.tar\.gz)#sha256=([0-9a-f]+)"', index)
if not url:
    sys.exit("check_llamacpp_vocabs: llama-cpp-python 0.3.36's source package is not in PyPI's index")
path = os.path.join(work, "llama_cpp_python-0.3.36.tar.gz")
urllib.request.urlretrieve(url.group(1), path)
if hashlib.sha256(open(path, "rb").read()).hexdigest() != url.group(2):
    sys.exit("check_llamacpp_vocabs: the download does not match PyPI's sha256")
sdists = glob.glob(os.path.join(work, "llama_cpp_python-*.tar.gz"))
failed = False
with tarfile.open(sdists[0]) as tar:
    for name in ["gpt-2", "llama-bpe", "qwen2"]:
        files = {}
        for m in tar.getmembers():
            for ext in ["", ".inp", ".out"]:
                if m.name.endswith(f"/models/ggml-vocab-{name}.gguf{ext}"):
                    files[ext] = m
        for ext, m in files.items():
            m.name = f"ggml-vocab-{name}.gguf{ext}"
            tar.extract(m, work)
        gguf = os.path.join(work, f"ggml-vocab-{name}.gguf")
        texts = open(gguf + ".inp", encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
        expected = [[int(x) for x in line.split()] for line in open(gguf + ".out", encoding="utf-8").read().split("\n")]
        texts = texts[:len(expected)]
        data = os.path.join(work, f"{name}.jsonl")
        with open(data, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        out = os.path.join(work, f"{name}-ids.jsonl")
        subprocess.run([winnow, "tokenize", "--model", gguf, "--data", data, "--out", out], check=True, capture_output=True)
        got = [json.loads(l)["input_ids"] for l in open(out, encoding="utf-8")]
        wrong = [(t, g, e) for t, g, e in zip(texts, got, expected) if g != e and g[1:] != e]
        for t, g, e in wrong[:5]:
            print(f"  {name} {t!r}: winnow {g[:16]}, Hugging Face {e[:16]}")
        print(f"{name}: {len(texts) - len(wrong)} of {len(texts)} texts equal Hugging Face's ids")
        failed = failed or bool(wrong)
sys.exit(1 if failed else 0)
