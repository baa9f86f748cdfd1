#!/usr/bin/env python3
"""Replaces a seeded fraction of a corpus's non-empty lines with noise (standard library only).

    python3 scripts/data/noisy_corpus.py data/austen/corpus.txt data/austen/noisy.txt [--fraction 0.05] [--seed 0]

Noise kinds, in equal parts: the line's words shuffled; random lower-case letters and spaces of the
line's length; pseudo-Latin (lorem-ipsum words, standing in for another language). Writes the noisy
corpus and OUT.lines.csv (line,kind) listing the replaced 1-based lines.
"""
import argparse
import random
import string

LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore "
         "magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo "
         "consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
         "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum").split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    lines = open(a.src, encoding="utf-8").read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    candidates = [i for i, l in enumerate(lines) if len(l.split()) >= 4]
    rng = random.Random(a.seed)
    chosen = sorted(rng.sample(candidates, round(a.fraction * len(candidates))))
    kinds = ["shuffled", "letters", "pseudo-latin"]
    report = ["line,kind"]
    for k, i in enumerate(chosen):
        kind = kinds[k % 3]
        words = lines[i].split()
        if kind == "shuffled":
            rng.shuffle(words)
            lines[i] = " ".join(words)
        elif kind == "letters":
            lines[i] = "".join(rng.choice(string.ascii_lowercase + "     ") for _ in range(len(lines[i])))
        else:
            lines[i] = " ".join(rng.choice(LOREM) for _ in words)
        report.append(f"{i + 1},{kind}")
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(a.out + ".lines.csv", "w", encoding="utf-8") as f:
        f.write("\n".join(report) + "\n")
    print(f"noisy_corpus: replaced {len(chosen)} of {len(candidates)} lines with 4+ words -> {a.out}")


if __name__ == "__main__":
    main()
