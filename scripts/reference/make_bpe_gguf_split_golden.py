"""Two tokenizer-only GGUF files whose `tokenizer.ggml.pre` names Llama 3's and Qwen2's split patterns
(llama-bpe, qwen2), with the vocabulary and merges of Tests/Fixtures/tokenizer/bpe-llama3, and the ids
transformers gives with them, for Tests/WinnowTests/ByteLevelBPETests.swift.

    /tmp/ref/bin/pip install transformers tokenizers gguf
    /tmp/ref/bin/python scripts/reference/make_bpe_json_golden.py Tests/Fixtures/tokenizer   # first: the vocabulary
    /tmp/ref/bin/python scripts/reference/make_bpe_gguf_split_golden.py Tests/Fixtures/tokenizer

Writes gguf-llama-bpe/tokenizer.gguf and gguf-qwen2/tokenizer.gguf (model gpt2, tokens spelt in the byte
alphabet, <s> and </s> CONTROL tokens, BOS <s> added for llama-bpe only) and each folder's ids.jsonl:
{"text", "input_ids"} for every single text of bpe-llama3/ids.jsonl, input_ids = the ids without special
tokens of the tokenizer transformers builds from the file (`convert_gguf_tokenizer` of
transformers.integrations.gguf, as AutoTokenizer.from_pretrained(folder, gguf_file=...) does; called
directly, since transformers' GGUF reader needs torch): the pattern the pre-tokenizer type names, no
normalizer; for llama-bpe with ignore_merges, which transformers' conversion leaves out but Llama 3's
tokenizer.json and llama.cpp apply.
"""
import json
import os
import sys

import gguf
from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer

out = sys.argv[1]
source = json.load(open(os.path.join(out, "bpe-llama3/tokenizer.json"), encoding="utf-8"))
vocab = source["model"]["vocab"]
tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
merges = [m if isinstance(m, str) else " ".join(m) for m in source["model"]["merges"]]
specials = {a["content"]: a["id"] for a in source["added_tokens"] if a["special"]}
cases = [(c["text"], c["text_pair"]) for c in map(json.loads, open(os.path.join(out, "bpe-llama3/ids.jsonl"), encoding="utf-8"))]
for pre, bos in [("llama-bpe", True), ("qwen2", False)]:
    folder = os.path.join(out, "gguf-" + pre)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "tokenizer.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(specials["<s>"])
    w.add_eos_token_id(specials["</s>"])
    w.add_add_bos_token(bos)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    r = gguf.GGUFReader(path)
    def field(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data] if f.types[0] == gguf.GGUFValueType.ARRAY and f.types[-1] == gguf.GGUFValueType.STRING \
            else [int(f.parts[i][0]) for i in f.data] if f.types[0] == gguf.GGUFValueType.ARRAY else bytes(f.parts[f.data[0]]).decode("utf-8")
    built, _ = convert_gguf_tokenizer("llama", {"tokenizer_type": "gpt2", "tokens": field("tokenizer.ggml.tokens"),
                                                "merges": field("tokenizer.ggml.merges"), "token_type": field("tokenizer.ggml.token_type"),
                                                "pre_tokenizer_type": field("tokenizer.ggml.pre")})
    if pre == "llama-bpe":
        # Llama 3's tokenizer.json takes a piece that is a token whole (ignore_merges), and llama.cpp does for this
        # pre-tokenizer type; transformers' GGUF conversion leaves it out, so it is set here as the model tokenizes.
        built.model.ignore_merges = True
    with open(os.path.join(folder, "ids.jsonl"), "w", encoding="utf-8") as f:
        for text, pair in cases:
            if pair is None:
                f.write(json.dumps({"text": text, "input_ids": built.encode(text, add_special_tokens=False).ids}, ensure_ascii=False) + "\n")
    print(pre, len(tokens), "tokens")
