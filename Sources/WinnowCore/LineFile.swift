import Foundation

/// A text file held as raw bytes with the byte range of every line, so lines can be copied verbatim
/// (pruning) or replaced one by one (label noise) without re-serialising the rest.
///
///     let f = try LineFile(url: URL(fileURLWithPath: "train.jsonl"))
///     let third = f.line(3)          // bytes of line 3 (1-based), line break included
package struct LineFile: Sendable {
    package let url: URL
    package let bytes: Data
    /// Byte range of each line, its line break included.
    package let ranges: [Range<Int>]

    package init(url: URL) throws {
        self.url = url
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { throw WinnowError.missingFile(path: url.path, reason: "no such file") }
        guard !isDir.boolValue else { throw WinnowError.invalidFile(path: url.path, line: nil, reason: "is a folder, not a text file") }
        guard let data = try? Data(contentsOf: url) else { throw WinnowError.invalidFile(path: url.path, line: nil, reason: "cannot be read") }
        bytes = data
        var r: [Range<Int>] = []
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: 0x0A).map { $0 + 1 } ?? bytes.endIndex
            r.append(start..<end)
            start = end
        }
        ranges = r
    }

    package var count: Int { ranges.count }

    /// Lines holding anything but spaces, tabs and line breaks.
    package var nonBlankCount: Int {
        ranges.count { r in bytes[r].contains { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D } }
    }

    /// The bytes of 1-based line `n`, always ending with a line break.
    package func line(_ n: Int) -> Data {
        var d = bytes[ranges[n - 1]]
        if d.last != 0x0A { d.append(0x0A) }
        return Data(d)
    }

    /// The text of 1-based line `n` without its line break (invalid UTF-8 replaced).
    package func text(_ n: Int) -> String {
        var d = bytes[ranges[n - 1]]
        while let l = d.last, l == 0x0A || l == 0x0D { d = d.dropLast() }
        return String(decoding: d, as: UTF8.self)
    }

    /// The given 1-based lines, verbatim, in the order given.
    package func lines(_ ns: [Int]) -> Data {
        var out = Data()
        for n in ns { out.append(line(n)) }
        return out
    }
}

extension StringProtocol {
    /// The lines of a text, split at "\n" and at "\r\n" (one Character in Swift, so `split(separator: "\n")`
    /// would leave a Windows-style file as one line), without their line breaks.
    package func textLines(omittingEmpty: Bool = true) -> [SubSequence] {
        split(omittingEmptySubsequences: omittingEmpty, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }

    /// The records of a CSV text: split at line breaks outside double quotes (a quoted field may hold
    /// one, as a data line's id can), empty records omitted, without their line breaks.
    package func csvRecords() -> [SubSequence] {
        var out: [SubSequence] = []
        // A quote opens a quoted field only at the field's start (elsewhere it is a literal, as
        // `CSVDataset.split` reads it); inside one, "" is an escaped quote and a lone " closes it.
        var start = startIndex, quoted = false, fieldStart = true, i = startIndex
        while i < endIndex {
            let c = self[i]
            if quoted {
                if c == "\"" {
                    let next = index(after: i)
                    if next < endIndex && self[next] == "\"" { i = next } else { quoted = false }
                }
            } else if c == "\"" && fieldStart {
                quoted = true
            } else if c == "\n" || c == "\r\n" {
                if start < i { out.append(self[start..<i]) }
                start = index(after: i)
            }
            fieldStart = !quoted && (c == "," || c == "\n" || c == "\r\n")
            i = index(after: i)
        }
        if start < endIndex { out.append(self[start..<endIndex]) }
        return out
    }
}
