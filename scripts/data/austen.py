"""Jane Austen's six novels -> data/austen/{corpus,heldout}.txt, for language-model pre-training.

Source: Debian r-cran-janeaustenr, R lazy-load database janeaustenr/data/Rdata.{rdb,rdx}, read with
rlazyload.py (stdlib). The text is that of R's janeaustenr::austen_books(): the character vectors
sensesensibility, prideprejudice, mansfieldpark, emma, northangerabbey, persuasion, concatenated in
that order (one element per printed line). A paragraph = consecutive non-empty lines (each stripped)
joined with one space; paragraphs end at empty lines and at book ends. One paragraph per output line,
in book order. heldout.txt = random.Random(0).sample of 5% (floor) of the paragraph indices, removed
from corpus.txt; both files keep book order.

`printed` writes one book's non-empty printed lines (about 12 words each, stripped, in order) to one file,
for scripts/decoder-noise.sh's SOURCE (lines shaped unlike paragraphs).

usage: austen.py check --out DIR
       austen.py build --rdata PATH/janeaustenr/data/Rdata --out DIR [--source TEXT]
       austen.py printed --rdata PATH/janeaustenr/data/Rdata --book sensesensibility --out FILE
"""

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import rlazyload  # noqa: E402

NAME = "austen"
VERSION = 1
BOOKS = (("sensesensibility", "Sense & Sensibility", 12624),
         ("prideprejudice", "Pride & Prejudice", 13030),
         ("mansfieldpark", "Mansfield Park", 15349),
         ("emma", "Emma", 16235),
         ("northangerabbey", "Northanger Abbey", 7856),
         ("persuasion", "Persuasion", 8328))
FILES = ("corpus.txt", "heldout.txt")


def paragraphs(lines):
    out, cur = [], []
    for s in lines:
        s = (s or "").strip()
        if s:
            cur.append(s)
        elif cur:
            out.append(" ".join(cur))
            cur = []
    if cur:
        out.append(" ".join(cur))
    return out


def build(rdata, outdir, source):
    for ext in (".rdb", ".rdx"):
        if not os.path.isfile(rdata + ext):
            raise common.DataError("missing %s%s (is r-cran-janeaustenr installed?)" % (rdata, ext))
    try:
        objs = rlazyload.read_lazyload(rdata, [b[0] for b in BOOKS])
        paras, n_lines = [], 0
        for var, title, expected in BOOKS:
            lines = rlazyload.character(objs[var], var)
            if len(lines) != expected:
                raise common.DataError("%s: expected %d lines, found %d" % (var, expected, len(lines)))
            n_lines += len(lines)
            paras.extend(paragraphs(lines))
    except rlazyload.RFormatError as e:
        raise common.DataError("cannot read %s.rdb: %s" % (rdata, e))
    n_held = len(paras) // 20
    held = set(random.Random(0).sample(range(len(paras)), n_held))
    corpus = [p for i, p in enumerate(paras) if i not in held]
    heldout = [p for i, p in enumerate(paras) if i in held]
    words = sum(len(p.split()) for p in paras)
    summary = ("%s: 6 books, %d lines -> %d paragraphs (%d words): corpus %d, heldout %d"
               % (NAME, n_lines, len(paras), words, len(corpus), len(heldout)))
    common.write_outputs(
        outdir, VERSION,
        {"corpus.txt": common.lines_bytes(corpus), "heldout.txt": common.lines_bytes(heldout)},
        {"debian": source, "file": rdata + ".rdb", "rdb_sha256": common.sha256_file(rdata + ".rdb"),
         "objects": [b[0] for b in BOOKS]},
        summary)
    print(summary)


def printed(rdata, book, out):
    for ext in (".rdb", ".rdx"):
        if not os.path.isfile(rdata + ext):
            raise common.DataError("missing %s%s (is r-cran-janeaustenr installed?)" % (rdata, ext))
    if book not in [b[0] for b in BOOKS]:
        raise common.DataError("no book %s (one of %s)" % (book, ", ".join(b[0] for b in BOOKS)))
    try:
        lines = rlazyload.character(rlazyload.read_lazyload(rdata, [book])[book], book)
    except rlazyload.RFormatError as e:
        raise common.DataError("cannot read %s.rdb: %s" % (rdata, e))
    kept = [l.strip() for l in lines if l and l.strip()]
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(common.lines_bytes(kept))
    os.replace(tmp, out)
    print("%s: %s: %d printed lines -> %s" % (NAME, book, len(kept), out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cmd", choices=("check", "build", "printed"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--rdata")
    ap.add_argument("--source", default="r-cran-janeaustenr")
    ap.add_argument("--book", default="sensesensibility")
    a = ap.parse_args()
    if a.cmd == "check":
        s = common.check_complete(a.out, VERSION, FILES)
        if s is None:
            sys.exit(3)
        print(s.replace(NAME + ":", NAME + ": up to date:", 1))
        return
    if not a.rdata:
        ap.error(a.cmd + " needs --rdata")
    if a.cmd == "printed":
        printed(a.rdata, a.book, a.out)
    else:
        build(a.rdata, a.out, a.source)


if __name__ == "__main__":
    common.main_wrapper(NAME, main)
