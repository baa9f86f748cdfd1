#!/usr/bin/env python3
"""Mean self-influence of noisy vs clean corpus lines, and the AUROC of SI for finding the noisy ones.

    python3 scripts/data/si_auroc.py SI_LOG.csv NOISY.txt.lines.csv [--from-step S]

SI_LOG is `winnow pretrain --si-log` output (step,line,si,weight; use --microbatch-size 1 so each row's SI
is its own sample's). A line's SI is the mean over its logged samples from step S on. AUROC is the
probability that a random noisy line has a higher SI than a random clean one (ties count half).
"""
import argparse
import csv
from collections import defaultdict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("noisy")
    ap.add_argument("--from-step", type=int, default=1)
    a = ap.parse_args()
    noisy = {}
    with open(a.noisy) as f:
        for r in csv.DictReader(f):
            noisy[int(r["line"])] = r["kind"]
    sums, counts = defaultdict(float), defaultdict(int)
    with open(a.log) as f:
        for r in csv.DictReader(f):
            if int(r["step"]) < a.from_step:
                continue
            line = int(r["line"])
            sums[line] += float(r["si"])
            counts[line] += 1
    si = {l: sums[l] / counts[l] for l in sums}
    pos = [v for l, v in si.items() if l in noisy]
    neg = [v for l, v in si.items() if l not in noisy]
    if not pos or not neg:
        raise SystemExit("si_auroc: need both noisy and clean lines in the log")
    ranked = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    # Mann-Whitney U with average ranks for ties.
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        avg = (i + 1 + j) / 2
        rank_sum += avg * sum(1 for k in range(i, j) if ranked[k][1] == 1)
        i = j
    auroc = (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    by_kind = defaultdict(list)
    for l, v in si.items():
        if l in noisy:
            by_kind[noisy[l]].append(v)
    mean = lambda x: sum(x) / len(x)
    print(f"lines seen: {len(si)} ({len(pos)} noisy, {len(neg)} clean)")
    print(f"mean SI: noisy {mean(pos):.6g}, clean {mean(neg):.6g} (ratio {mean(pos) / mean(neg):.2f})")
    for k, v in sorted(by_kind.items()):
        print(f"  {k}: {len(v)} lines, mean SI {mean(v):.6g}")
    print(f"AUROC of SI for noisy lines: {auroc:.3f}")


if __name__ == "__main__":
    main()
