import Foundation
import WinnowCore
import WinnowData
import WinnowModels

/// A per-training-example score from a train-to-test influence matrix, for selecting training data
/// toward a target set (LESS): the mean or max over the target examples, or, with groups, over the
/// groups' means (LESS takes the max over its target tasks).
///
/// One entry point for every model family: ``matrix(run:train:test:fields:options:similarity:)`` opens a
/// BERT classifier run, a decoder run, model folder or GGUF file, or a LoRA adapter, and
/// ``scores(run:train:test:fields:options:similarity:mode:groupField:)`` turns the matrix into an ordinary
/// score file's contents.
///
///     var o = ScoreOptions()
///     o.params = .lora; o.projectDim = 1024
///     let toward = try TargetInfluence.scores(run: runURL, train: trainURL, test: targetURL, options: o,
///                                             similarity: .cosine, mode: .max)
///     try ScoreWriter.write(toward, format: .csv, to: outURL)   // then `winnow prune --select hard`
public enum TargetInfluence {
    /// How the target examples' (or groups') influences are combined.
    public enum Aggregate: String, CaseIterable, Sendable, Codable {
        /// The mean over target examples (or over the groups' means).
        case mean
        /// The largest (over target examples, or over the groups' means).
        case max
    }

    /// One score per training example (a column of `matrix` [N_test][N_train]). `groups` (one per test
    /// example) first averages the influences within each group.
    ///
    /// - Throws: `WinnowError.invalidOption` naming `groups` when there is not one per row, or `matrix` when
    ///   its rows differ in length.
    public static func aggregate(_ matrix: [[Float]], groups: [String]? = nil, mode: Aggregate) throws -> [Double] {
        guard let first = matrix.first else { return [] }
        let nTrain = first.count
        if let bad = matrix.firstIndex(where: { $0.count != nTrain }) {
            throw WinnowError.invalidOption(name: "matrix", reason: "row \(bad) has \(matrix[bad].count) training examples, row 0 \(nTrain)")
        }
        var rows: [[Double]]
        if let groups {
            guard groups.count == matrix.count else {
                throw WinnowError.invalidOption(name: "groups", reason: "\(groups.count) groups for \(matrix.count) test examples")
            }
            var order: [String] = [], sums: [String: [Double]] = [:], counts: [String: Int] = [:]
            for (i, g) in groups.enumerated() {
                if sums[g] == nil { order.append(g); sums[g] = [Double](repeating: 0, count: nTrain) }
                for j in 0..<nTrain { sums[g]![j] += Double(matrix[i][j]) }
                counts[g, default: 0] += 1
            }
            rows = order.map { g in sums[g]!.map { $0 / Double(counts[g]!) } }
        } else {
            rows = matrix.map { $0.map(Double.init) }
        }
        return (0..<nTrain).map { j in
            let column = rows.map { $0[j] }
            return mode == .max ? column.max()! : column.reduce(0, +) / Double(column.count)
        }
    }

    /// Train-to-test influence of a run on a target file: the matrix [N_test][N_train] with the example
    /// tables of both files. Dispatches on the run's family: a BERT classifier reads pairs and labels as
    /// its training did (`TracIn.trainToTest`, in blocks of target examples under `options.memoryLimit`);
    /// a decoder, its adapter or GGUF file scores text or prompt/completion examples
    /// (`DecoderScores.trainToTest`, the target's factors kept in memory).
    ///
    /// - Throws: `WinnowError` when the run cannot be opened or has no gradient scores (an MLP), either file is
    ///   missing or malformed, a pair-trained classifier is given single texts, or a decoder target example has
    ///   no scored token.
    public static func matrix(run: URL, train: URL, test: URL, fields: FieldNames = FieldNames(), options: ScoreOptions,
                              similarity: Similarity = .dot) throws -> Influence {
        try options.validate()
        try Scorer.checkFamily(.tracin, run: run)
        if ModelLoader.isCausalLM(run) {
            let (m, trainTable, testTable) = try DecoderScores.trainToTest(model: run, train: train, test: test, fields: fields,
                                                                           options: options, similarity: similarity)
            return Influence(matrix: m, train: trainTable, test: testTable)
        }
        let sr = try ScoringRun(run: run, data: train, fields: fields, options: options)
        try Scorer.checkPairs(run: run, data: test, fields: fields)
        let testData = try JSONLDataset(url: test, fields: fields)
        // The scoring run's options hold the limit capped at the model's positions.
        let testEnc = try EncodedDataset(testData, tokenizer: sr.tokenizer, labels: sr.labelNames, maxLength: sr.options.maxLength,
                                         modelVocabulary: sr.modelVocabulary)
        let (m, trainTable) = try TracIn.trainToTest(sr, test: testEnc, similarity: similarity)
        var r = Influence(matrix: m, train: trainTable, test: ExampleTable(testEnc))
        if testData.skipped > 0 { r.notes.append("skipped \(testData.skipped) example(s) without a gold label in \(test.path)") }
        return r
    }

    /// One score per training example: its train-to-test influence on `test` (``matrix(run:train:test:fields:options:similarity:)``)
    /// combined by `mode` over the target examples, or over the means of the groups that `groupField` (a field of
    /// the target file) names. Higher = more helpful to the target set; `winnow prune --select hard` keeps the highest.
    ///
    /// - Throws: as ``matrix(run:train:test:fields:options:similarity:)``; `WinnowError.invalidFile` naming a target
    ///   line without `groupField` (checked before any gradient is computed).
    public static func scores(run: URL, train: URL, test: URL, fields: FieldNames = FieldNames(), options: ScoreOptions,
                              similarity: Similarity = .dot, mode: Aggregate, groupField: String? = nil) throws -> ScoreResult {
        if let groupField { _ = try JSONLField.strings(groupField, in: test, lines: try targetLines(run: run, test: test, fields: fields)) }
        let influence = try matrix(run: run, train: train, test: test, fields: fields, options: options, similarity: similarity)
        return try scores(influence, test: test, similarity: similarity, mode: mode, groupField: groupField)
    }

    /// The lines of `test` the influence covers, known before any gradient: every example for a causal language
    /// model, the labelled ones for a classifier (whose loss needs the label). A group field is read on these only.
    package static func targetLines(run: URL, test: URL, fields: FieldNames) throws -> [Int] {
        if ModelLoader.isCausalLM(run) { return try JSONLField.exampleLines(test) }
        return try JSONLDataset(url: test, fields: fields).examples.map(\.line)
    }

    /// One score per training example from an influence matrix already computed on the target file `test`
    /// (see ``scores(run:train:test:fields:options:similarity:mode:groupField:)``); `similarity` only words the note.
    ///
    /// - Throws: `WinnowError.invalidFile` naming a target line without `groupField`; `WinnowError.invalidOption`
    ///   as ``aggregate(_:groups:mode:)`` for a matrix whose rows differ in length.
    public static func scores(_ influence: Influence, test: URL, similarity: Similarity = .dot, mode: Aggregate,
                              groupField: String? = nil) throws -> ScoreResult {
        let groups = try groupField.map { try JSONLField.strings($0, in: test, lines: influence.test.lines) }
        var r = ScoreResult(method: .tracin, scores: try aggregate(influence.matrix, groups: groups, mode: mode), table: influence.train)
        // The column marks the file as helpfulness (higher = better) for `winnow prune`, which then keeps the highest.
        r.components = [("toward_target", r.scores)]
        let over = groups.map { "the means of \(Set($0).count) groups (--group-field \(groupField!))" } ?? "\(influence.test.count) target examples"
        r.notes = influence.notes + ["score = \(mode) over \(over) of the \(similarity == .cosine ? "gradient cosine" : "gradient dot product") "
                                     + "of the training example with each; higher = more helpful to the target set"]
        return r
    }

    /// A train-to-test influence matrix and the examples its rows (target) and columns (training) stand for.
    public struct Influence: Sendable {
        /// [N_test][N_train]: the influence of training example j on target example i.
        public var matrix: [[Float]]
        /// The training file's scored examples (the matrix's columns).
        public var train: ExampleTable
        /// The target file's scored examples (the matrix's rows).
        public var test: ExampleTable
        /// What the caller should know (examples skipped without a gold label).
        public var notes: [String] = []
    }
}
