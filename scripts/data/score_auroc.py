#!/usr/bin/env python3
"""AUROC of per-example scores for finding the noisy lines of a corpus made by noisy_corpus.py.

    python3 scripts/data/score_auroc.py NOISY.jsonl.lines.csv NAME=SCORES.csv [NAME=SCORES.csv ...] [--markdown]

SCORES.csv is `winnow score` output (columns line and score). AUROC is the probability that a random
noisy line scores higher than a random clean one (ties count half), over all noise and per kind.
"""
import argparse
import csv


def auroc(pos, neg):
    if not pos or not neg:
        return float("nan")
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    # Mann-Whitney U with average ranks for ties
    ranks, i = {}, 0
    rank_sum = 0.0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        r = (i + j + 1) / 2
        rank_sum += r * sum(1 for k in range(i, j) if allv[k][1] == 1)
        i = j
    u = rank_sum - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("noisy")
    ap.add_argument("scores", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    kind = {int(r["line"]): r["kind"] for r in csv.DictReader(open(a.noisy))}
    kinds = sorted(set(kind.values()))
    header = ["detector", "all noise"] + kinds
    rows = []
    for spec in a.scores:
        name, path = spec.split("=", 1)
        s = {int(r["line"]): float(r["score"]) for r in csv.DictReader(open(path))}
        clean = [v for l, v in s.items() if l not in kind]
        cells = [auroc([v for l, v in s.items() if l in kind], clean)]
        cells += [auroc([v for l, v in s.items() if kind.get(l) == k], clean) for k in kinds]
        rows.append([name] + [f"{c:.2f}" for c in cells])
    if a.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in [header] + rows:
            print("  ".join(f"{c:>14s}" for c in r))


if __name__ == "__main__":
    main()
