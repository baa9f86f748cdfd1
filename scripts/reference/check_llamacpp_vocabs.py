"""Winnow's BPE tokenizers on real vocabularies: llama.cpp's vocabulary-only GGUF files of GPT-2, Llama 3
(llama-bpe), Qwen2 (byte-level BPE), Llama 2 (llama-spm) and Phi-3 (SentencePiece BPE), with the texts llama.cpp tests them on and the ids Hugging Face's tokenizers give
for them (models/ggml-vocab-NAME.gguf.inp / .out, made by llama.cpp's convert_hf_to_gguf_update.py from
each model's own tokenizer). The files come from the llama-cpp-python source package on PyPI (about
77 MB; nothing is committed).

    python3 scripts/reference/check_llamacpp_vocabs.py [WINNOW]      # default .build/release/winnow

Prints, per vocabulary, how many of its texts get other ids than Hugging Face's (BOS aside), and exits 1
when any does. With transformers, tokenizers and gguf installed (/tmp/ref/bin/python), Llama 2's vocabulary
is also converted to a tokenizer.json as transformers converts it and read by Winnow, on those texts and on
canonically equivalent characters that are different tokens (Greek tonos and oxia, angstrom and ohm signs).
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


def report(name, texts, got, expected):
    """Prints how many texts got Hugging Face's ids (BOS aside); True when any did not."""
    wrong = [(t, g, e) for t, g, e in zip(texts, got, expected) if g != e and g[1:] != e]
    for t, g, e in wrong[:5]:
        print(f"  {name} {t!r}: winnow {g[:16]}, Hugging Face {e[:16]}")
    print(f"{name}: {len(texts) - len(wrong)} of {len(texts)} texts equal Hugging Face's ids")
    return bool(wrong)


# Characters that are canonically equivalent but different tokens of Llama 2 (Greek tonos and oxia, the
# angstrom and ohm signs), which a Swift String dictionary would merge.
EQUIVALENTS = ["\u03a4\u03bf \u03b2\u03b9\u03b2\u03bb\u03af\u03bf \u03b5\u03af\u03bd\u03b1\u03b9 \u03ba\u03b1\u03bb\u03cc.",
               "\u03b2\u03b9\u03b2\u03bb\u1f77\u03bf \u1f71\u03bb\u03bb\u03bf \u1f79\u03bb\u03b1",
               "\u00c5ngstr\u00f6m \u212b \u2126 \u03a9 \u212a K", "cafe\u0301 caf\u00e9 \u1f77\u03af\u03af\u1f77"]


def llama2_tokenizer_json(gguf_path, texts):
    """Llama 2's tokenizer as a tokenizer.json (legacy normalizer, merges from the GGUF file's scores, as
    transformers converts it) read by Winnow against the `tokenizers` library, on llama.cpp's texts and on
    canonically equivalent characters. Needs transformers, tokenizers and gguf."""
    import gguf as g
    from tokenizers import normalizers
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer
    r = g.GGUFReader(gguf_path)
    def arr(k):
        f = r.fields[k]
        return [bytes(f.parts[i]).decode() for i in f.data] if f.types[-1] == g.GGUFValueType.STRING else [f.parts[i][0].item() for i in f.data]
    built, _ = convert_gguf_tokenizer("llama", {"tokenizer_type": "llama", "tokens": arr("tokenizer.ggml.tokens"),
                                                "scores": arr("tokenizer.ggml.scores"), "token_type": arr("tokenizer.ggml.token_type")})
    built.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    built.pre_tokenizer = None
    folder = os.path.join(work, "llama2-json")
    os.makedirs(folder, exist_ok=True)
    built.save(os.path.join(folder, "tokenizer.json"))
    texts = texts + EQUIVALENTS
    data, out = os.path.join(work, "llama2-json.jsonl"), os.path.join(work, "llama2-json-ids.jsonl")
    with open(data, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    subprocess.run([winnow, "tokenize", "--model", folder, "--data", data, "--out", out], check=True, capture_output=True)
    got = [json.loads(l)["input_ids"] for l in open(out, encoding="utf-8")]
    return report("llama-spm as tokenizer.json", texts, got, [built.encode(t, add_special_tokens=False).ids for t in texts])


try:
    import gguf, tokenizers, transformers  # noqa: F401  (the tokenizer.json check needs them)
    have_tokenizers = True
except ImportError:
    have_tokenizers = False
    print("check_llamacpp_vocabs: without transformers, tokenizers and gguf the tokenizer.json check of Llama 2 is skipped")
failed = False
with tarfile.open(sdists[0]) as tar:
    for name in ["gpt-2", "llama-bpe", "qwen2", "llama-spm", "phi-3"]:
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
        failed = report(name, texts, got, expected) or failed
        if name == "llama-spm" and have_tokenizers:
            failed = llama2_tokenizer_json(gguf, texts) or failed
sys.exit(1 if failed else 0)
