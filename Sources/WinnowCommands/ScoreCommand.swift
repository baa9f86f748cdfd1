import ArgumentParser
import Foundation
import Winnow

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score every training example: vog, el2n, grand, loss, margin, forgetting, cartography, aum, pvi, tracin.",
        discussion: """
        Higher scores mean more influential / harder. Conventions (design section 4):
          vog          mean over real tokens and dims of the std over checkpoints of d z_y / d inputs_embeds
          el2n         ||softmax(z) - onehot(y)||_2, mean over checkpoints
          grand        ||dCE/dtheta||_2 over --params, mean over checkpoints (Gram form, no per-example gradients)
          loss         cross-entropy, mean over checkpoints
          margin       score -margin; margin = z_y - max_{j!=y} z_j, mean over checkpoints
          forgetting   number of forgetting events; never-learned examples score their presentation count
          cartography  score 1 - confidence; columns confidence (mean p_y), variability (population std), correctness
          aum          score -AUM; AUM = mean margin over presentations
          pvi          score -PVI; PVI = log2 p(y|x) - log2 p_null(y|empty) (needs --null-run)
          tracin       self-influence sum_k eta_k ||g_k||^2; with --test, train-to-test influence
        forgetting, cartography and aum read the run's dynamics (training mode, before each update); all others
        run in inference mode. eta_k is the learning_rate logged at the largest step <= k; --lr overrides it
        (--lr 1 gives the unweighted sum of the original TracIn code).
        """)

    @Argument(help: "vog | el2n | grand | loss | margin | forgetting | cartography | aum | pvi | tracin")
    var method: String

    @Option(name: .customLong("run"), help: "Run folder: a winnow run or a transformers.Trainer output.") var runPath: String
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Checkpoints: all, first, last, or STEP,STEP,...") var checkpoints: String = "all"
    @Option(help: "Parameters for gradient scores: all, classifier, first-layer, last-layer, embeddings, or PREFIX,...") var params: String = "all"
    @Option(help: "params (gradients w.r.t. parameters) or last-hidden (w.r.t. the pooled [CLS] vector).") var space: String = "params"
    @Option(help: "VoG target: label or predicted (by the last chosen checkpoint).") var target: String = "label"
    @Option(help: "PVI: the null run (trained with `winnow train --null`).") var nullRun: String?
    @Option(name: .customLong("lr"), help: "TracIn: override every checkpoint's learning rate.") var learningRate: Double?
    @Option(help: "TracIn: test file for train-to-test influence.") var test: String?
    @Option(help: "TracIn train-to-test: proponents and opponents kept per test example.") var top: Int = 10
    @Option(help: "TracIn train-to-test: also write the full [test, train] matrix as .npy here.") var matrix: String?
    @Option(help: "TracIn: approximate with a seeded random orthonormal projection to about D dims per layer (exact by default).") var project: Int?
    @Option(help: "Seed of the random projection.") var seed: UInt64 = 0
    @Option(help: "Examples per batch.") var batchSize: Int = 32
    @Option(help: "Memory bound in MiB for blocked work.") var memoryLimit: Int = 2048
    @Option(help: "csv, jsonl or npy.") var format: String = "csv"
    @Option(help: "Output file (written atomically).") var out: String
    @Option(help: "Score only shard I of N (0-based; contiguous blocks of examples); join shards with `winnow merge`.") var shard: String?
    @Option(help: "Examples per resumable part.") var partSize: Int = ScoreParts.defaultPartSize
    @Flag(help: "Continue a killed run: reuse the parts already scored in OUT.parts/ (the output equals an uninterrupted run).") var resume = false

    static let methods = Scorer.methods

    func validate() throws {
        guard Self.methods.contains(method) else { throw ValidationError("unknown method '\(method)'; one of \(Self.methods.joined(separator: ", "))") }
        guard ScoreWriter.Format(rawValue: format) != nil else { throw ValidationError("--format must be csv, jsonl or npy") }
        guard ["params", "last-hidden"].contains(space) else { throw ValidationError("--space must be params or last-hidden") }
        guard ["label", "predicted"].contains(target) else { throw ValidationError("--target must be label or predicted") }
        if method == "pvi" && nullRun == nil { throw ValidationError("pvi needs --null-run (a run trained with `winnow train --null`)") }
        if let project { guard project >= 1, method == "tracin" else { throw ValidationError("--project needs a positive D and the tracin method") } }
        guard batchSize >= 1, top >= 1, memoryLimit >= 16, partSize >= 1 else { throw ValidationError("--batch-size, --top and --memory-limit must be positive") }
    }

    func run() throws {
        var o = ScoreOptions()
        o.checkpoints = checkpoints; o.params = params; o.lastHidden = space == "last-hidden"
        o.targetPredicted = target == "predicted"; o.learningRate = learningRate; o.batchSize = batchSize
        o.maxLength = dataOptions.maxLength; o.memoryLimit = memoryLimit << 20
        o.projectDim = project; o.seed = seed
        let runURL = URL(fileURLWithPath: runPath)
        let dataURL = URL(fileURLWithPath: dataOptions.data)
        let fmt = ScoreWriter.Format(rawValue: format)!
        let outURL = URL(fileURLWithPath: out)
        if method == "tracin", let test {
            let sr = try ScoringRun(run: runURL, data: dataURL, fields: dataOptions.fields, options: o)
            try trainToTest(sr, testPath: test)
            return
        }
        let nullURL = nullRun.map { URL(fileURLWithPath: $0) }
        let partsURL = URL(fileURLWithPath: out + ".parts")
        if shard != nil && (["forgetting", "cartography", "aum"].contains(method) || test != nil) {
            throw WinnowError.invalidOption(name: "--shard", reason: "applies to per-example gradient and output scores, not to \(method)\(test != nil ? " --test" : "")")
        }
        let written: (count: Int, notes: [String])
        if ["forgetting", "cartography", "aum"].contains(method) {
            let result = try Scorer.score(method, run: runURL, data: dataURL, fields: dataOptions.fields, options: o, nullRun: nullURL)
            try ScoreWriter.write(result, format: fmt, to: outURL)
            written = (result.scores.count, result.notes)
        } else {
            // Part by part from the parts folder into the output: memory does not grow with the data set.
            written = try ScoreParts.scoreToFile(method, run: runURL, data: dataURL, fields: dataOptions.fields, options: o, nullRun: nullURL,
                                                 parts: partsURL, resume: resume, partSize: partSize,
                                                 shard: try shard.map { try Shard(parsing: $0) }, format: fmt, to: outURL)
        }
        if FileManager.default.fileExists(atPath: partsURL.path) { try FileManager.default.removeItem(at: partsURL) }
        for n in written.notes { printError("note: \(n)") }
        printError("score: wrote \(written.count) \(method) scores to \(outURL.path)")
    }

    func trainToTest(_ sr: ScoringRun, testPath: String) throws {
        var testOptions = dataOptions
        testOptions.data = testPath
        let testData = try testOptions.read()
        let testEnc = try EncodedDataset(testData, tokenizer: sr.tokenizer, labels: sr.labelNames, maxLength: dataOptions.maxLength)
        let (m, trainTable) = try TracIn.trainToTest(sr, test: testEnc)
        if let matrix {
            try AtomicFile.write(ScoreWriter.npy(m.flatMap { $0.map(Double.init) }, shape: [testEnc.count, trainTable.count]), to: URL(fileURLWithPath: matrix))
        }
        var outFile = TextFileBuilder()
        outFile.append("test_index,test_line,test_id,kind,rank,train_index,train_line,train_id,influence")
        let k = min(top, trainTable.count)
        for (ti, row) in m.enumerated() {
            let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
            let prefix = "\(ti),\(testEnc.lines[ti]),\(csvField(testEnc.ids[ti] ?? ""))"
            for (r, j) in order.prefix(k).enumerated() {
                outFile.append("\(prefix),proponent,\(r + 1),\(j),\(trainTable.lines[j]),\(csvField(trainTable.ids[j] ?? "")),\(String(format: "%.9g", row[j]))")
            }
            for (r, j) in order.reversed().prefix(k).enumerated() {
                outFile.append("\(prefix),opponent,\(r + 1),\(j),\(trainTable.lines[j]),\(csvField(trainTable.ids[j] ?? "")),\(String(format: "%.9g", row[j]))")
            }
        }
        try outFile.write(to: URL(fileURLWithPath: out))
        printError("score: wrote top-\(k) proponents and opponents for \(testEnc.count) test examples to \(out)")
    }
}
