import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// `--shard I/N`: the I-th of N contiguous blocks of a file's used examples (0-based I), so a job
/// array scores a file in N independent jobs and `winnow merge` joins their outputs into exactly
/// what one job would write. Block I holds examples [floor(n I / N), floor(n (I+1) / N)).
public struct Shard: Sendable, Equatable, Codable {
    /// 0-based block number I, in 0..<count.
    public let index: Int
    /// Number of blocks N, at least 1.
    public let count: Int

    /// Block `index` of `count`.
    ///
    /// - Throws: `WinnowError.invalidOption` unless 0 <= `index` < `count`.
    public init(index: Int, count: Int) throws {
        guard count >= 1, (0..<count).contains(index) else {
            throw WinnowError.invalidOption(name: "shard", reason: "expected I/N with 0 <= I < N, got \(index)/\(count)")
        }
        self.index = index
        self.count = count
    }

    /// Parses "I/N".
    public init(parsing s: String) throws {
        let p = s.split(separator: "/")
        guard p.count == 2, let i = Int(p[0]), let n = Int(p[1]) else {
            throw WinnowError.invalidOption(name: "shard", reason: "expected I/N (e.g. 0/8), got '\(s)'")
        }
        try self.init(index: i, count: n)
    }

    /// This shard's positions among `n` examples.
    public func range(of n: Int) -> Range<Int> { (n * index / count)..<(n * (index + 1) / count) }
}

/// Joins shard outputs (CSV or JSONL with an `index` column, or 1-D float64 .npy in shard order)
/// into the file an unsharded run writes.
public enum ShardMerge {
    /// What a shard's output was: written beside it as `OUT.shard.json`, so that `merge` can tell a missing
    /// shard (the last ones included) from a complete set.
    public struct Manifest: Codable, Equatable, Sendable {
        /// The shard, "I/N".
        public var shard: String
        /// Examples in the whole file (all shards).
        public var examples: Int
        /// What made the output: command, method, run, data file and the options that change the values
        /// (nil in manifests written before it was recorded). Shards of one merge must agree on it.
        public var job: String?
        /// A manifest of `shard` over a file of `examples` examples, made by `job`.
        public init(shard: Shard, examples: Int, job: String? = nil) {
            self.shard = "\(shard.index)/\(shard.count)"; self.examples = examples; self.job = job
        }
    }

    /// Where the manifest of the shard output `out` lives.
    public static func manifestURL(_ out: URL) -> URL { out.deletingLastPathComponent().appendingPathComponent(out.lastPathComponent + ".shard.json") }

    /// Writes `out`'s manifest when `shard` is given; otherwise removes a stale one, so that an unsharded output
    /// is never taken for a shard.
    public static func recordShard(_ shard: Shard?, examples: Int, job: String? = nil, output out: URL) throws {
        let url = manifestURL(out)
        guard let shard else {
            if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            return
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try AtomicFile.write(enc.encode(Manifest(shard: shard, examples: examples, job: job)), to: url)
    }

    /// Reads a shard manifest: the shard and the whole file's number of examples.
    ///
    /// - Throws: `WinnowError.invalidFile` when the file is not a manifest `recordShard` writes.
    package static func readManifest(_ u: URL) throws -> (shard: Shard, examples: Int, job: String?) {
        guard let m = try? JSONDecoder().decode(Manifest.self, from: Data(contentsOf: u)), let s = try? Shard(parsing: m.shard), m.examples >= 0 else {
            throw WinnowError.invalidFile(path: u.path, line: nil, reason: "not a shard manifest ({\"shard\": \"I/N\", \"examples\": n >= 0})")
        }
        return (s, m.examples, m.job)
    }

    /// Checks the manifests of `files` (when any has one): every file has one, they name the same N and number of
    /// examples, and together shards 0..<N each once (in that order for .npy, which carries no index).
    static func checkManifests(_ files: [URL], ordered: Bool) throws -> (total: Int, shards: [Shard])? {
        var jobs: [(URL, String)] = []
        let found = try files.map { f -> (URL, Shard, Int)? in
            let u = manifestURL(f)
            guard FileManager.default.fileExists(atPath: u.path) else { return nil }
            let m = try readManifest(u)
            if let job = m.job { jobs.append((f, job)) }
            return (f, m.shard, m.examples)
        }
        if let odd = jobs.first(where: { $0.1 != jobs[0].1 }) {
            // The items that differ, not two whole job lines.
            let mine = odd.1.components(separatedBy: ", "), first = jobs[0].1.components(separatedBy: ", ")
            let differ = zip(mine, first).filter { $0 != $1 }.map { "\($0) against \($1)" }
            throw WinnowError.invalidFile(path: odd.0.path, line: nil, reason:
                "was made by another job than \(jobs[0].0.lastPathComponent) (\(differ.isEmpty ? "\(odd.1) against \(jobs[0].1)" : differ.joined(separator: "; "))): "
                + "shards of one merge come from one command")
        }
        guard found.contains(where: { $0 != nil }) else { return nil }
        if let i = found.firstIndex(where: { $0 == nil }) {
            throw WinnowError.invalidFile(path: files[i].path, line: nil, reason: "has no shard manifest (\(manifestURL(files[i]).lastPathComponent)) while the others do: not a shard output")
        }
        let all = found.map { $0! }
        let (n, total) = (all[0].1.count, all[0].2)
        if let odd = all.first(where: { $0.1.count != n || $0.2 != total }) {
            throw WinnowError.invalidFile(path: odd.0.path, line: nil, reason:
                "is shard \(odd.1.index)/\(odd.1.count) of \(odd.2) examples, the first file shard \(all[0].1.index)/\(n) of \(total): not one sharding")
        }
        let have = all.map(\.1.index)
        let missing = (0..<n).filter { !have.contains($0) }
        if !missing.isEmpty || Set(have).count != have.count {
            let what = missing.isEmpty ? "a shard is given twice" : "shard(s) \(missing.map { "\($0)/\(n)" }.joined(separator: ", ")) missing"
            throw WinnowError.invalidOption(name: "files", reason: "\(what): give the output of every shard, 0 to \(n - 1), once")
        }
        if ordered && have != Array(0..<n) {
            throw WinnowError.invalidOption(name: "files", reason: ".npy shards carry no index: give them in shard order, 0 to \(n - 1)")
        }
        return (total, all.map(\.1))
    }

    /// Refuses a shard output holding another number of rows than its manifest's shard of `total` examples.
    static func checkCount(_ count: Int, of file: URL, shard: Shard?, total: Int?) throws {
        guard let shard, let total else { return }
        let expected = shard.range(of: total).count
        guard count == expected else {
            throw WinnowError.invalidFile(path: file.path, line: nil, reason:
                "holds \(count) row(s), but it is shard \(shard.index)/\(shard.count) of \(total) examples (\(expected) rows): the shard output is incomplete")
        }
    }

    /// The text of a shard output: UTF-8 (the first line that is not is named), without a byte-order mark.
    static func text(of f: URL, _ data: Data) throws -> String {
        guard var text = String(data: data, encoding: .utf8) else {
            let bad = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                .firstIndex { String(data: Data($0), encoding: .utf8) == nil }
            throw WinnowError.invalidFile(path: f.path, line: bad.map { $0 + 1 }, reason: "not valid UTF-8")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        return text
    }

    /// Joins `files` into `out` (atomically): CSV and JSONL rows sorted by their `index` (the CSV header once),
    /// `.npy` values concatenated in the order given. The format the shards' manifests record (`--format`)
    /// decides, else the extension of the first file.
    ///
    /// - Throws: `WinnowError` when `files` is empty or mixes extensions, a file is missing or malformed, CSV
    ///   headers differ, or the indices are not 0..<n exactly once.
    /// - Returns: whether the files' shard manifests were there to check that every shard is given once
    ///   (and in order for .npy); without them that is not known.
    @discardableResult
    public static func merge(_ files: [URL], to out: URL) throws -> Bool {
        guard let first = files.first else { throw WinnowError.invalidOption(name: "files", reason: "give at least one shard output") }
        // The format the shards were written in (`--format`, recorded in their job), else the extension's.
        let recorded = (try? readManifest(manifestURL(first)))?.job?.components(separatedBy: ", ")
            .first { $0.hasPrefix("format ") }.map { String($0.dropFirst("format ".count)) }
        let ext = recorded.flatMap { ["csv", "jsonl", "npy"].contains($0) ? $0 : nil } ?? first.pathExtension.lowercased()
        if recorded == nil {
            for f in files where f.pathExtension.lowercased() != ext {
                throw WinnowError.invalidFile(path: f.path, line: nil, reason: "is not a .\(ext) file like \(first.lastPathComponent)")
            }
        }
        // The merged file is written in the shards' format: a name of another format would mislead prune and NumPy
        // (a name of none, such as .txt for shards written with --format, is the user's).
        let outExt = out.pathExtension.lowercased()
        guard outExt == ext || !["csv", "jsonl", "npy"].contains(outExt) else {
            throw WinnowError.invalidOption(name: "out", reason:
                "\(out.lastPathComponent) names a .\(outExt) file, and the shards are \(ext): merge writes their format; name the merged file .\(ext)")
        }
        let manifests = try checkManifests(files, ordered: ext == "npy")
        let total = manifests?.total, shards = manifests?.shards
        switch ext {
        case "npy": try AtomicFile.write(mergeNpy(files, total: total, shards: shards), to: out)
        case "jsonl": try mergeRows(files, header: false, total: total, shards: shards, to: out) { line, f, n in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let num = o["index"] as? NSNumber,
                  !JSONLDataset.isBoolean(num), let i = Int(exactly: num.doubleValue) else {
                throw WinnowError.invalidFile(path: f.path, line: n, reason: "expected a JSON object with an integer 'index'")
            }
            return i
        }
        default: try mergeRows(files, header: true, total: total, shards: shards, to: out) { line, f, n in
            guard let i = Int(line.prefix { $0 != "," }) else {
                throw WinnowError.invalidFile(path: f.path, line: n, reason: "the first column is not an integer index")
            }
            return i
        }
        }
        return total != nil
    }

    /// One shard output read and checked (UTF-8, ends with a line break, the header, field counts and scores),
    /// its rows with their indices.
    static func scanRows(_ f: URL, header: Bool, index: (Substring, URL, Int) throws -> Int) throws -> (head: Substring?, rows: [(Int, Substring)]) {
        guard FileManager.default.fileExists(atPath: f.path) else { throw WinnowError.missingFile(path: f.path, reason: "no such shard output") }
        let data = try Data(contentsOf: f)
        // Winnow ends every output with a line break: a file without one was cut short (its last row may
        // look whole, a score cut to fewer digits).
        if let last = data.last, last != 0x0A {
            throw WinnowError.invalidFile(path: f.path, line: nil, reason: "ends without a line break: the shard output was cut short")
        }
        let text = try text(of: f, data)
        var lines = header ? text.csvRecords() : text.textLines()
        var columns = 0, scoreColumn: Int?, head: Substring? = nil
        if header {
            guard let h = lines.first else { throw WinnowError.invalidFile(path: f.path, line: nil, reason: "the file is empty") }
            head = h
            let names = try CSVDataset.split(String(h), path: f.path, line: 1)
            columns = names.count
            scoreColumn = names.firstIndex(of: "score")
            lines.removeFirst()
        }
        var rows: [(Int, Substring)] = []
        rows.reserveCapacity(lines.count)
        for (n, l) in lines.enumerated() {
            let lineNo = n + (header ? 2 : 1)
            if header {
                let fields = try CSVDataset.split(String(l), path: f.path, line: lineNo)
                guard fields.count == columns else {
                    throw WinnowError.invalidFile(path: f.path, line: lineNo, reason: "has \(fields.count) fields where the header has \(columns)")
                }
                if let c = scoreColumn, Double(fields[c]) == nil {
                    throw WinnowError.invalidFile(path: f.path, line: lineNo, reason: "the score '\(fields[c])' is not a number")
                }
            }
            rows.append((try index(l, f, lineNo), l))
        }
        return (head, rows)
    }

    /// Joins the rows of `files` into `out` in index order. Shard outputs hold consecutive indices each (as
    /// `--shard` writes them): then the files are checked one at a time and written one after another, so memory
    /// holds one shard, not all of them. Otherwise every row is read and sorted.
    static func mergeRows(_ files: [URL], header: Bool, total: Int?, shards: [Shard]?, to out: URL,
                          index: (Substring, URL, Int) throws -> Int) throws {
        var head: Substring? = nil
        var runs: [(first: Int, count: Int, file: Int)] = []
        var consecutive = true
        for (k, f) in files.enumerated() {
            let (h, rows) = try scanRows(f, header: header, index: index)
            if let h {
                if let head, head != h {
                    throw WinnowError.invalidFile(path: f.path, line: 1, reason: "its header differs from the first shard's: \(h) vs \(head)")
                }
                head = h
            }
            try checkCount(rows.count, of: f, shard: shards?[k], total: total)
            if consecutive, let first = rows.first?.0, !rows.enumerated().allSatisfy({ $0.element.0 == first + $0.offset }) { consecutive = false }
            if let first = rows.first?.0 { runs.append((first, rows.count, k)) }
        }
        runs.sort { $0.first < $1.first }
        var next = 0
        for r in runs where consecutive {
            if r.first != next { consecutive = false } else { next += r.count }
        }
        let count = runs.reduce(0) { $0 + $1.count }
        if let total, count != total {
            throw WinnowError.invalidOption(name: "files", reason: "the shards hold \(count) rows, their manifests \(total) examples: a shard output is incomplete")
        }
        func emit(_ fd: Int32, _ line: Substring) throws {
            var bytes = Array(line.utf8)
            bytes.append(0x0A)
            try bytes.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: out.path) }
        }
        if consecutive {
            try AtomicFile.write(to: out) { fd in
                if let head { try emit(fd, head) }
                for r in runs {
                    // Checked above: read again, its rows written as they are.
                    let f = files[r.file]
                    let text = try text(of: f, try Data(contentsOf: f))
                    var lines = header ? text.csvRecords() : text.textLines()
                    if header { lines.removeFirst() }
                    guard lines.count == r.count else {
                        throw WinnowError.invalidFile(path: f.path, line: nil, reason: "changed while the shards were merged")
                    }
                    var chunk = Data()
                    chunk.reserveCapacity(text.utf8.count)
                    for l in lines { chunk.append(contentsOf: l.utf8); chunk.append(0x0A) }
                    try chunk.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: out.path) }
                }
            }
            return
        }
        // Rows out of order within a file, or files that do not tile 0..<n: every row read and sorted.
        var rows: [(Int, Substring)] = []
        for f in files { rows += try scanRows(f, header: header, index: index).rows }
        rows.sort { $0.0 < $1.0 }
        for (k, r) in rows.enumerated() where r.0 != k {
            throw WinnowError.invalidFile(path: files.map(\.lastPathComponent).joined(separator: ", "), line: nil, reason:
                "indices are not 0..<\(rows.count) exactly once (found \(r.0) at position \(k)): a shard is missing or repeated")
        }
        try AtomicFile.write(to: out) { fd in
            if let head { try emit(fd, head) }
            var chunk = Data()
            for (_, l) in rows {
                chunk.append(contentsOf: l.utf8); chunk.append(0x0A)
                if chunk.count > 1 << 22 { try chunk.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: out.path) }; chunk.removeAll(keepingCapacity: true) }
            }
            try chunk.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: out.path) }
        }
    }

    static func mergeNpy(_ files: [URL], total: Int?, shards: [Shard]?) throws -> Data {
        var values: [Double] = []
        for (k, f) in files.enumerated() {
            let d = try Data(contentsOf: f)
            guard d.count >= 10, d.prefix(6) == Data([0x93]) + Data("NUMPY".utf8) else {
                throw WinnowError.invalidFile(path: f.path, line: nil, reason: "not a .npy file")
            }
            let hlen = Int(d[d.startIndex + 8]) | Int(d[d.startIndex + 9]) << 8
            guard d.count >= 10 + hlen, let header = String(data: d.subdata(in: 10..<(10 + hlen)), encoding: .ascii),
                  header.contains("'<f8'"), header.contains("False") else {
                throw WinnowError.invalidFile(path: f.path, line: nil, reason: "expected a 1-D little-endian float64 array as winnow writes")
            }
            // The header's shape is what was written: a file holding fewer values was cut short.
            let shape = header.range(of: "'shape': (").map { header[$0.upperBound...].prefix { $0.isNumber } }.flatMap { Int($0) }
            let bytes = d.count - 10 - hlen, held = bytes / 8
            if bytes % 8 != 0 || (shape.map { $0 != held } ?? false) {
                throw WinnowError.invalidFile(path: f.path, line: nil, reason:
                    "its header's shape is (\(shape.map(String.init) ?? "?"),) but it holds \(bytes) byte(s) of values (\(held) whole): the shard output was cut short")
            }
            try checkCount(held, of: f, shard: shards?[k], total: total)
            d.subdata(in: (10 + hlen)..<d.count).withUnsafeBytes { values += $0.bindMemory(to: Double.self) }
        }
        if let total, values.count != total {
            throw WinnowError.invalidOption(name: "files", reason: "the shards hold \(values.count) values, their manifests \(total) examples: a shard output is incomplete")
        }
        return ScoreWriter.npy(values, shape: [values.count])
    }
}
