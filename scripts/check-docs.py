#!/usr/bin/env python3
"""Lists public declarations of the library (Sources/Winnow*, not the CLI) that have no `///` doc comment,
the cases of public enums included.

A declaration counts as documented when the lines right above it (attributes aside) are `///` comments,
or when it implements a protocol requirement whose documentation it inherits: `description`,
`init(from:)`, `encode(to:)`, `==`, `init?(argument:)`. Exit 1 when any is missing (CI runs it).
"""
import os, re, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources")
decl = re.compile(r'^\s*(?:@\w+(?:\([^)]*\))?\s+)*public\s+(?:private\(set\)\s+|internal\(set\)\s+|package\(set\)\s+)?'
                  r'(?:static\s+|final\s+|mutating\s+|convenience\s+|override\s+|nonisolated\(unsafe\)\s+)*'
                  r'(struct|class|enum|protocol|func|var|let|init|typealias|case|subscript|extension)\b(.*)')
# Requirements inside a public protocol are public without the keyword.
requirement = re.compile(r'^    (?:@\w+(?:\([^)]*\))?\s+)*(?:static\s+|mutating\s+)*(var|func|init|associatedtype|subscript)\b')
inherited = re.compile(r'^\s*(var description|var errorDescription|init\(from decoder|func encode\(to encoder|static func ==|init\?\(argument|'
                       r'var defaultValueDescription|func next\(\))')
missing = []
for mod in sorted(os.listdir(root)):
    if not mod.startswith("Winnow") or mod in ("WinnowCommands", "WinnowCLI", "WinnowMPI", "WinnowFuzz"):
        continue
    for dirpath, _, files in os.walk(os.path.join(root, mod)):
        for f in sorted(files):
            if not f.endswith(".swift"):
                continue
            path = os.path.join(dirpath, f)
            lines = open(path, encoding="utf-8").read().split("\n")
            in_protocol = False
            enums = []   # indentation of the public enums open at this line
            for i, line in enumerate(lines):
                if re.match(r'^public protocol ', line):
                    in_protocol = True
                elif in_protocol and line.startswith("}"):
                    in_protocol = False
                e = re.match(r'^(\s*)(?:@\w+(?:\([^)]*\))?\s+)*public\s+(?:indirect\s+)?enum\b', line)
                if e and not line.rstrip().endswith("}"):
                    enums.append(len(e.group(1)))
                elif enums and line.rstrip() == " " * enums[-1] + "}":
                    enums.pop()
                # A public enum's cases are public without the keyword.
                case = enums and re.match(r'^' + " " * (enums[-1] + 4) + r'(case)\s+\w', line)
                m = decl.match(line) or (requirement.match(line) if in_protocol else None) or case
                if not m or m.group(1) == "extension":
                    continue
                rest = line.strip()
                body = re.sub(r'^(@\w+(\([^)]*\))?\s+)*public\s+', '', rest)
                if inherited.match(body):
                    continue
                j = i - 1
                while j >= 0 and re.match(r'^\s*@\w+', lines[j]):
                    j -= 1
                if j >= 0 and lines[j].strip().startswith("///"):
                    continue
                # Enum cases on one line after a documented case list share its doc (`case a, b`).
                missing.append(f"{os.path.relpath(path, os.path.join(root, '..'))}:{i + 1}: {rest[:100]}")
for m in missing:
    print(m)
print(f"{len(missing)} public declaration(s) without a doc comment", file=sys.stderr)
sys.exit(1 if missing else 0)
