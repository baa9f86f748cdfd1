import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// A scores file written by `winnow score` (CSV or JSONL): the input line, label and score of every
/// scored example.
///
///     let f = try ScoreFile(url: URL(fileURLWithPath: "vog.csv"))
public struct ScoreFile: Sendable {
    /// The scores file read.
    public let url: URL
    /// 1-based lines in the data file.
    public var lines: [Int] = []
    /// Label per row as written, empty when the file has none.
    public var labels: [String] = []
    /// Score per row.
    public var scores: [Double] = []
    /// The file's column names (a CSV header, or the fields of a JSONL file's first row, sorted).
    public private(set) var columns: [String] = []
    /// Scores of influence toward a target set (`winnow score tracin --test --aggregate`, column
    /// `toward_target`): higher means more helpful, so keeping the best is `--select hard`.
    public var scoresTowardTarget: Bool { columns.contains("toward_target") }
    /// The data line's `id` per row as written, empty when the file has none.
    public var ids: [String] = []
    /// Scored tokens per row (the `tokens` column of a decoder's scores), empty when the file has none.
    public var tokens: [Int] = []

    /// The column read as the score (`score` unless another was asked for).
    public let column: String

    /// Reads a JSONL (`.jsonl`) or CSV (any other extension but `.npy`) scores file with `line` and `score` fields.
    ///
    /// `column` reads another numeric column as the score, such as cartography's `variability` (Swayamdipta et
    /// al. 2020 keep the most ambiguous, the highest variability: `column: "variability"` with `.hard`).
    ///
    ///     let ambiguous = try ScoreFile(url: URL(fileURLWithPath: "cartography.csv"), column: "variability")
    ///
    /// - Throws: `WinnowError` when the file is missing, not UTF-8, empty or `.npy`, lacks the columns, has a
    ///   malformed row or a non-finite score, or scores a data line more than once.
    public init(url: URL, column: String = "score") throws {
        self.url = url
        self.column = column
        let path = url.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw WinnowError.missingFile(path: path, reason: "no such scores file") }
        guard !isDir.boolValue else { throw WinnowError.invalidFile(path: path, line: nil, reason: "is a folder, not a scores file") }
        if path.lowercased().hasSuffix(".npy") {
            throw WinnowError.invalidFile(path: path, line: nil, reason: ".npy holds no line numbers; score with --format csv or jsonl to prune")
        }
        guard let bytes = try? Data(contentsOf: url) else { throw WinnowError.invalidFile(path: path, line: nil, reason: "cannot be read") }
        if bytes.starts(with: [0x93] + Array("NUMPY".utf8)) {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "is a .npy file (its magic bytes), which holds no line numbers; score with --format csv or jsonl to prune")
        }
        guard let text = String(data: bytes, encoding: .utf8) else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "not valid UTF-8")
        }
        // JSONL by its extension, or by its content under any other name (`winnow score --format jsonl --out s.txt`).
        let jsonl = path.lowercased().hasSuffix(".jsonl")
            || (!path.lowercased().hasSuffix(".csv") && text.drop(while: { $0 == "\u{FEFF}" || $0.isWhitespace }).first == "{")
        let rows = jsonl ? text.textLines() : text.csvRecords()
        guard !rows.isEmpty else { throw WinnowError.invalidFile(path: path, line: nil, reason: "the file is empty") }
        if jsonl {
            for (i, r) in rows.enumerated() {
                // Booleans and fractions are not line numbers, nor booleans scores (Foundation would read true as 1).
                guard let o = try? JSONSerialization.jsonObject(with: Data(r.utf8)) as? [String: Any],
                      let ln = o["line"] as? NSNumber, !JSONLDataset.isBoolean(ln), ln.doubleValue == ln.doubleValue.rounded(), abs(ln.doubleValue) < 1e15,
                      let sc = o[column] as? NSNumber, !JSONLDataset.isBoolean(sc) else {
                    throw WinnowError.invalidFile(path: path, line: i + 1, reason: "expected an object with integer 'line' and number '\(column)'")
                }
                if i == 0 { columns = o.keys.sorted() }
                let line = Int(ln.doubleValue), score = sc.doubleValue
                guard score.isFinite else { throw WinnowError.invalidFile(path: path, line: i + 1, reason: "\(column) \(score) is not finite") }
                lines.append(line); scores.append(score); labels.append(o["label"].flatMap { JSONLDataset.scalarString($0) } ?? "")
                ids.append(o["id"].flatMap { JSONLDataset.scalarString($0) } ?? "")
                if let t = o["tokens"] as? NSNumber, !JSONLDataset.isBoolean(t) { tokens.append(t.intValue) }
            }
            if tokens.count != lines.count { tokens = [] }
        } else {
            let header = try CSVDataset.split(String(rows[0]), path: path, line: 1)
            guard let li = header.firstIndex(of: "line"), let si = header.firstIndex(of: column) else {
                throw WinnowError.invalidFile(path: path, line: 1, reason: "the header needs 'line' and '\(column)' columns (got \(Self.excerpt(header.joined(separator: ","))))")
            }
            columns = header
            let lab = header.firstIndex(of: "label"), idc = header.firstIndex(of: "id"), tc = header.firstIndex(of: "tokens")
            for (i, r) in rows.dropFirst().enumerated() {
                let f = try CSVDataset.split(String(r), path: path, line: i + 2)
                guard f.count == header.count, let line = Int(f[li]), let score = Double(f[si]) else {
                    throw WinnowError.invalidFile(path: path, line: i + 2, reason: "expected \(header.count) fields with an integer line and a numeric \(column)")
                }
                guard score.isFinite else { throw WinnowError.invalidFile(path: path, line: i + 2, reason: "\(column) \(f[si]) is not finite") }
                lines.append(line); scores.append(score); labels.append(lab.map { f[$0] } ?? ""); ids.append(idc.map { f[$0] } ?? "")
                if let tc, let t = Int(f[tc]) { tokens.append(t) }
            }
            if tokens.count != lines.count { tokens = [] }
        }
        guard !lines.isEmpty else { throw WinnowError.invalidFile(path: path, line: nil, reason: "holds no scores (a header only)") }
        var seen: [Int: Int] = [:]
        for (i, l) in lines.enumerated() {
            if let first = seen.updateValue(i, forKey: l) {
                throw WinnowError.invalidFile(path: path, line: nil, reason: "data line \(l) is scored more than once (rows \(first + 1) and \(i + 1))")
            }
        }
        // Rows in data order, whatever order the file lists them in: top-k breaks ties by it.
        if zip(lines, lines.dropFirst()).contains(where: { $0 > $1 }) {
            let order = lines.indices.sorted { lines[$0] < lines[$1] }
            lines = order.map { lines[$0] }; scores = order.map { scores[$0] }; labels = order.map { labels[$0] }
            if !ids.isEmpty { ids = order.map { ids[$0] } }
            if !tokens.isEmpty { tokens = order.map { tokens[$0] } }
        }
    }

    /// This file without its rows of no scored token (`tokens` 0: nothing to predict, such as an empty text),
    /// whose score (0) says nothing about the example, and how many were removed.
    /// A file without a `tokens` column is returned whole.
    ///
    ///     let (usable, empty) = try ScoreFile(url: URL(fileURLWithPath: "loss.csv")).withoutEmptyRows()
    public func withoutEmptyRows() -> (file: ScoreFile, removed: Int) {
        guard tokens.count == lines.count, tokens.contains(0) else { return (self, 0) }
        let keep = lines.indices.filter { tokens[$0] > 0 }
        var f = self
        f.lines = keep.map { lines[$0] }; f.scores = keep.map { scores[$0] }; f.labels = keep.map { labels[$0] }
        f.ids = ids.count == lines.count ? keep.map { ids[$0] } : ids
        f.tokens = keep.map { tokens[$0] }
        return (f, lines.count - keep.count)
    }

    /// Whether any row names a label (a score file written without the column names none).
    public var hasLabels: Bool { labels.contains { !$0.isEmpty } }

    /// This file's scores with their ties broken by a second score file of the same data: every example gets
    /// its rank in the order (own score, then `other`'s score), so that `--select` with `--sampling top`
    /// keeps by this file's score first and, among equal scores, prefers `then` by `other`'s (`.hard`: its
    /// highest). Tied pairs share a rank (top-k then breaks them by index). Meant for counts with many ties,
    /// such as forgetting events: README "Choosing a selection setting" keeps the fewest forgetting events
    /// and, among those never forgotten, the most ambiguous by cartography's variability (`select: .easy, then: .hard`).
    ///
    ///     let variability = try ScoreFile(url: cartography, column: "variability")
    ///     let kept = try ScoreFile(url: forgetting).thenBy(variability, select: .easy, then: .hard)
    ///
    /// - Throws: `WinnowError.invalidOption` when `select` or `then` is not hard or easy; `WinnowError` naming
    ///   `other` when it lacks a data line this file scores, or gives a line another label.
    public func thenBy(_ other: ScoreFile, select: SelectionOptions.Preference, then: SelectionOptions.Preference) throws -> ScoreFile {
        for (name, p) in [("select", select), ("then", then)] where ![.hard, .easy].contains(p) {
            throw WinnowError.invalidOption(name: name, reason: "a tie-break ranks by two scores: hard or easy, not \(p)")
        }
        var second: [Int: (score: Double, label: String)] = [:]
        for (l, (sc, lab)) in zip(other.lines, zip(other.scores, other.labels)) { second[l] = (sc, lab) }
        // Ids, where both files carry them, name the same example on each line (a file scored on a reordered copy does not).
        var secondID: [Int: String] = [:]
        if ids.count == lines.count && other.ids.count == other.lines.count {
            for (l, id) in zip(other.lines, other.ids) where !id.isEmpty { secondID[l] = id }
        }
        // Rows for lines the first file does not score come from another data file (or a longer one).
        let own = Set(lines)
        if let extra = other.lines.first(where: { !own.contains($0) }) {
            throw WinnowError.invalidFile(path: other.url.path, line: nil,
                reason: "scores data line \(extra), which \(url.lastPathComponent) does not (\(other.lines.count) rows here, \(lines.count) there): were both made on the same data file?")
        }
        let sign: Double = select == then ? 1 : -1
        var tie = [Double](repeating: 0, count: lines.count)
        for (i, l) in lines.enumerated() {
            guard let o = second[l] else {
                throw WinnowError.invalidFile(path: other.url.path, line: nil,
                    reason: "no score for data line \(l), which \(url.lastPathComponent) scores: were both made on the same data file?")
            }
            if !o.label.isEmpty && !labels[i].isEmpty && o.label != labels[i] {
                throw WinnowError.invalidFile(path: other.url.path, line: nil,
                    reason: "data line \(l) has label '\(o.label)' here and '\(labels[i])' in \(url.lastPathComponent): were both made on the same data file?")
            }
            if let a = secondID[l], !ids[i].isEmpty, a != ids[i] {
                throw WinnowError.invalidFile(path: other.url.path, line: nil,
                    reason: "data line \(l) has id '\(Self.excerpt(a))' here and '\(Self.excerpt(ids[i]))' in \(url.lastPathComponent): were both made on the same data file?")
            }
            tie[i] = sign * o.score
        }
        let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : tie[$0] < tie[$1] }
        var ranked = self
        var rank = 0
        for (p, i) in order.enumerated() {
            if p > 0, scores[i] != scores[order[p - 1]] || tie[i] != tie[order[p - 1]] { rank = p }
            ranked.scores[i] = Double(rank)
        }
        return ranked
    }

    /// At most 60 characters of `s`, for an error line.
    static func excerpt(_ s: String) -> String { s.count <= 60 ? s : String(s.prefix(57)) + "..." }
}
