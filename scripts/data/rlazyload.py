"""Minimal reader for R lazy-load databases (NAME.rdb + NAME.rdx), Python stdlib only.

An R package's `data/Rdata.rdx` is a gzip-compressed R serialisation of
list(variables = list(NAME = c(offset, length)), references = list(), compressed = ...).
Each record in `Rdata.rdb` at (offset, length) is a 4-byte big-endian uncompressed length then
  compressed = TRUE (1): a zlib stream;
  compressed = 2 or 3:   a type byte ('Z' raw LZMA2, '2' bzip2, '1' zlib, '0' none) then the data,
holding an R XDR serialisation (format 'X', versions 2 and 3) of the object.

The unserializer covers what data objects need: NULL, logical/integer/double/complex/character
vectors, lists, pairlists, symbols, attributes, references, environments as opaque dicts and the
ALTREP compact sequences and wrappers that R >= 3.5 writes. Functions, byte code and external
pointers raise RFormatError.
"""

import bz2
import gzip
import lzma
import struct
import zlib

__all__ = ["RFormatError", "RObject", "unserialize", "read_rdx", "read_lazyload", "character"]


class RFormatError(Exception):
    pass


class RObject:
    """An R value: `type` (SEXP type name), `value` (Python list / str / dict) and `attributes`."""

    __slots__ = ("type", "value", "attributes")

    def __init__(self, type_, value, attributes=None):
        self.type = type_
        self.value = value
        self.attributes = attributes or {}

    def attr(self, name, default=None):
        return self.attributes.get(name, default)

    def names(self):
        n = self.attr("names")
        return list(n.value) if n is not None else None

    def __repr__(self):
        v = self.value
        if isinstance(v, list) and len(v) > 4:
            v = v[:4] + ["..."]
        return "RObject(%s, %r, attrs=%s)" % (self.type, v, list(self.attributes))


# SEXP types
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, DOTSXP = 9, 10, 13, 14, 15, 16, 17
VECSXP, EXPRSXP, RAWSXP, S4SXP = 19, 20, 24, 25
# serialisation pseudo-types
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP = 255, 254, 253, 252, 251
BASENAMESPACE_SXP, NAMESPACESXP, PACKAGESXP, PERSISTSXP = 250, 249, 248, 247
EMPTYENV_SXP, BASEENV_SXP, ATTRLANGSXP, ATTRLISTSXP, ALTREP_SXP = 242, 241, 240, 239, 238

NA_INTEGER = -(2 ** 31)
_PAIR_TYPES = {LISTSXP: "pairlist", LANGSXP: "language", CLOSXP: "closure", PROMSXP: "promise",
               DOTSXP: "dots", ATTRLANGSXP: "language", ATTRLISTSXP: "pairlist"}
_SPECIAL = {NILVALUE_SXP: None, GLOBALENV_SXP: "<globalenv>", UNBOUNDVALUE_SXP: "<unbound>",
            MISSINGARG_SXP: "<missing>", BASENAMESPACE_SXP: "<basenamespace>",
            EMPTYENV_SXP: "<emptyenv>", BASEENV_SXP: "<baseenv>"}


class _Reader:
    def __init__(self, data):
        self.b = data
        self.p = 0
        self.refs = []

    def take(self, n):
        if self.p + n > len(self.b):
            raise RFormatError("truncated R serialisation at byte %d" % self.p)
        s = self.b[self.p:self.p + n]
        self.p += n
        return s

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def length(self):
        n = self.int()
        if n == -1:  # long vector
            hi, lo = struct.unpack(">II", self.take(8))
            n = (hi << 32) + lo
        elif n < 0:
            raise RFormatError("negative vector length %d" % n)
        return n

    def header(self):
        fmt = self.take(2)
        if fmt != b"X\n":
            raise RFormatError("not an R XDR serialisation (format %r)" % fmt)
        version = self.int()
        self.int()  # writer's R version
        self.int()  # minimal R version to read
        if version == 3:
            self.take(self.int())  # native encoding name
        elif version != 2:
            raise RFormatError("unsupported R serialisation version %d" % version)

    # -- items --------------------------------------------------------------------------------
    def item(self):
        flags = self.int()
        t = flags & 0xFF
        levels = flags >> 12
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))

        if t in _SPECIAL:
            return _SPECIAL[t]
        if t == REFSXP:
            i = flags >> 8
            if i == 0:
                i = self.int()
            return self.refs[i - 1]
        if t == PERSISTSXP:
            obj = RObject("persist", self.strsxp_body())
            self.refs.append(obj)
            return obj
        if t == SYMSXP:
            name = self.item()  # a CHARSXP
            sym = RObject("symbol", name)
            self.refs.append(sym)
            return sym
        if t in (PACKAGESXP, NAMESPACESXP):
            obj = RObject("namespace" if t == NAMESPACESXP else "package", self.strsxp_body())
            self.refs.append(obj)
            return obj
        if t == ENVSXP:
            locked = self.int()
            env = RObject("environment", {}, {})
            self.refs.append(env)
            env.value = {"locked": locked, "enclos": self.item(), "frame": self.item(),
                         "hashtab": self.item()}
            env.attributes = self._attr_dict(self.item())
            return env
        if t in _PAIR_TYPES:
            return self.pairlist(t, has_attr, has_tag)
        if t == ALTREP_SXP:
            return self.altrep()
        if t == CHARSXP:
            return self.charsxp(levels)

        if t in (LGLSXP, INTSXP):
            n = self.length()
            vals = list(struct.unpack(">%di" % n, self.take(4 * n)))
            vals = [None if v == NA_INTEGER else v for v in vals]
            obj = RObject("logical" if t == LGLSXP else "integer",
                          [None if v is None else bool(v) for v in vals] if t == LGLSXP else vals)
        elif t == REALSXP:
            n = self.length()
            obj = RObject("double", list(struct.unpack(">%dd" % n, self.take(8 * n))))
        elif t == CPLXSXP:
            n = self.length()
            d = struct.unpack(">%dd" % (2 * n), self.take(16 * n))
            obj = RObject("complex", [complex(d[2 * i], d[2 * i + 1]) for i in range(n)])
        elif t == STRSXP:
            obj = RObject("character", self.strsxp_body())
        elif t in (VECSXP, EXPRSXP):
            n = self.length()
            obj = RObject("list" if t == VECSXP else "expression", [self.item() for _ in range(n)])
        elif t == RAWSXP:
            obj = RObject("raw", self.take(self.length()))
        elif t == S4SXP:
            obj = RObject("S4", None)
        else:
            raise RFormatError("unsupported R object type %d in serialisation" % t)
        if has_attr:
            obj.attributes = self._attr_dict(self.item())
        return obj

    def strsxp_body(self):
        n = self.length()
        out = []
        for _ in range(n):
            flags = self.int()
            if flags & 0xFF != CHARSXP:
                raise RFormatError("expected CHARSXP in character vector, got type %d" % (flags & 0xFF))
            out.append(self.charsxp(flags >> 12))
        return out

    def charsxp(self, levels):
        n = self.int()
        if n == -1:
            return None  # NA_character_
        raw = self.take(n)
        if levels & (1 << 2):  # LATIN1_MASK
            return raw.decode("latin-1")
        # UTF8_MASK, ASCII_MASK, or native (UTF-8 on the machines that build Debian's packages)
        return raw.decode("utf-8", errors="replace")

    def pairlist(self, t, has_attr, has_tag):
        # Iterative over the CDR chain to avoid deep recursion on long pairlists.
        kind = _PAIR_TYPES[t]
        items, tags, attrs = [], [], None
        while True:
            a = self.item() if has_attr else None
            if attrs is None and a is not None:
                attrs = a
            tag = self.item() if has_tag else None
            items.append(self.item())
            tags.append(tag.value if isinstance(tag, RObject) and tag.type == "symbol" else None)
            flags = self.int()
            nt = flags & 0xFF
            if nt not in (LISTSXP, ATTRLISTSXP) or kind != "pairlist":
                self.p -= 4
                if kind != "pairlist":
                    self.item()  # rest of a call/closure: read and drop
                    return RObject(kind, None)
                tail = self.item()
                if tail is not None:
                    raise RFormatError("improper pairlist tail")
                break
            has_attr = bool(flags & (1 << 9))
            has_tag = bool(flags & (1 << 10))
        obj = RObject("pairlist", items)
        obj.attributes = {"__tags__": tags}
        if attrs is not None:
            obj.attributes.update(self._attr_dict(attrs))
        return obj

    def _attr_dict(self, pl):
        if pl is None:
            return {}
        if not isinstance(pl, RObject) or pl.type != "pairlist":
            raise RFormatError("attributes are not a pairlist")
        return {tag: v for tag, v in zip(pl.attributes["__tags__"], pl.value)}

    def altrep(self):
        info = self.item()
        state = self.item()
        attr = self.item()
        cls = info.value[0].value if isinstance(info, RObject) and info.value else "?"
        if cls in ("compact_intseq", "compact_realseq"):
            n, start, step = state.value[:3]
            n = int(n)
            seq = [start + i * step for i in range(n)]
            obj = RObject("integer" if cls == "compact_intseq" else "double",
                          [int(v) for v in seq] if cls == "compact_intseq" else seq)
        elif cls.startswith("wrap_"):
            obj = state.value[0]
            obj = RObject(obj.type, obj.value, dict(obj.attributes))
        elif cls == "deferred_string":
            arg = state.value[0]
            obj = RObject("character", [None if v is None else _r_as_character(v) for v in arg.value])
        else:
            raise RFormatError("unsupported ALTREP class %r" % cls)
        if isinstance(attr, RObject) and attr.type == "pairlist":
            obj.attributes.update(self._attr_dict(attr))
        return obj


def _r_as_character(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def unserialize(data):
    """Decode one R XDR serialisation (bytes) to an RObject."""
    r = _Reader(data)
    r.header()
    return r.item()


def _rlist_to_dict(obj):
    return dict(zip(obj.names() or [], obj.value))


def read_rdx(rdx_path):
    """Return (variables: {name: (offset, length)}, compressed: int) from an .rdx file."""
    with open(rdx_path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:3] == b"BZh":
        raw = bz2.decompress(raw)
    elif raw[:6] == b"\xfd7zXZ\x00":
        raw = lzma.decompress(raw)
    idx = _rlist_to_dict(unserialize(raw))
    if "variables" not in idx:
        raise RFormatError("%s: no 'variables' in lazy-load index" % rdx_path)
    variables = {k: (int(v.value[0]), int(v.value[1])) for k, v in _rlist_to_dict(idx["variables"]).items()}
    comp = idx.get("compressed")
    compressed = 1 if comp is None else int(comp.value[0])
    return variables, compressed


def _decompress(rec, compressed, name):
    if len(rec) < 5:
        raise RFormatError("record %r too short" % name)
    outlen = struct.unpack(">I", rec[:4])[0]
    if compressed in (0,):
        data = rec[4:]
    elif compressed == 1:
        data = zlib.decompress(rec[4:])
    else:
        kind, body = rec[4:5], rec[5:]
        if kind == b"Z":
            data = lzma.decompress(body, format=lzma.FORMAT_RAW,
                                   filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}])
        elif kind == b"2":
            data = bz2.decompress(body)
        elif kind == b"1":
            data = zlib.decompress(body)
        elif kind == b"0":
            data = body
        else:
            raise RFormatError("record %r: unknown compression type byte %r" % (name, kind))
    if len(data) != outlen:
        raise RFormatError("record %r: decompressed to %d bytes, header says %d" % (name, len(data), outlen))
    return data


def read_lazyload(base, names=None):
    """Read objects from BASE.rdb/BASE.rdx; returns {name: RObject} (all, or just `names`)."""
    variables, compressed = read_rdx(base + ".rdx")
    wanted = list(variables) if names is None else list(names)
    missing = [n for n in wanted if n not in variables]
    if missing:
        raise RFormatError("%s.rdx has no object(s) %s (has: %s)" % (base, missing, sorted(variables)))
    out = {}
    with open(base + ".rdb", "rb") as f:
        for name in wanted:
            off, ln = variables[name]
            f.seek(off)
            rec = f.read(ln)
            if len(rec) != ln:
                raise RFormatError("%s.rdb truncated reading %r" % (base, name))
            out[name] = unserialize(_decompress(rec, compressed, name))
    return out


def character(obj, what="object"):
    """The values of an R character vector, or RFormatError."""
    if not isinstance(obj, RObject) or obj.type != "character":
        raise RFormatError("%s is not a character vector (%r)" % (what, obj))
    return obj.value
