import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// Resumable scoring: the examples are scored in consecutive parts, and every finished part is saved
/// under a parts folder (raw Float64 values plus a JSON table), so a killed `winnow score` rerun with
/// `--resume` scores only the missing parts. Every per-example score depends on its example alone, so
/// the merged result equals an uninterrupted run value for value.
///
///     let r = try ScoreParts.score(.vog, run: run, data: data, options: o, parts: URL(fileURLWithPath: "vog.csv.parts"),
///                                  resume: true)     // reuses the parts a killed run saved
public enum ScoreParts {
    /// Examples per part.
    public static let defaultPartSize = 8192

    /// The folders whose weights a scoring reads: the chosen checkpoints of a run with checkpoints, else the
    /// model (PVI reads the run's final model).
    package static func modelsRead(run: URL, method: ScoreMethod, options: ScoreOptions) -> [URL] {
        guard let folder = try? RunFolder(url: run), !folder.checkpoints.isEmpty else { return [run] }
        if method.needsNullRun { return [folder.finalModelFolder] }
        return (try? folder.select(options.checkpoints))?.map(\.url) ?? [run]
    }

    /// What differs between the manifest of saved parts and this scoring's (`Differences.describe`).
    static func difference(_ old: Manifest?, _ new: Manifest) -> String? { Differences.describe(old, new) }

    struct Manifest: Codable, Equatable {
        var method: String
        var run: String
        var data: String
        var nullRun: String?
        var checkpoints: String
        var params: String
        var lastHidden: Bool
        var targetPredicted: Bool
        var learningRate: Double?
        var maxLength: Int
        var examples: Int
        var partSize: Int
        var shard: Shard?
        /// The data file's size and modification time: parts of a file since rewritten are not reused.
        var dataBytes: Int
        var dataModified: Double
        /// Options that change the values, nil at their defaults (so that parts saved before they were
        /// recorded still resume): `--length-neutral`, `--project` and its seed, `--base`, `--precision`.
        var lengthNeutral: Bool?
        var projectDim: Int?
        var projectSeed: UInt64?
        var adapterBase: String?
        var precision: String?
        /// The fields named (text, pair, label; nil where detected): another field reads other examples.
        var fields: String?
        /// Examples per batch, nil at the default: batches of another size round the last digits differently.
        var batchSize: Int?
        /// The weight files read (run, checkpoints, base, null run): their paths, sizes and modification
        /// times, hashed (nil in manifests written before it was recorded is taken as a change).
        var modelFiles: String?
    }

    struct PartTable: Codable {
        var labelNames: [String]
        var labels: [Int32]
        var lines: [Int]
        var ids: [String?]
        var components: [String]
        var notes: [String]
    }

    /// Scores `data` by `method` in parts of `partSize` examples saved under `dir` and returns them merged, rows
    /// numbered from the first example scored. With `resume` saved parts are reused; otherwise `dir` is emptied
    /// first. `shard` limits scoring to its block; `nullRun` is needed by PVI only.
    ///
    /// - Throws: `WinnowError.invalidOption` when resuming over parts of another scoring, `parts` exists and is not
    ///   a parts folder (no manifest.json), `partSize` is below 1, the options fail `ScoreOptions.validate()`, `method` reads training
    ///   dynamics, or PVI has no `nullRun`; `WinnowError` for a missing or malformed run, data file or part, or data
    ///   that changed while being scored.
    public static func score(_ method: ScoreMethod, run: URL, data: URL, fields: FieldNames = FieldNames(), options: ScoreOptions,
                             nullRun: URL? = nil, parts dir: URL, resume: Bool, partSize: Int = defaultPartSize,
                             shard: Shard? = nil) throws -> ScoreResult {
        let done = try scoreParts(method, run: run, data: data, fields: fields, options: options, nullRun: nullRun, parts: dir,
                                  resume: resume, partSize: partSize, shard: shard)
        var merged: ScoreResult? = nil
        for k in 0..<done.count {
            let r = try loadPart(dir, k, method: method, offset: done.offsets[k])
            merged = merged.map { append($0, r) } ?? r
        }
        var result = merged!
        result.table.indexOffset = done.offsets[0]
        result.notes = DecoderScores.withNoTokenNote(result.notes, count: result.components.first { $0.0 == "tokens" }?.1.filter { $0 == 0 }.count ?? 0)
        return result
    }

    /// Scores every part (or reuses the saved ones) and writes the result to `url` part by part, as
    /// `ScoreWriter` would write `score(...)`'s result, without holding more than one part in memory:
    /// peak memory does not grow with the data set. Returns the number of examples and the notes.
    public static func scoreToFile(_ method: ScoreMethod, run: URL, data: URL, fields: FieldNames = FieldNames(), options: ScoreOptions,
                                   nullRun: URL? = nil, parts dir: URL, resume: Bool, partSize: Int = defaultPartSize,
                                   shard: Shard? = nil, format: ScoreWriter.Format, to url: URL) throws -> (count: Int, notes: [String], total: Int) {
        let done = try scoreParts(method, run: run, data: data, fields: fields, options: options, nullRun: nullRun, parts: dir,
                                  resume: resume, partSize: partSize, shard: shard)
        let first = try loadPart(dir, 0, method: method, offset: done.offsets[0])
        var range = (lo: Double.infinity, hi: -Double.infinity)
        var noTokens = 0   // a decoder's examples without a scored token, over every part
        try ScoreWriter.write(format: format, count: done.examples, components: first.components.map(\.0), to: url) { emit in
            func add(_ r: ScoreResult) throws {
                for x in r.scores { range = (min(range.lo, x), max(range.hi, x)) }
                noTokens += r.components.first { $0.0 == "tokens" }?.1.filter { $0 == 0 }.count ?? 0
                try emit(r)
            }
            try add(first)
            for k in 1..<max(1, done.count) { try add(try loadPart(dir, k, method: method, offset: done.offsets[k])) }
        }
        return (done.examples, DecoderScores.withNoTokenNote(first.notes, count: noTokens)
                    + [ScoreResult.constantWarning(count: done.examples, lo: range.lo, hi: range.hi)].compactMap { $0 }, done.total)
    }

    /// Makes sure every part of the scoring is saved under `dir`: reuses saved parts on `resume`,
    /// scores the rest. Returns the number of parts, the global index of each part's first example,
    /// and the number of examples in all.
    static func scoreParts(_ method: ScoreMethod, run: URL, data: URL, fields: FieldNames, options: ScoreOptions, nullRun: URL?,
                           parts dir: URL, resume: Bool, partSize: Int, shard: Shard?) throws -> (count: Int, offsets: [Int], examples: Int, total: Int) {
        guard partSize >= 1 else { throw WinnowError.invalidOption(name: "partSize", reason: "must be at least 1, not \(partSize)") }
        return try options.inPrecision(method) {
            try scorePartsInPrecision(method, run: run, data: data, fields: fields, options: options, nullRun: nullRun, parts: dir,
                                      resume: resume, partSize: partSize, shard: shard)
        }
    }

    static func scorePartsInPrecision(_ method: ScoreMethod, run: URL, data: URL, fields: FieldNames, options: ScoreOptions, nullRun: URL?,
                                      parts dir: URL, resume: Bool, partSize: Int, shard: Shard?) throws -> (count: Int, offsets: [Int], examples: Int, total: Int) {
        let fm = FileManager.default
        // A causal language model (a GGUF file, a Llama folder, a decoder run) scores every example, labelled
        // or not; DecoderScores reads the model for each part.
        let causal = ModelLoader.isCausalLM(run)
        try Scorer.checkFamily(method, run: run)
        // What the run must hold is checked before the data file is read.
        if !causal && !method.readsDynamics && !method.needsNullRun {
            // A model folder without checkpoints (a classifier, or a PEFT adapter of one) is one model, as ScoringRun takes it.
            let folder = try RunFolder(url: run)
            if !(folder.checkpoints.isEmpty && folder.holdsModel) { _ = try folder.select(options.checkpoints) }
            else if case .list = options.checkpoints { throw ScoringRun.oneModelRefused(run, options.checkpoints) }
        }
        if data.pathExtension.lowercased() == "csv" {
            throw WinnowError.invalidFile(path: data.path, line: nil, reason:
                "is a CSV file: \(run.path) \(causal ? "is a causal language model" : "is a text classifier"), which reads JSONL (a CSV of numeric features is for an MLP run)")
        }
        // The data file is read more than once (counted, then scored part by part): a pipe would be empty the second time.
        try Scorer.requireRegularFile(data)
        let (total, skipped, minusOne) = try Scorer.countExamplesAndSkipped(data, fields: fields, labelled: !causal)
        if skipped > 0 { options.reporter.note("note: skipped \(skipped) example(s) without a gold label in \(data.path)") }
        if let w = JSONLDataset.minusOneWarning(minusOne, of: total + skipped, path: data.path) { options.reporter.note(w) }
        guard total > 0 else {
            throw WinnowError.invalidFile(path: data.path, line: nil, reason: skipped > 0
                ? "has no example with a gold label (all \(skipped) are unlabelled, such as SNLI's \"-\"): nothing to score"
                : "has no example to score")
        }
        let span = shard?.range(of: total) ?? 0..<total
        let n = span.count
        // Decoder examples can fail as they are encoded (a prompt too long, a template): all are encoded once first.
        if causal { try DecoderScores.checkEncodings(model: run, data: data, fields: fields, options: options, range: span) }
        let attributes = try fm.attributesOfItem(atPath: data.path)
        let manifest = Manifest(method: method.rawValue, run: run.standardizedFileURL.path, data: data.standardizedFileURL.path,
                                nullRun: nullRun?.standardizedFileURL.path, checkpoints: options.checkpoints.description,
                                params: options.params.description, lastHidden: options.space == .lastHidden,
                                targetPredicted: options.vogTarget == .predicted, learningRate: options.learningRate,
                                maxLength: options.maxLength, examples: total, partSize: partSize, shard: shard,
                                dataBytes: attributes[.size] as? Int ?? 0,
                                dataModified: (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0,
                                lengthNeutral: options.lengthNeutral ? true : nil, projectDim: options.projectDim,
                                projectSeed: options.projectDim == nil ? nil : options.seed,
                                adapterBase: options.adapterBase?.standardizedFileURL.path,
                                precision: options.precision == .f32 ? nil : options.precision.rawValue,
                                fields: fields == FieldNames() ? nil : "text \(fields.text ?? "detected"), pair \(fields.pair ?? "detected"), label \(fields.label ?? "detected")",
                                batchSize: options.batchSize == ScoreOptions().batchSize ? nil : options.batchSize,
                                modelFiles: FileFingerprint.weightsStamp(modelsRead(run: run, method: method, options: options)
                                                                         + [options.adapterBase, nullRun].compactMap { $0 }))
        let manifestURL = dir.appendingPathComponent("manifest.json")
        // A parts folder whose manifest differs but which holds no saved part has nothing to lose: it starts afresh.
        let savedParts = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).contains { $0.hasPrefix("part-") }
        if resume, fm.fileExists(atPath: manifestURL.path), savedParts {
            let old = try? JSONDecoder().decode(Manifest.self, from: Data(contentsOf: manifestURL))
            guard old == manifest else {
                var same = old
                same?.modelFiles = manifest.modelFiles
                let what = same != manifest
                    ? Self.difference(old, manifest) ?? "method, run, options, or the data file or its contents differ"
                    : old?.modelFiles == nil
                    ? "saved by an earlier winnow, which did not record the model files it read: they cannot be checked"
                    : "the model files it read changed since: a chosen checkpoint, the model, its base or the null run was rewritten or replaced"
                throw WinnowError.invalidOption(name: "resume", reason: "\(dir.path) holds parts of another scoring (\(what)); delete it or rerun without --resume")
            }
        } else {
            if resume && fm.fileExists(atPath: manifestURL.path) {
                options.reporter.note("note: \(dir.path) holds no saved part: scoring starts afresh")
            }
            if fm.fileExists(atPath: dir.path) {
                // Only a parts folder is replaced (what scoring writes there: manifest.json, part-K files and
                // their temporary files, also when a kill came before the manifest); any other path is the user's.
                let held = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? ["(a file)"]
                let ours = held.allSatisfy { $0 == "manifest.json" || $0.hasPrefix("part-") || $0.hasPrefix(".manifest.json.tmp-") || $0.hasPrefix(".part-") }
                guard ours else {
                    throw WinnowError.invalidOption(name: "parts", reason:
                        "\(dir.path) exists and is not a parts folder of an earlier scoring (no manifest.json); move it or choose another output path")
                }
                try fm.removeItem(at: dir)
            }
            do { try fm.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
                throw WinnowError.invalidFile(path: dir.path, line: nil, reason: "cannot make the parts folder here (a file of that name on its path, or no permission?)")
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            try AtomicFile.write(enc.encode(manifest), to: manifestURL)
        }
        let count = max(1, (n + partSize - 1) / partSize)
        var offsets: [Int] = []
        // One bar for the job (PVI passes over each part twice: the model's inputs and the null inputs).
        let passes = method == .pvi ? 2 : 1
        func partRange(_ k: Int) -> Range<Int> { (span.lowerBound + k * partSize)..<(span.lowerBound + min(n, (k + 1) * partSize)) }
        // The bar covers what is left: parts saved by an interrupted run are not counted in its rate.
        // A saved part that cannot be read whole (truncated, or edited) is scored again, not found at the end.
        for k in 0..<count where isSaved(dir, k) {
            do {
                let r = try loadPart(dir, k, method: method, offset: partRange(k).lowerBound)
                guard r.scores.count == partRange(k).count else {
                    throw WinnowError.invalidFile(path: dir.appendingPathComponent("part-\(k).json").path, line: nil,
                                                  reason: "holds \(r.scores.count) rows, expected \(partRange(k).count)")
                }
            } catch {
                options.reporter.note("note: part \(k) in \(dir.path) cannot be read whole (\(error)); it is scored again")
                for ext in ["json", "f64"] { try? fm.removeItem(at: dir.appendingPathComponent("part-\(k).\(ext)")) }
            }
        }
        let saved = (0..<count).filter { isSaved(dir, $0) }
        let left = n - saved.reduce(0) { $0 + partRange($1).count }
        if !saved.isEmpty {
            options.reporter.note("score: resuming from \(dir.path): \(saved.count) of \(count) part(s) saved earlier, \(left) example(s) left")
        } else if count > 1 {
            options.reporter.note("score: \(count) parts of \(partSize) examples, each saved in \(dir.path) as it finishes (after an interruption, rerun with --resume)")
        }
        // Every part saved earlier: nothing to show progress for.
        let bar = left > 0 ? options.reporter.start(method.rawValue, total: passes * left, unit: "ex")
            : SilentReporter().start(method.rawValue, total: 1, unit: "ex")
        var options = options
        options.progress = bar
        var sr: ScoringRun? = nil
        var pvi: PVI.Runs? = nil
        var announced = false
        do {
            for k in 0..<count {
                let range = partRange(k)
                offsets.append(range.lowerBound)
                if !isSaved(dir, k) {
                    let r: ScoreResult
                    var o = options
                    o.exampleRange = range
                    if causal {
                        if !announced {
                            announced = true
                            let params = method == .grand || method == .tracin ? ", params \(options.params)" : ""
                            let checkpoints = (try? RunFolder(url: run))?.checkpoints.isEmpty == false ? ", checkpoints \(options.checkpoints)" : ", one model"
                            options.reporter.note("score \(method.rawValue): causal language model \(run.path)\(params)\(checkpoints), \(count) part(s)")
                        }
                        r = try DecoderScores.score(method, model: run, data: data, fields: fields, options: o)
                    } else if method == .pvi {
                        if pvi == nil { pvi = try PVI.Runs(run: run, nullRun: try PVI.requireNullRun(nullRun), data: data, fields: fields, options: o) }
                        pvi!.exampleRange = range
                        r = try PVI.score(pvi!)
                    } else {
                        if sr == nil {
                            sr = try ScoringRun(run: run, data: data, fields: fields, options: o)
                            options.reporter.note(sr!.summary(method) + ", \(count) part(s)")
                        }
                        sr!.options.exampleRange = range
                        r = try Scorer.score(method, sr!)
                    }
                    guard r.scores.count == range.count else {
                        throw WinnowError.invalidFile(path: data.path, line: nil, reason: "changed while it was being scored (part \(k) has \(r.scores.count) examples, expected \(range.count))")
                    }
                    try save(r, dir, k)
                }
            }
        } catch {
            // A failure before any part was saved (a bad option found on loading the model, a bad first
            // line) leaves no parts folder behind.
            if (0..<count).allSatisfy({ !isSaved(dir, $0) }) { try? fm.removeItem(at: dir) }
            throw error
        }
        bar.finish(note: "")
        return (count, offsets, n, total)
    }

    static func append(_ a: ScoreResult, _ b: ScoreResult) -> ScoreResult {
        var out = a
        out.scores += b.scores
        out.table.labels += b.table.labels
        out.table.lines += b.table.lines
        out.table.ids += b.table.ids
        out.components = zip(a.components, b.components).map { ($0.0, $0.1 + $1.1) }
        return out
    }

    static func save(_ r: ScoreResult, _ dir: URL, _ k: Int) throws {
        var values = r.scores
        for (_, c) in r.components { values += c }
        try values.withUnsafeBufferPointer { try AtomicFile.write(Data(buffer: $0), to: dir.appendingPathComponent("part-\(k).f64")) }
        let t = PartTable(labelNames: r.table.labelNames, labels: r.table.labels, lines: r.table.lines, ids: r.table.ids,
                          components: r.components.map(\.0), notes: r.notes)
        // The table is written last: its presence marks the part complete.
        try AtomicFile.write(JSONEncoder().encode(t), to: dir.appendingPathComponent("part-\(k).json"))
    }

    /// Whether part k is complete on disk (its table is written last).
    static func isSaved(_ dir: URL, _ k: Int) -> Bool {
        FileManager.default.fileExists(atPath: dir.appendingPathComponent("part-\(k).json").path)
            && FileManager.default.fileExists(atPath: dir.appendingPathComponent("part-\(k).f64").path)
    }

    /// Part k as saved, its rows numbered from `offset`.
    static func loadPart(_ dir: URL, _ k: Int, method: ScoreMethod, offset: Int) throws -> ScoreResult {
        let tURL = dir.appendingPathComponent("part-\(k).json"), vURL = dir.appendingPathComponent("part-\(k).f64")
        guard let t = try? JSONDecoder().decode(PartTable.self, from: Data(contentsOf: tURL)) else {
            throw WinnowError.invalidFile(path: tURL.path, line: nil, reason: "is not a part table Winnow wrote (truncated or edited?)")
        }
        let raw = try Data(contentsOf: vURL)
        let m = t.labels.count
        guard raw.count == 8 * m * (1 + t.components.count) else {
            throw WinnowError.invalidFile(path: vURL.path, line: nil, reason: "holds \(raw.count) bytes, expected \(8 * m * (1 + t.components.count))")
        }
        let values = raw.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        var table = ExampleTable(labelNames: t.labelNames)
        table.labels = t.labels; table.lines = t.lines; table.ids = t.ids
        var r = ScoreResult(method: method, scores: Array(values[0..<m]), table: table)
        r.components = t.components.enumerated().map { i, name in (name, Array(values[((i + 1) * m)..<((i + 2) * m)])) }
        r.notes = t.notes
        r.table.indexOffset = offset
        return r
    }
}
