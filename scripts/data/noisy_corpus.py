#!/usr/bin/env python3
"""Replaces a seeded fraction of a corpus's non-empty lines with noise (standard library only).

    python3 scripts/data/noisy_corpus.py data/austen/corpus.txt data/austen/noisy.txt [--fraction 0.05] [--seed 0]

Noise kinds (--kinds), in equal parts: `shuffled`, the line's words shuffled; `letters`, random lower-case
letters and spaces of the line's length; `pseudo-latin`, lorem-ipsum words (standing in for another
language); `pseudo-german`, a few German function words repeated (repetitive text in another language), as
many words as the replaced line, or with --german-words MIN-MAX a number drawn in that range.
Only lines of --min-words to --max-words words are kept when --max-lines is given (the first ones).
Writes the noisy corpus and OUT.lines.csv (line,kind) listing the replaced 1-based lines; with --jsonl,
OUT is JSONL with a `text` field per line (what `winnow score` reads).
"""
import argparse
import json
import random
import string

LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore "
         "magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo "
         "consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
         "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum").split()


GERMAN = "und die der das ist nicht ich sie es zu den mit sich auf dem ein eine auch so wie".split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default="shuffled,letters,pseudo-latin")
    ap.add_argument("--max-lines", type=int, default=0)
    ap.add_argument("--min-words", type=int, default=4)
    ap.add_argument("--max-words", type=int, default=1 << 30)
    ap.add_argument("--jsonl", action="store_true")
    ap.add_argument("--german-words", default="", help="MIN-MAX words per pseudo-German line (default: the replaced line's)")
    a = ap.parse_args()
    german = tuple(int(x) for x in a.german_words.split("-")) if a.german_words else None
    lines = open(a.src, encoding="utf-8").read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if a.max_lines:
        lines = [l for l in lines if a.min_words <= len(l.split()) <= a.max_words][:a.max_lines]
    candidates = [i for i, l in enumerate(lines) if len(l.split()) >= 4]
    rng = random.Random(a.seed)
    chosen = sorted(rng.sample(candidates, round(a.fraction * len(candidates))))
    kinds = a.kinds.split(",")
    report = ["line,kind"]
    for k, i in enumerate(chosen):
        kind = kinds[k % 3]
        words = lines[i].split()
        if kind == "shuffled":
            rng.shuffle(words)
            lines[i] = " ".join(words)
        elif kind == "letters":
            lines[i] = "".join(rng.choice(string.ascii_lowercase + "     ") for _ in range(len(lines[i])))
        elif kind == "pseudo-latin":
            lines[i] = " ".join(rng.choice(LOREM) for _ in words)
        elif kind == "pseudo-german":
            phrase = [rng.choice(GERMAN) for _ in range(3)]
            n = rng.randint(german[0], german[1]) if german else len(words)
            lines[i] = " ".join(phrase[j % 3] for j in range(n)).capitalize() + "."
        else:
            raise SystemExit(f"noisy_corpus: unknown kind {kind}")
        report.append(f"{i + 1},{kind}")
    with open(a.out, "w", encoding="utf-8") as f:
        if a.jsonl:
            f.write("".join(json.dumps({"text": l}) + "\n" for l in lines))
        else:
            f.write("\n".join(lines) + "\n")
    with open(a.out + ".lines.csv", "w", encoding="utf-8") as f:
        f.write("\n".join(report) + "\n")
    print(f"noisy_corpus: replaced {len(chosen)} of {len(candidates)} lines with 4+ words -> {a.out}")


if __name__ == "__main__":
    main()
