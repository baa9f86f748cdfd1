import Foundation

/// Writes per-example scores: CSV (default) or JSONL with columns `index,line,id,label,score` plus the
/// score's components, or `.npy` with the score vector. Always atomically.
///
///     try ScoreWriter.write(result, format: .csv, to: url)
public enum ScoreWriter {
    public enum Format: String, Sendable, CaseIterable { case csv, jsonl, npy }

    public static func write(_ r: ScoreResult, format: Format, to url: URL) throws {
        let data = r.table
        precondition(data.count == r.scores.count, "ScoreWriter: \(r.scores.count) scores for \(data.count) examples")
        switch format {
        case .npy:
            try AtomicFile.write(npy(r.scores, shape: [r.scores.count]), to: url)
        case .csv:
            try AtomicFile.writeLines(to: url) { emit in
                try emit((["index", "line", "id", "label", "score"] + r.components.map(\.0)).joined(separator: ","))
                for i in 0..<data.count {
                    var row = [String(i + data.indexOffset), String(data.lines[i]), csv(data.ids[i] ?? ""), csv(label(data, i)), num(r.scores[i])]
                    row += r.components.map { num($0.1[i]) }
                    try emit(row.joined(separator: ","))
                }
            }
        case .jsonl:
            try AtomicFile.writeLines(to: url) { emit in
                for i in 0..<data.count {
                    var d: [String: Any] = ["index": i + data.indexOffset, "line": data.lines[i], "label": label(data, i), "score": r.scores[i]]
                    d["id"] = data.ids[i] ?? NSNull()
                    for (k, v) in r.components { d[k] = v[i] }
                    try emit(String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]), as: UTF8.self))
                }
            }
        }
    }

    static func label(_ d: ExampleTable, _ i: Int) -> String { d.labels[i] >= 0 ? d.labelNames[Int(d.labels[i])] : "" }
    static func num(_ x: Double) -> String { String(format: "%.9g", x) }
    static func csv(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// A NumPy .npy (format 1.0) of little-endian float64 values in row-major order.
    public static func npy(_ values: [Double], shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': \(shapeText), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0])
        let len = UInt16(header.utf8.count)
        d.append(contentsOf: [UInt8(len & 0xff), UInt8(len >> 8)])
        d.append(Data(header.utf8))
        values.withUnsafeBufferPointer { d.append(Data(buffer: $0)) }
        return d
    }
}
