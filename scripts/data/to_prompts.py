#!/usr/bin/env python3
"""Turns a labelled JSONL file (Rotten Tomatoes, CrowdFlower, SNLI as fetched by scripts/fetch-data.sh) into
instruction data for decoders: one `prompt` + `completion` line per example, by a fixed template, with
the label kept and an `id` (the example's `id`, else SNLI's `pairID`, else its 0-based position in the
input), in input order (standard library only).

    python3 scripts/data/to_prompts.py data/rotten-tomatoes/train.jsonl rt-sft.jsonl [--limit N] [--messages]

Templates (the completion starts with a space, as the answer after "Answer:" would be written):
  single text:  prompt "Review: {text}\\nIs this review fresh or rotten?\\nAnswer:"   completion " {label}"
                (Rotten Tomatoes: fresh/rotten; any other label set: "Which label fits: a, b, c?")
  pair (SNLI):  prompt "Premise: {text}\\nHypothesis: {text_pair}\\nDoes the premise entail the hypothesis,
                contradict it, or neither (neutral)?\\nAnswer:"                    completion " {label}"
With --messages, a ChatML conversation instead: the prompt as the user turn, the label as the assistant's.
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--messages", action="store_true")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.src, encoding="utf-8") if l.strip()]
    # The template follows the whole file's label set, whatever --limit keeps.
    labels = sorted({str(r["label"]) for r in rows})
    if a.limit:
        rows = rows[:a.limit]
    out = []
    for i, r in enumerate(rows):
        label = str(r["label"])
        if "text_pair" in r:
            prompt = (f"Premise: {r['text']}\nHypothesis: {r['text_pair']}\n"
                      "Does the premise entail the hypothesis, contradict it, or neither (neutral)?\nAnswer:")
        elif labels == ["fresh", "rotten"]:
            prompt = f"Review: {r['text']}\nIs this review fresh or rotten?\nAnswer:"
        else:
            prompt = f"Text: {r['text']}\nWhich label fits: {', '.join(labels)}?\nAnswer:"
        row = {"id": r.get("id", r.get("pairID", i)), "label": label}
        if a.messages:
            row["messages"] = [{"role": "user", "content": prompt[:-len("\nAnswer:")]}, {"role": "assistant", "content": label}]
        else:
            row["prompt"], row["completion"] = prompt, " " + label
        out.append(row)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in out))
    print(f"to_prompts: {len(out)} examples ({', '.join(labels)}) -> {a.out}")


if __name__ == "__main__":
    main()
