import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// Writes per-example scores: CSV (default) or JSONL with columns `index,line,id,label,score` plus the
/// score's components, or `.npy` with the score vector. Always atomically.
///
///     try ScoreWriter.write(result, format: .csv, to: url)
public enum ScoreWriter {
    /// Output format: CSV with a header row, JSONL (one object a line), or `.npy` (the scores only).
    public enum Format: String, Sendable, CaseIterable { case csv, jsonl, npy }

    /// Writes `r` to `url` in `format`, replacing the file atomically.
    ///
    /// - Throws: `WinnowError.invalidOption` naming `scores` or `components` unless `r.table` has one row per
    ///   score and every component one value per score; an error when `url` cannot be written (the file is
    ///   then left unchanged in both cases).
    public static func write(_ r: ScoreResult, format: Format, to url: URL) throws {
        try write(format: format, count: r.scores.count, components: r.components.map(\.0), to: url) { emit in try emit(r) }
    }

    /// Writes results that arrive part by part (consecutive examples, each numbered from its
    /// `table.indexOffset`, all with the components `components`), `count` examples in all, holding one
    /// part at a time: the same file `write(_:format:to:)` gives for the merged result. A part that does not
    /// fit (other components, a table and scores of different lengths, more or fewer examples in all than
    /// `count`) throws `WinnowError.invalidOption` and leaves `url` unchanged.
    public static func write(format: Format, count: Int, components: [String], to url: URL,
                             _ produce: (_ emit: (ScoreResult) throws -> Void) throws -> Void) throws {
        var written = 0
        func check(_ r: ScoreResult) throws {
            guard r.table.count == r.scores.count else {
                throw WinnowError.invalidOption(name: "scores", reason: "\(r.scores.count) scores for \(r.table.count) examples of the table")
            }
            guard r.components.map(\.0) == components else {
                throw WinnowError.invalidOption(name: "components", reason: "\(r.components.map(\.0)) where \(components) were announced")
            }
            for (name, v) in r.components where v.count != r.scores.count {
                throw WinnowError.invalidOption(name: "components", reason: "'\(name)' has \(v.count) values for \(r.scores.count) scores")
            }
            written += r.scores.count
            guard written <= count else { throw WinnowError.invalidOption(name: "count", reason: "more than the \(count) examples announced") }
        }
        // Inside the atomic write: a short total leaves `url` as it was.
        func finish() throws {
            guard written == count else { throw WinnowError.invalidOption(name: "count", reason: "\(written) examples given, \(count) announced") }
        }
        switch format {
        case .npy:
            try AtomicFile.write(to: url) { fd in
                try npyHeader(shape: [count]).withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
                try produce { r in
                    try check(r)
                    try r.scores.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
                }
                try finish()
            }
        case .csv:
            try AtomicFile.writeLines(to: url) { emitLine in try withoutActuallyEscaping(emitLine) { emit in
                try emit((["index", "line", "id", "label", "score"] + components).joined(separator: ","))
                try produce { r in
                    try check(r)
                    let data = r.table
                    for i in 0..<data.count {
                        var row = [String(i + data.indexOffset), String(data.lines[i]), csv(data.ids[i] ?? ""), csv(label(data, i)), num(r.scores[i])]
                        row += r.components.map { num($0.1[i]) }
                        try emit(row.joined(separator: ","))
                    }
                }
                try finish()
            } }
        case .jsonl:
            try AtomicFile.writeLines(to: url) { emitLine in try withoutActuallyEscaping(emitLine) { emit in
                try produce { r in
                    try check(r)
                    let data = r.table
                    for i in 0..<data.count {
                        var d: [String: Any] = ["index": i + data.indexOffset, "line": data.lines[i], "label": label(data, i), "score": r.scores[i]]
                        d["id"] = data.ids[i] ?? NSNull()
                        for (k, v) in r.components { d[k] = v[i] }
                        try emit(String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]), as: UTF8.self))
                    }
                }
                try finish()
            } }
        }
    }

    static func label(_ d: ExampleTable, _ i: Int) -> String { d.labels[i] >= 0 ? d.labelNames[Int(d.labels[i])] : "" }
    static func num(_ x: Double) -> String { String(format: "%.9g", x) }
    package static func csv(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// A NumPy .npy (format 1.0) of little-endian float64 values in row-major order.
    public static func npy(_ values: [Double], shape: [Int]) -> Data {
        var d = npyHeader(shape: shape)
        values.withUnsafeBufferPointer { d.append(Data(buffer: $0)) }
        return d
    }

    /// The .npy header for float64 values of `shape` (the values follow it).
    static func npyHeader(shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': \(shapeText), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0])
        let len = UInt16(header.utf8.count)
        d.append(contentsOf: [UInt8(len & 0xff), UInt8(len >> 8)])
        d.append(Data(header.utf8))
        return d
    }
}
