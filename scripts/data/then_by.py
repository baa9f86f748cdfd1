#!/usr/bin/env python3
"""Combines two score files of `winnow score` (CSV, same data file) into one that ranks by the first and
breaks its ties by the second, for `winnow prune` (standard library only):

    python3 scripts/data/then_by.py forgetting.csv el2n.csv --second hard forgetting-then-el2n.csv
    winnow prune --scores forgetting-then-el2n.csv --data train.jsonl --keep 0.5 --select easy --per-label ...

The combined score is first + 0.5 * r, where r in [0, 1] is the second score's rank among all examples
(0 for the lowest; with --second hard, 0 for the highest). It orders the examples as (first, second)
would when the first score is a count, such as forgetting events, whose distinct values are at least 1
apart: `--select easy` then keeps the fewest forgetting events and, among equal counts, the hardest
(--second hard) or easiest (--second easy) by the second score. README "Choosing a selection setting"
measures forgetting then the hardest EL2N on SNLI.
"""
import argparse
import csv
import os


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {int(r["line"]): r for r in csv.DictReader(f)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("out")
    ap.add_argument("--second", dest="direction", choices=["hard", "easy"], default="hard",
                    help="among ties of the first score, prefer the hardest (default) or easiest by the second")
    a = ap.parse_args()
    first, second = read(a.first), read(a.second)
    if set(first) != set(second):
        raise SystemExit(f"then_by: {a.first} and {a.second} score different lines ({len(first)} and {len(second)}): "
                         "score the same data file with both")
    values = sorted(first, key=lambda l: float(second[l]["score"]))
    if a.direction == "hard":
        values.reverse()
    rank = {l: k / max(1, len(values) - 1) for k, l in enumerate(values)}
    tmp = a.out + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["index", "line", "id", "label", "score"])
        for line in sorted(first):
            r = first[line]
            w.writerow([r.get("index", ""), line, r.get("id", ""), r.get("label", ""),
                        "%.9g" % (float(r["score"]) + 0.5 * rank[line])])
    os.replace(tmp, a.out)
    print(f"then_by: {len(first)} scores -> {a.out}")


if __name__ == "__main__":
    main()
