import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// One entry point for every per-example score by name (what `winnow score METHOD` and
/// `winnow experiment` call).
///
///     let r = try Scorer.score(.vog, run: runURL, data: trainURL, options: ScoreOptions())
public enum Scorer {
    /// Scores of every used example of `data` by `method`. `nullRun` is needed by PVI only.
    public static func score(_ method: ScoreMethod, run: URL, data: URL, fields: FieldNames = FieldNames(),
                             options o: ScoreOptions, nullRun: URL? = nil) throws -> ScoreResult {
        try o.inPrecision(method) { try scoreInPrecision(method, run: run, data: data, fields: fields, options: o, nullRun: nullRun) }
    }

    static func scoreInPrecision(_ method: ScoreMethod, run: URL, data: URL, fields: FieldNames, options o: ScoreOptions,
                                 nullRun: URL?) throws -> ScoreResult {
        if ModelLoader.isCausalLM(run) {
            return try DecoderScores.score(method, model: run, data: data, fields: fields, options: o)
        }
        guard !o.lengthNeutral else { throw ScoringRun.lengthNeutralRefused(run) }
        switch method {
        case .forgetting, .cartography, .aum:
            let dyn = try DynamicsScores.load(run)
            let folder = try RunFolder(url: run)
            let final = folder.finalModelFolder
            let table: ExampleTable
            if MLPClassifier.isMLPFolder(final) {
                // The MLP's data is a CSV file of numeric features.
                guard data.pathExtension.lowercased() == "csv" else {
                    throw WinnowError.invalidFile(path: data.path, line: nil, reason:
                        "is not a .csv file: \(run.path) is an MLP of numeric features, which reads a CSV with a header (label and feature columns)")
                }
                let mlp = try MLPClassifier(folder: final)
                let labels = mlp.labelNames
                var csv = try CSVDataset(url: data, labelColumn: fields.label ?? "label")
                try mlp.checkFeatures(csv)
                try csv.assignLabels(labels)
                var t = ExampleTable(labelNames: labels)
                t.labels = csv.labels; t.lines = csv.lines; t.ids = csv.ids
                table = t
            } else {
                table = try exampleTable(data, fields: fields, labels: try ModelLoader.classifierLabels(folder: final))
            }
            // The dynamics are per example of the training file in its order: a run that recorded the file's
            // fingerprint reads no other file (reordered or edited lines of the same count would get others' values).
            // A checkpoint folder's winnow.json is its run's.
            let info = folder.runInfo
            if let recorded = info?[FileFingerprint.runInfoKey] as? String, FileFingerprint.isRegularFile(data),
               try FileFingerprint.fnv1a64(data) != recorded {
                throw WinnowError.invalidFile(path: data.path, line: nil, reason:
                    "is not the file \(run.path) was trained on (its content differs from \((info?["data"] as? String) ?? "the training file")'s, "
                    + "winnow.json \(FileFingerprint.runInfoKey)): \(method) reads the training dynamics of that file's examples, in its order")
            }
            guard dyn.exampleCount == table.count else {
                throw WinnowError.invalidFile(path: data.path, line: nil, reason:
                    "has \(table.count) usable examples but the run's dynamics cover \(dyn.exampleCount): score the file the run was trained on")
            }
            if let ck = folder.checkpointOfRun, ck.step < ck.lastStep {
                o.reporter.note("note: \(run.lastPathComponent) is a checkpoint of \(ck.runURL.path): \(method) reads the training dynamics up to its step \(ck.step) "
                                + "(the run's last checkpoint is step \(ck.lastStep)); give --run \(ck.runURL.path) for the whole run")
            }
            return try method == .forgetting ? Forgetting.score(dyn, table: table)
                : method == .cartography ? Cartography.score(dyn, table: table) : AUM.score(dyn, table: table)
        case .pvi:
            return try PVI.score(run: run, nullRun: try PVI.requireNullRun(nullRun), data: data, fields: fields, options: o)
        case .vog, .grand, .tracin, .el2n, .loss, .margin:
            let sr = try ScoringRun(run: run, data: data, fields: fields, options: o)
            o.reporter.note(sr.summary(method))
            return try score(method, sr)
        }
    }

    /// Refuses single texts for a run trained on text pairs (its winnow.json names a `pair_field`): the
    /// model would read each example without its second text. Runs of other tools are taken as given.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the data file's first example.
    package static func checkPairs(run: URL, data: URL, fields: FieldNames) throws {
        guard fields.pair == nil, FileFingerprint.isRegularFile(data),
              let d = try? Data(contentsOf: run.appendingPathComponent("winnow.json")),
              let info = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any], let pair = info["pair_field"] as? String else { return }
        var reader = try JSONLReader(url: data, fields: fields, requireLabels: false)
        reader.keepUnlabelled = true
        guard let first = try reader.next(upTo: 1)?.first, first.text != nil, first.pair == nil else { return }
        throw WinnowError.invalidFile(path: data.path, line: first.line, reason:
            "has one text, but \(run.path) was trained on text pairs (pair field '\(pair)'): name the second text with --pair-field")
    }

    /// A note when a Winnow run trained on single texts is given a file whose examples are text pairs (a pair
    /// field detected, none named): the model reads inputs of a kind it never saw. Nil otherwise.
    package static func pairsNote(run: URL, data: URL, fields: FieldNames) -> String? {
        guard fields.pair == nil, FileFingerprint.isRegularFile(data), let trained = (try? RunFolder(url: run))?.trainedFields,
              trained.pair == nil, trained.text != nil,
              var reader = try? JSONLReader(url: data, fields: fields, requireLabels: false) else { return nil }
        reader.keepUnlabelled = true
        guard let first = try? reader.next(upTo: 1)?.first, first.pair != nil, let pf = reader.fields.pair else { return nil }
        return "note: \(data.path) holds text pairs (field '\(pf)'), but \(run.path) was trained on single texts: the pairs are read as the model never saw them"
    }

    /// Refuses a data file that is not a regular file (a pipe or device): scoring reads it more than once.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file.
    static func requireRegularFile(_ data: URL) throws {
        guard FileManager.default.fileExists(atPath: data.path), !FileFingerprint.isRegularFile(data) else { return }
        throw WinnowError.invalidFile(path: data.path, line: nil, reason:
            "is not a regular file (a pipe or device?): scoring reads the data more than once; write it to a file first")
    }

    /// Refuses a score the run's model family does not have: the MLP of numeric features has its training
    /// dynamics' scores (forgetting, cartography, AUM) and no others.
    ///
    /// - Throws: `WinnowError.invalidOption` naming the method.
    package static func checkFamily(_ method: ScoreMethod, run: URL) throws {
        guard !method.readsDynamics, let folder = try? RunFolder(url: run).finalModelFolder, MLPClassifier.isMLPFolder(folder) else { return }
        throw WinnowError.invalidOption(name: "method", reason:
            "\(run.path) is an MLP of numeric features, which has the training-dynamics scores (forgetting, cartography, aum); '\(method)' is not implemented for it")
    }

    /// A gradient or output score on an already loaded run (its options may restrict the example range).
    ///
    /// - Throws: `WinnowError.invalidOption` for a method that reads dynamics or needs a null run.
    public static func score(_ method: ScoreMethod, _ sr: ScoringRun) throws -> ScoreResult {
        try sr.options.inPrecision(method) {
            switch method {
            case .vog: return try VoG.score(sr)
            case .grand: return try GraNd.score(sr)
            case .tracin: return try TracIn.selfInfluence(sr)
            case .el2n, .loss, .margin:
                let (e, l, m) = try EL2N.score(sr)
                return method == .el2n ? e : method == .loss ? l : m
            case .forgetting, .cartography, .aum, .pvi:
                throw WinnowError.invalidOption(name: "method", reason: "'\(method)' does not score from a loaded run")
            }
        }
    }

    /// The learning check of a classifier run's final model on up to `limit` labelled examples of
    /// `data` (the first ones): whether the scores come from a model that learned nothing. Nil for a run
    /// without a classifier (a causal language model). `base`: the base model of a PEFT adapter run, as for scoring.
    ///
    /// - Throws: `WinnowError` when the run or the data cannot be read.
    /// `batchSize`: examples per forward pass (the scoring's: its memory bound holds for the check too).
    public static func learningCheck(run: URL, data: URL, fields: FieldNames = FieldNames(), maxLength: Int = 128,
                                     limit: Int = 2048, base: URL? = nil, batchSize: Int = 64) throws -> LearningCheck? {
        guard !ModelLoader.isCausalLM(run) else { return nil }
        let folder = try RunFolder(url: run)
        let model = try ModelLoader.classifier(folder: folder.finalModelFolder, base: base)
        let tokenizer = try Tokenizers.load(folder: ModelLoader.tokenizerFolder(folder.tokenizerFolder, base: base))
        var reader = try JSONLReader(url: data, fields: fields)
        guard let chunk = try reader.next(upTo: limit) else { return nil }
        let enc = try EncodedDataset(examples: chunk, url: data, tokenizer: tokenizer, labels: model.labelNames,
                                     maxLength: min(maxLength, model.dimensions.maxPositions), modelVocabulary: model.dimensions.vocabulary)
        let (pred, _) = try model.predict(enc, batchSize: max(1, batchSize))
        return LearningCheck(labels: enc.labels, predictions: pred, labelNames: model.labelNames)
    }

    /// Number of used examples of a data file, read without tokenizing: the labelled ones, or every
    /// example with `labelled` false (a causal language model's data, whose labels are optional).
    package static func countExamples(_ url: URL, fields: FieldNames, labelled: Bool = true) throws -> Int {
        try countExamplesAndSkipped(url, fields: fields, labelled: labelled).examples
    }

    /// The examples of a data file and the lines skipped for want of a gold label.
    package static func countExamplesAndSkipped(_ url: URL, fields: FieldNames, labelled: Bool = true) throws -> (examples: Int, skipped: Int, minusOne: Int) {
        var reader = try JSONLReader(url: url, fields: fields, requireLabels: labelled)
        reader.keepUnlabelled = !labelled
        var n = 0
        while let chunk = try reader.next(upTo: 1 << 14) { n += chunk.count }
        return (n, reader.skipped, reader.skippedMinusOne)
    }

    /// Lines, ids and labels of a data file, streamed (no text kept).
    package static func exampleTable(_ url: URL, fields: FieldNames, labels: [String]) throws -> ExampleTable {
        var reader = try JSONLReader(url: url, fields: fields)
        var table = ExampleTable(labelNames: labels)
        let index = Dictionary(labels.enumerated().map { ($0.element, Int32($0.offset)) }, uniquingKeysWith: { a, _ in a })
        while let chunk = try reader.next(upTo: 1 << 14) {
            for ex in chunk {
                guard let l = ex.label, let y = index[l] else {
                    throw WinnowError.invalidFile(path: url.path, line: ex.line, reason: "label '\(ex.label ?? "")' is not one of the model's labels [\(labels.joined(separator: ", "))]")
                }
                table.labels.append(y); table.lines.append(ex.line); table.ids.append(ex.id)
            }
        }
        return table
    }
}
