#!/usr/bin/env python3
"""Make the tiny BERT fixture: vocab, synthetic data, a Trainer run and a null run.

Writes Tests/Fixtures/tiny-bert/{vocab.txt, train.jsonl, test.jsonl, pairs.jsonl, noisy_ids.txt,
run/, null-run/}. Run by hand (never in CI) with the reference venv:

    HF_HUB_OFFLINE=1 /tmp/ref/bin/python scripts/reference/make_tiny_run.py

Deterministic: data from random.Random(0), model init and Trainer from seed 0, CPU only.
Every pickle file (optimizer.pt, scheduler.pt, rng_state.pth, training_args.bin, *.bin) is removed.
"""
import json
import os
import random
import shutil
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "Fixtures" / "tiny-bert"

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PUNCT = [".", ",", "!", "?"]
FUNCTION = [
    "the", "a", "this", "that", "it", "i", "we", "was", "is", "and", "but", "not", "very",
    "really", "so", "quite", "too", "with", "of", "to", "what", "all", "me", "were", "there",
]
NOUNS = ["movie", "film", "plot", "story", "actor", "scene", "cast", "music", "ending", "script", "dog", "man"]
POS_ADJ = ["good", "great", "wonderful", "excellent", "fun", "brilliant", "beautiful", "perfect"]
NEG_ADJ = ["bad", "terrible", "awful", "boring", "dull", "weak", "poor", "mess"]
STEMS = ["charm", "amaz", "disappoint", "love", "hate", "enjoy", "slow", "bor", "watch"]
OTHER = ["time", "saw", "made", "see", "one", "again", "never", "best", "worst"]
SUFFIX = ["##s", "##ing", "##ed", "##ly", "##er"]

POS_WORDS = POS_ADJ + ["charming", "amazing", "best"]
NEG_WORDS = NEG_ADJ + ["disappointing", "worst", "boring"]
POS_VERBS = ["love", "enjoyed"]  # enjoy ##ed
NEG_VERBS = ["hate", "disliked"]  # "disliked" has no WordPiece match -> [UNK]
# -> [UNK]; "loved" is love + "##d" (absent): greedy longest-match does not backtrack
UNKNOWN = ["cinematography", "xylophone", "popcorn", "loved"]


def make_vocab():
    vocab = SPECIAL + PUNCT + FUNCTION + NOUNS + POS_ADJ + NEG_ADJ + STEMS + OTHER + SUFFIX
    assert len(vocab) == len(set(vocab)), "duplicate vocab entry"
    return vocab


def clause(rng, sentiment):
    adjs = POS_WORDS if sentiment == 1 else NEG_WORDS
    verbs = POS_VERBS if sentiment == 1 else NEG_VERBS
    adj = rng.choice(adjs)
    noun = rng.choice(NOUNS)
    nouns = rng.choice(["movie", "film", "actor", "scene", "ending", "script", "dog"]) + "s"
    adv = rng.choice(["", "very ", "really ", "quite ", "so ", "too "])
    forms = [
        f"the {noun} was {adv}{adj}",
        f"this {noun} is {adv}{adj}",
        f"i {rng.choice(verbs)} the {noun}",
        f"what a {adj} {noun}",
        f"the {nouns} were {adv}{adj}",
        f"we {rng.choice(verbs)} it",
        f"{adj} {noun} with {rng.choice(['a', 'the'])} {rng.choice(NOUNS)}",
        f"{adj} {noun} , {adv}{rng.choice(adjs)}",
    ]
    return rng.choice(forms)


def neutral_clause(rng):
    noun = rng.choice(NOUNS)
    forms = [
        f"i saw it one time",
        f"the {noun} of the {rng.choice(NOUNS)}",
        f"we watched it again",
        f"i was bored watching the {noun}",
        f"it was {rng.choice(['all', 'so', 'quite'])} {rng.choice(['slowly', 'really'])} made",
        f"the {rng.choice(UNKNOWN)} was {rng.choice(['', 'not '])}there",
        f"that {noun} is a {noun}",
    ]
    return rng.choice(forms)


def sentence(rng):
    """Return (text, clean_label). The label is the sentiment of the last sentiment clause."""
    label = rng.randint(0, 1)
    kind = rng.random()
    end = rng.choice([" .", " .", " !", " ?", "."])
    if kind < 0.45:
        text = clause(rng, label) + end
    elif kind < 0.65:
        # contrast: first clause opposite, "but" second clause decides
        text = clause(rng, 1 - label) + " , but " + clause(rng, label) + end
    elif kind < 0.8:
        text = clause(rng, label) + " and " + clause(rng, label) + end
    elif kind < 0.93:
        text = neutral_clause(rng) + " , " + clause(rng, label) + end
    else:
        # long: three clauses, may exceed max_length 32 after tokenization
        text = (
            neutral_clause(rng) + " and " + clause(rng, 1 - label) + " , but "
            + clause(rng, label) + " and " + clause(rng, label) + " ! ! !"
        )
    if rng.random() < 0.15:
        text = text[0].upper() + text[1:]  # exercise lower-casing
    return text, label


def make_data(rng, n, prefix, noise, seen):
    rows, flipped = [], []
    while len(rows) < n:
        text, label = sentence(rng)
        if text in seen:
            continue
        seen.add(text)
        if noise and rng.random() < noise:
            label = 1 - label
            flipped.append(f"{prefix}-{len(rows):03d}")
        rows.append({"id": f"{prefix}-{len(rows):03d}", "text": text, "label": ["neg", "pos"][label]})
    return rows, flipped


def make_pairs(rng, n):
    rows = []
    for i in range(n):
        noun = rng.choice(NOUNS)
        adj = rng.choice(POS_ADJ + NEG_ADJ)
        premise = f"the {noun} was {rng.choice(['', 'very ', 'really '])}{adj} ."
        kind = i % 3
        if kind == 0:
            hyp = f"the {noun} was {adj} ."
            label = "entailment"
        elif kind == 1:
            hyp = f"the {rng.choice([x for x in NOUNS if x != noun])} was {rng.choice(POS_ADJ + NEG_ADJ)} ."
            label = "neutral"
        else:
            opp = rng.choice(NEG_ADJ if adj in POS_ADJ else POS_ADJ)
            hyp = f"the {noun} was not {adj} , it was {opp} ."
            label = "contradiction"
        if i % 4 == 3:
            premise = premise + " " + neutral_clause(rng) + " and " + clause(rng, rng.randint(0, 1)) + " ."
        rows.append({"id": f"pair-{i:03d}", "premise": premise, "hypothesis": hyp, "label": label})
    return rows


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


MAX_LENGTH = 32
BATCH = 16
# 10 steps an epoch (150 examples, batch 16, last batch 6) -> 100 steps; checkpoints 25, 50, 75, 100.
# (Earlier fixtures used 3 epochs, lr 5e-4, warmup 2, save_steps 8: the model hardly learned.)
EPOCHS = 10
LR = 5e-3
WARMUP = 5
SAVE_STEPS = 25
SEED = 0
KEEP = {
    "config.json", "model.safetensors", "trainer_state.json", "vocab.txt",
    "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
}


def model_config(vocab_size):
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        num_labels=2,
        id2label={0: "neg", 1: "pos"},
        label2id={"neg": 0, "pos": 1},
        pad_token_id=0,
    )


def prune_run(run: Path, vocab_path: Path):
    """Remove pickles and anything outside KEEP; put vocab.txt into run and every checkpoint."""
    for d in [run] + sorted(p for p in run.iterdir() if p.is_dir()):
        for f in list(d.iterdir()):
            if f.is_dir():
                if d == run and f.name.startswith("checkpoint-"):
                    continue
                shutil.rmtree(f)
            elif f.name not in KEEP:
                f.unlink()
        shutil.copyfile(vocab_path, d / "vocab.txt")
    for f in run.rglob("*"):
        assert not (f.suffix in {".bin", ".pt", ".pth", ".pkl"}), f


def train(run_dir: Path, vocab_path: Path, texts, labels):
    if run_dir.exists():
        shutil.rmtree(run_dir)
    tok = BertTokenizer(vocab=str(vocab_path), do_lower_case=True)
    items = []
    for t, y in zip(texts, labels):
        enc = tok(t, truncation=True, max_length=MAX_LENGTH)
        items.append({
            "input_ids": enc["input_ids"],
            "token_type_ids": enc["token_type_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": y,
        })
    set_seed(SEED)
    torch.manual_seed(SEED)
    model = BertForSequenceClassification(model_config(tok.vocab_size))
    args = TrainingArguments(
        output_dir=str(run_dir),
        per_device_train_batch_size=BATCH,
        num_train_epochs=EPOCHS,
        learning_rate=LR,
        lr_scheduler_type="linear",
        warmup_steps=WARMUP,
        weight_decay=0.0,
        logging_steps=1,
        save_strategy="steps",
        save_steps=SAVE_STEPS,
        seed=SEED,
        data_seed=SEED,
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=ListDataset(items),
        data_collator=DataCollatorWithPadding(tok),
        processing_class=tok,
    )
    trainer.train()
    trainer.save_model(str(run_dir))
    trainer.save_state()
    tok.save_pretrained(str(run_dir))
    prune_run(run_dir, vocab_path)
    state = json.loads((run_dir / "trainer_state.json").read_text())
    print(run_dir.name, "global_step", state["global_step"],
          "checkpoints", sorted(p.name for p in run_dir.iterdir() if p.is_dir()),
          "final loss", [h for h in state["log_history"] if "loss" in h][-1]["loss"])


def main():
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)
    vocab = make_vocab()
    vocab_path = OUT / "vocab.txt"
    vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    print("vocab size", len(vocab))

    rng = random.Random(0)
    seen = set()  # no duplicate texts within or across train/test
    train_rows, flipped = make_data(rng, 150, "train", 0.10, seen)
    test_rows, _ = make_data(rng, 40, "test", 0.0, seen)
    pair_rows = make_pairs(rng, 20)
    write_jsonl(OUT / "train.jsonl", train_rows)
    write_jsonl(OUT / "test.jsonl", test_rows)
    write_jsonl(OUT / "pairs.jsonl", pair_rows)
    (OUT / "noisy_ids.txt").write_text("\n".join(flipped) + "\n")
    print("train", len(train_rows), "flipped", len(flipped), "test", len(test_rows), "pairs", len(pair_rows))

    label2id = {"neg": 0, "pos": 1}
    texts = [r["text"] for r in train_rows]
    labels = [label2id[r["label"]] for r in train_rows]
    train(OUT / "run", vocab_path, texts, labels)
    train(OUT / "null-run", vocab_path, [""] * len(texts), labels)
    print("torch", torch.__version__, "transformers", transformers.__version__, "python", sys.version.split()[0])


if __name__ == "__main__":
    main()
