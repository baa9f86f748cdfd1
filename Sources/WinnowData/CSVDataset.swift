import Foundation
import WinnowCore

/// A batch of numeric feature rows for the MLP.
public struct FeatureBatch: ClassifierBatch {
    /// Number of rows (B).
    public let size: Int
    /// [size, features], row-major.
    public var features: Tensor
    /// Class index per row, -1 when unknown (every row before `CSVDataset.assignLabels`).
    public var labels: [Int32]
    /// Position of each row in its dataset.
    public var indices: [Int]
}

/// A CSV file of numeric features with a header: a label column plus feature columns (and an optional
/// `id` column). Every feature must be a finite number; errors name the file, line and column.
///
///     let data = try CSVDataset(url: URL(fileURLWithPath: "features.csv"), labelColumn: "label")
public struct CSVDataset: ClassifierData {
    /// The file read.
    public let url: URL
    /// 1-based line of the header (the first non-blank line).
    public let headerLine: Int
    /// Feature column names in header order: every column except the label and `id` columns.
    public let featureNames: [String]
    /// [count, features]
    public let features: Tensor
    /// Label strings as written.
    public let rawLabels: [String?]
    /// 1-based file line of each row.
    public let lines: [Int]
    /// The `id` column per row, nil when the header has no `id` column.
    public let ids: [String?]
    /// Class index per row (-1 until `assignLabels` has run, or for a row without a label).
    public private(set) var labels: [Int32] = []
    /// Class names, in the order of the indices in `labels`.
    public private(set) var labelNames: [String] = []
    /// Rows left out because their label field is empty (with `requireLabels`: no gold label), as JSONL
    /// leaves out lines without one.
    public private(set) var skipped = 0

    /// Number of rows (examples).
    public var count: Int { lines.count }

    /// Reads and validates the whole file. `labelColumn` names the label column, which may be absent when
    /// `requireLabels` is false; an empty label field reads as nil, and such rows are left out (counted in
    /// `skipped`) when `requireLabels` is true. `labels` stays empty until `assignLabels`.
    ///
    /// - Throws: `WinnowError.missingFile` when the file does not exist; `WinnowError.invalidFile` naming the line
    ///   (and column) for invalid UTF-8, a bad header, no rows, a wrong field count, or a non-numeric or non-finite
    ///   feature.
    public init(url: URL, labelColumn: String = "label", requireLabels: Bool = true) throws {
        self.url = url
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw WinnowError.missingFile(path: path, reason: "no such data file") }
        let data = try Data(contentsOf: url)
        guard let text = String(data: data, encoding: .utf8) else {
            // Name the first line that does not decode.
            let bad = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                .firstIndex { String(data: Data($0), encoding: .utf8) == nil }
            throw WinnowError.invalidFile(path: path, line: bad.map { $0 + 1 }, reason: "not valid UTF-8")
        }
        var rows: [(Int, [String])] = []
        var lineNo = 0
        for raw in text.textLines(omittingEmpty: false) {
            lineNo += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            rows.append((lineNo, try CSVDataset.split(String(line), path: path, line: lineNo)))
        }
        guard let header = rows.first else { throw WinnowError.invalidFile(path: path, line: nil, reason: "the file is empty") }
        let cols = header.1
        headerLine = header.0
        if let dup = cols.indices.first(where: { i in cols[..<i].contains(cols[i]) }) {
            throw WinnowError.invalidFile(path: path, line: header.0, reason: "column '\(cols[dup])' appears more than once in the header")
        }
        let labelIdx = cols.firstIndex(of: labelColumn)
        if labelIdx == nil && requireLabels {
            throw WinnowError.invalidFile(path: path, line: header.0, reason: "no '\(labelColumn)' column in the header (columns: \(cols.joined(separator: ", ")))")
        }
        let idIdx = cols.firstIndex(of: "id")
        let featIdx = cols.indices.filter { $0 != labelIdx && $0 != idIdx }
        guard !featIdx.isEmpty else { throw WinnowError.invalidFile(path: path, line: header.0, reason: "no feature columns") }
        featureNames = featIdx.map { cols[$0] }
        let body = rows.dropFirst()
        guard !body.isEmpty else { throw WinnowError.invalidFile(path: path, line: nil, reason: "the file holds a header but no rows") }
        var values: [Float] = []
        values.reserveCapacity(body.count * featIdx.count)
        var labs: [String?] = [], lns: [Int] = [], idv: [String?] = []
        for (ln, fields) in body {
            guard fields.count == cols.count else {
                throw WinnowError.invalidFile(path: path, line: ln, reason: "\(fields.count) fields, the header has \(cols.count)")
            }
            for j in featIdx {
                let s = fields[j].trimmingCharacters(in: .whitespaces)
                guard let v = Float(s) else {
                    throw WinnowError.invalidFile(path: path, line: ln, reason: "column '\(cols[j])': '\(s)' is not a number (a CSV holds numeric features for the MLP; text data goes in JSONL)")
                }
                guard v.isFinite else {
                    throw WinnowError.invalidFile(path: path, line: ln, reason: "column '\(cols[j])': \(s) is not finite")
                }
                values.append(v)
            }
            let label = labelIdx.map { fields[$0] }.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
            if label == nil && requireLabels {
                values.removeLast(featIdx.count)
                skipped += 1
                continue
            }
            labs.append(label)
            lns.append(ln)
            idv.append(idIdx.map { fields[$0] })
        }
        guard !lns.isEmpty else { throw WinnowError.invalidFile(path: path, line: nil, reason: "no row has a label in column '\(labelColumn)'") }
        features = Tensor(shape: [lns.count, featIdx.count], values: values)
        rawLabels = labs
        lines = lns
        ids = idv
    }

    /// Sorted unique labels (numerically when all are integers).
    public var sortedLabels: [String] {
        let set = Set(rawLabels.compactMap { $0 })
        if set.allSatisfy({ Int($0) != nil }) { return set.sorted { Int($0)! < Int($1)! } }
        return set.sorted()
    }

    /// Maps labels to indices of `names`; an unknown label is an error naming the line, or with
    /// `unknownAsNone` reads as no label (-1). Returns the unknown labels met, sorted.
    @discardableResult
    public mutating func assignLabels(_ names: [String], unknownAsNone: Bool = false) throws -> [String] {
        let index = Dictionary(names.enumerated().map { ($0.element, Int32($0.offset)) }, uniquingKeysWith: { a, _ in a })
        var unknown: Set<String> = []
        labels = try zip(rawLabels, lines).map { l, ln in
            guard let l else { return -1 }
            guard let i = index[l] else {
                if unknownAsNone { unknown.insert(l); return -1 }
                throw WinnowError.invalidFile(path: url.path, line: ln, reason: "label '\(l)' is not one of the model's labels [\(names.joined(separator: ", "))]")
            }
            return i
        }
        labelNames = names
        return unknown.sorted()
    }

    /// The 1-based line of the header of a CSV file (its first non-blank line).
    package static func headerLine(of file: LineFile) -> Int {
        guard file.count > 0 else { return 1 }
        return (1...max(1, file.count)).first { !file.text($0).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty } ?? 1
    }

    /// The rows at dataset positions `idx`, in that order (labels -1 until `assignLabels`).
    public func batch(_ idx: [Int]) -> FeatureBatch {
        let F = featureNames.count
        var x = Tensor(shape: [idx.count, F])
        features.withUnsafeBufferPointer { src in
            x.withUnsafeMutableBufferPointer { dst in
                for (r, i) in idx.enumerated() {
                    for j in 0..<F { dst[r * F + j] = src[i * F + j] }
                }
            }
        }
        return FeatureBatch(size: idx.count, features: x, labels: idx.map { labels.isEmpty ? -1 : labels[$0] }, indices: idx)
    }

    /// Splits one CSV record (RFC 4180 quotes; no embedded newlines).
    package static func split(_ line: String, path: String, line ln: Int) throws -> [String] {
        var out: [String] = [], cur = "", quoted = false
        var it = Array(line).makeIterator()
        var pending: Character? = nil
        while let c = pending ?? it.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let n = it.next() {
                        if n == "\"" { cur.append("\"") } else { quoted = false; pending = n }
                    } else { quoted = false }
                } else { cur.append(c) }
            } else if c == "\"" && cur.isEmpty {
                quoted = true
            } else if c == "," {
                out.append(cur); cur = ""
            } else { cur.append(c) }
        }
        if quoted {
            throw WinnowError.invalidFile(path: path, line: ln, reason:
                "a quoted field is not closed on its line (a line break inside a field is not read: one row a line)")
        }
        out.append(cur)
        return out
    }
}
