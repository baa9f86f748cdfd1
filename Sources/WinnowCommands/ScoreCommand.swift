import ArgumentParser
import Foundation
import Winnow

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score every training example: \(ScoreMethod.allCases.map(\.rawValue).joined(separator: ", ")).",
        discussion: """
        Higher scores mean more influential / harder. Conventions (docs/contracts.md §4):
        \(ScoreMethod.allCases.map { "  " + $0.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0) + $0.definition }.joined(separator: "\n"))

        forgetting, cartography and aum read the run's dynamics (training mode, before each update); all others \
        run in inference mode. eta_k is the learning_rate logged at the largest step <= k; --lr overrides it \
        (--lr 1 gives the unweighted sum of the original TracIn code).
        """)

    @Argument(help: "The score.") var method: ScoreMethod

    @Option(name: .customLong("run"), help: "Run folder: a winnow run or a transformers.Trainer output; or a causal LM (a .gguf file, a folder holding one, a Hugging Face Llama folder, or a PEFT LoRA adapter folder).") var runPath: String
    @OptionGroup var dataOptions: DataOptions
    @Option(name: .customLong("checkpoints"), help: "Checkpoints: \(CheckpointSelection.syntax) (default all; not for the dynamics scores forgetting, cartography, aum, nor for pvi, which reads the final models of both runs).")
    var checkpointsGiven: CheckpointSelection?
    var checkpoints: CheckpointSelection { checkpointsGiven ?? ScoreOptions().checkpoints }
    @Option(name: .customLong("params"), help: "Parameters for gradient scores (grand, tracin): \(ParameterSelection.Spec.syntax) (default all).")
    var paramsGiven: ParameterSelection.Spec?
    var params: ParameterSelection.Spec { paramsGiven ?? ScoreOptions().params }
    @Option(help: "params (gradients w.r.t. parameters) or last-hidden (w.r.t. the vector the head reads: BERT's pooled [CLS] vector, a decoder classifier's last real token).") var space: GradientSpace = ScoreOptions().space
    @Option(name: .customLong("target"), help: "VoG on a classifier: the label (default), or the class predicted by the latest chosen checkpoint (highest step).")
    var targetGiven: VoGTarget?
    var target: VoGTarget { targetGiven ?? ScoreOptions().vogTarget }
    @Option(help: "PVI: the null run (trained with `winnow train --null`).") var nullRun: String?
    @Option(help: "The base model of a LoRA adapter folder given as --run (default: its adapter_config.json's base_model_name_or_path, when that is a local path).") var base: String?
    @Option(name: .customLong("lr"), parsing: .unconditional, help: "TracIn: override every checkpoint's learning rate.") var learningRate: Double?
    @Option(help: "TracIn: test file for train-to-test influence.") var test: String?
    @Option(name: .customLong("top"), parsing: .unconditional, help: "TracIn train-to-test: proponents and opponents kept per test example (default 10).") var topGiven: Int?
    var top: Int { topGiven ?? 10 }
    @Option(help: "TracIn train-to-test: also write the full [test, train] matrix as .npy here.") var matrix: String?
    @Option(help: "TracIn train-to-test: write one score per training example instead of proponents, its influence on the --test examples combined by mean or max (LESS-style selection toward a target set; `winnow prune --select hard` keeps the highest).") var aggregate: TargetInfluence.Aggregate?
    @Option(help: "TracIn train-to-test: dot (TracIn) or cosine (LESS) of the gradients.") var similarity: Similarity = .dot
    @Option(help: "With --aggregate: a field of the --test file grouping its examples (tasks); influences are averaged within each group first.") var groupField: String?
    @Option(parsing: .unconditional, help: "TracIn: approximate with a seeded random orthonormal projection to about D dims per layer (exact by default).") var project: Int?
    @Option(name: .customLong("seed"), parsing: .unconditional, help: "Seed of the random projection (--project; default 0).") var seedGiven: UInt64?
    var seed: UInt64 { seedGiven ?? ScoreOptions().seed }
    @Flag(help: "Causal language models, grand and tracin self-influence: multiply each score by its target-token count n (GraNd by sqrt(n)), so that the mean loss's averaging over n tokens does not rank long lines low (README, \"Junk in a corpus\": last-layer self-influence finds noisy lines at AUROC 0.84-0.87 this way, against 0.64-0.69 without).")
    var lengthNeutral = false
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Examples per batch (default \(ScoreOptions().batchSize)).") var batchSizeGiven: Int?
    var batchSize: Int { batchSizeGiven ?? ScoreOptions().batchSize }
    @Option(help: "Arithmetic of the dense products for the forward-only scores (el2n, loss, margin, pvi): f32, or bf16 (operands rounded to bf16, F32 accumulation; needs AVX512_BF16).")
    var precision: ArithmeticPrecision = .f32
    @Option(name: .customLong("memory-limit"), parsing: .unconditional, help: "TracIn --test on a classifier: memory in MiB for the test side's gradients, held in blocks of test examples under this bound (default \(ScoreOptions().memoryLimit >> 20)).")
    var memoryLimitGiven: Int?
    var memoryLimit: Int { memoryLimitGiven ?? ScoreOptions().memoryLimit >> 20 }
    @Option(name: .customLong("format"), help: "Output format (default: from --out's extension: .jsonl or .npy, else csv).") var formatGiven: ScoreWriter.Format?
    /// The format given, else the one --out's extension names (csv for any other).
    var format: ScoreWriter.Format { formatGiven ?? ScoreWriter.Format(rawValue: URL(fileURLWithPath: out).pathExtension.lowercased()) ?? .csv }
    @Option(help: "Output file (written atomically).") var out: String
    @Option(help: "Score only shard I of N (0-based; contiguous blocks of examples); join shards with `winnow merge`. Per-example gradient and output scores only: forgetting, cartography and aum read the run's dynamics (no model pass), and tracin --test reads the whole target set.", transform: parseShard) var shard: Shard?
    @Option(name: .customLong("part-size"), parsing: .unconditional, help: "Examples per resumable part (default \(ScoreParts.defaultPartSize)).") var partSizeGiven: Int?
    var partSize: Int { partSizeGiven ?? ScoreParts.defaultPartSize }
    @Flag(help: "Continue a killed run: reuse the parts already scored in OUT.parts/ (the output equals an uninterrupted run). Per-example gradient and output scores, as --shard.") var resume = false

    func validate() throws {
        if method.needsNullRun && nullRun == nil { throw ValidationError("\(method) needs --null-run (a run trained with `winnow train --null`)") }
        if let project { guard project >= 1, method == .tracin else { throw ValidationError("--project needs a positive D and the tracin method") } }
        guard batchSize >= 1, top >= 1 else { throw ValidationError("--batch-size and --top must be positive") }
        if (aggregate != nil || groupField != nil || similarity != .dot) && (method != .tracin || test == nil) {
            throw ValidationError("--aggregate, --similarity and --group-field apply to tracin with --test")
        }
        if groupField != nil && aggregate == nil { throw ValidationError("--group-field needs --aggregate") }
        if test != nil && method != .tracin { throw ValidationError("--test applies to tracin (train-to-test influence)") }
        if nullRun != nil && !method.needsNullRun { throw ValidationError("--null-run applies to pvi") }
        if space != .params && method != .grand && method != .tracin { throw ValidationError("--space applies to the gradient scores grand and tracin") }
        if precision != .f32 && (!method.isForwardOnly || test != nil) {
            throw ValidationError("--precision \(precision.rawValue) is for the forward-only scores (\(ScoreMethod.allCases.filter(\.isForwardOnly).map(\.rawValue).joined(separator: ", "))); "
                                  + "'\(method)'\(test != nil ? " with --test" : "") is computed in F32")
        }
        try refuseOverwriting(out, inputs: [dataOptions.data] + [test, nullRun].compactMap { $0 })
        try refuseWritingIntoModel(out, models: modelsRead(run: runPath, base: base) + [nullRun].compactMap { $0 })
        if matrix != nil && test == nil { throw ValidationError("--matrix writes the train-to-test matrix of tracin --test") }
        if let matrix {
            try refuseOverwriting(matrix, option: "--matrix", inputs: [dataOptions.data] + (test.map { [$0] } ?? []))
            try refuseWritingIntoModel(matrix, option: "--matrix", models: modelsRead(run: runPath, base: base))
            guard URL(fileURLWithPath: matrix).standardizedFileURL != URL(fileURLWithPath: out).standardizedFileURL else {
                throw ValidationError("--matrix and --out name the same file; one would replace the other")
            }
        }
        if lengthNeutral && (method != .grand && method != .tracin || test != nil) {
            throw ValidationError("--length-neutral applies to grand and to tracin self-influence (without --test)")
        }
        if shard != nil && (method.readsDynamics || test != nil) {
            throw ValidationError("--shard applies to per-example gradient and output scores, not to \(method)\(test != nil ? " --test" : "")")
        }
        if resume && (method.readsDynamics || test != nil) {
            throw ValidationError("--resume applies to per-example gradient and output scores (scored in parts), not to \(method)\(test != nil ? " --test" : "")")
        }
        // Options that would change nothing are refused rather than ignored.
        let gradient = method == .grand || method == .tracin
        if paramsGiven != nil && (!gradient || space == .lastHidden) {
            throw ValidationError("--params applies to the gradient scores grand and tracin over parameters (--space params)")
        }
        // VoG is a variance over checkpoints: a selection of one gives every example 0, known before any file is read.
        if method == .vog, let c = checkpointsGiven {
            var one = false
            switch c {
            case .first, .last: one = true
            case let .list(refs): one = refs.count == 1
            case .all: one = false
            }
            if one { throw ValidationError("vog is a variance over checkpoints and needs at least two; --checkpoints \(c) selects one") }
        }
        if checkpointsGiven != nil && method.readsDynamics { throw ValidationError("--checkpoints does not apply to \(method), which reads the run's training dynamics") }
        if targetGiven != nil && method != .vog { throw ValidationError("--target applies to vog") }
        if learningRate != nil && method != .tracin { throw ValidationError("--lr applies to tracin (each checkpoint's eta_k)") }
        if let lr = learningRate, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be positive (it weighs every checkpoint's term)") }
        if seedGiven != nil && project == nil { throw ValidationError("--seed is the seed of --project's projection") }
        if topGiven != nil && (test == nil || aggregate != nil || method != .tracin) {
            throw ValidationError("--top applies to tracin --test without --aggregate (proponents and opponents)")
        }
        if method == .tracin && test != nil && aggregate == nil && format != .csv {
            throw ValidationError("tracin --test writes proponents and opponents as CSV; --format \(format) applies with --aggregate")
        }
        // A file named for one format holding another misleads every reader of it (prune, merge, numpy).
        if let f = formatGiven, let named = ScoreWriter.Format(rawValue: URL(fileURLWithPath: out).pathExtension.lowercased()), named != f {
            throw ValidationError("--format \(f) and --out \(out) name different formats; give --out a .\(f.rawValue) name or leave --format out")
        }
        if let matrix, URL(fileURLWithPath: matrix).pathExtension.lowercased() != "npy" {
            throw ValidationError("--matrix is written as .npy (float64, [test, train]); give it a .npy name")
        }
        guard batchSize <= 1_000_000 else { throw ValidationError("--batch-size must be at most 10^6") }
        if let m = memoryLimitGiven, m > 1 << 30 { throw ValidationError("--memory-limit is in MiB and at most 2^30") }
        if method.readsDynamics, let given = dataOptions.textField ?? dataOptions.pairField {
            throw ValidationError("--\(dataOptions.textField != nil ? "text" : "pair")-field \(given) does not apply to \(method), which reads the run's training dynamics and the labels (no text)")
        }
        if memoryLimit < 16 { throw ValidationError("--memory-limit is in MiB and at least 16") }
        if partSize < 1 { throw ValidationError("--part-size must be at least 1") }
        // What the training dynamics scores read: the run's dynamics and the data file's table, no model pass.
        if method.readsDynamics {
            for (given, name) in [(batchSizeGiven != nil, "--batch-size"), (partSizeGiven != nil, "--part-size"),
                                  (dataOptions.maxLengthGiven != nil, "--max-length")] where given {
                throw ValidationError("\(name) does not apply to \(method), which reads the run's training dynamics (no model pass)")
            }
        }
        if memoryLimitGiven != nil && (method != .tracin || test == nil || ModelLoader.isCausalLM(URL(fileURLWithPath: runPath))) {
            throw ValidationError("--memory-limit applies to tracin --test on a classifier run (its test side's gradients)")
        }
        if partSizeGiven != nil && test != nil { throw ValidationError("--part-size applies to scores in resumable parts, not to tracin --test") }
        if checkpointsGiven != nil && method == .pvi { throw ValidationError("--checkpoints does not apply to pvi, which reads the final models of both runs") }
        if (dataOptions.textField != nil || dataOptions.pairField != nil),
           let folder = try? RunFolder(url: URL(fileURLWithPath: runPath)).finalModelFolder, MLPClassifier.isMLPFolder(folder) {
            throw ValidationError("\(dataOptions.textField != nil ? "--text-field" : "--pair-field") does not apply to an MLP run, which reads a CSV of numeric features")
        }
    }

    var options: ScoreOptions {
        var o = ScoreOptions()
        o.checkpoints = checkpoints; o.params = params; o.space = space; o.vogTarget = target
        o.learningRate = learningRate; o.batchSize = batchSize; o.maxLength = dataOptions.maxLength
        o.memoryLimit = memoryLimit << 20; o.projectDim = project; o.seed = seed; o.lengthNeutral = lengthNeutral
        o.adapterBase = base.map { URL(fileURLWithPath: $0) }
        o.precision = precision     // recorded with resumable parts (the arithmetic itself is set around the whole run)
        o.reporter = TerminalReporter()
        return o
    }

    /// What a shard's manifest records, so that `winnow merge` joins only shards of one scoring: the
    /// method, run, data file, the weights read (a digest of samples of their content) and every option that
    /// changes the values (not --shard, --out, --resume, --part-size or --batch-size).
    var job: String {
        let f = dataOptions.fields
        return ["score \(method)", "run \(URL(fileURLWithPath: runPath).standardizedFileURL.path)",
                shardData(dataOptions.data, sharded: shard != nil),
                shardModels(ScoreParts.modelsRead(run: URL(fileURLWithPath: runPath), method: method, options: options).map(\.path) + [base, nullRun],
                            sharded: shard != nil),
                "max-length \(dataOptions.maxLength)",
                "fields \(f.text ?? "-")/\(f.pair ?? "-")/\(f.label ?? "-")", "checkpoints \(checkpointSteps)", "params \(params)", "space \(space)",
                "target \(target)", "lr \(learningRate.map { "\($0)" } ?? "-")", "project \(project.map { "\($0) seed \(seed)" } ?? "-")",
                "length-neutral \(lengthNeutral)", "precision \(precision.rawValue)",
                "null-run \(nullRun.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? "-")",
                "base \(base.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? "-")",
                "format \(format)"].joined(separator: ", ")
    }

    /// The checkpoints as the steps they select (`all` and the list of every step are one scoring), or as given
    /// when they cannot be resolved here.
    var checkpointSteps: String {
        guard let chosen = try? RunFolder(url: URL(fileURLWithPath: runPath)).select(checkpoints), !chosen.isEmpty else { return "\(checkpoints)" }
        return "steps " + chosen.map { "\($0.step)" }.joined(separator: ",")
    }

    mutating func run() throws {
        let lock = try OutputLock(URL(fileURLWithPath: out))
        defer { lock.release() }
        noteBaseOverride(adapter: runPath, base: base)
        if !method.readsDynamics { dataOptions.adoptMaxLength(ofRun: runPath) }
        // The dynamics belong to the labels training read: another label field would write other labels beside them.
        if method.readsDynamics, let given = dataOptions.labelField,
           let trained = (try? RunFolder(url: URL(fileURLWithPath: runPath)))?.trainedFields?.label, given != trained {
            throw WinnowError.invalidOption(name: "--label-field", reason:
                "\(runPath) was trained on the label field '\(trained)' (its winnow.json); \(method) reads the dynamics of those labels")
        }
        dataOptions.adoptFields(ofRun: runPath)
        if !method.readsDynamics { noteRunRead(run: runPath, checkpoints: checkpointsGiven) }   // the dynamics scores say it in their error
        guard precision == .f32 else { return try precision.run { try score() } }
        try score()
    }

    func score() throws {
        let o = options
        let runURL = URL(fileURLWithPath: runPath)
        let dataURL = URL(fileURLWithPath: dataOptions.data)
        let outURL = URL(fileURLWithPath: out)
        let jobLine = job   // the weights as this scoring reads them, before the work
        if method == .tracin, let test {
            let testURL = URL(fileURLWithPath: test)
            // A missing group field is found before the gradients are computed.
            if let groupField { _ = try JSONLField.strings(groupField, in: testURL, lines: try TargetInfluence.targetLines(run: runURL, test: testURL, fields: dataOptions.fields)) }
            let influence = try TargetInfluence.matrix(run: runURL, train: dataURL, test: testURL, fields: dataOptions.fields, options: o,
                                                       similarity: similarity)
            // The matrix after the output: a failed --out leaves no matrix behind.
            func writeMatrix() throws {
                guard let matrix else { return }
                try AtomicFile.write(ScoreWriter.npy(influence.matrix.flatMap { $0.map(Double.init) }, shape: [influence.test.count, influence.train.count]),
                                     to: URL(fileURLWithPath: matrix))
            }
            guard let aggregate else {
                for n in influence.notes { printError("note: \(n)") }
                try writeProponents(influence.matrix, train: influence.train, test: influence.test)
                return try writeMatrix()
            }
            let r = try TargetInfluence.scores(influence, test: testURL, similarity: similarity, mode: aggregate, groupField: groupField)
            try ScoreWriter.write(r, format: format, to: outURL)
            try writeMatrix()
            for n in r.notes { printError("note: \(n)") }
            printError("score: wrote \(r.scores.count) target-influence scores to \(outURL.path)")
            return
        }
        let nullURL = nullRun.map { URL(fileURLWithPath: $0) }
        let partsURL = URL(fileURLWithPath: out + ".parts")
        if !method.readsDynamics, let note = Scorer.pairsNote(run: runURL, data: dataURL, fields: dataOptions.fields) { printError(note) }
        try Scorer.checkFamily(method, run: runURL)
        if base != nil && !ModelLoader.isAdapter(runURL) {
            throw WinnowError.invalidOption(name: "--base", reason: "is the base model of a LoRA adapter; \(runPath) is not an adapter folder or run")
        }
        // Scores from a model that learned nothing mean nothing: say so (checked on the scored file's first examples).
        let check = method.readsDynamics || method.needsNullRun ? nil
            : try Scorer.learningCheck(run: runURL, data: dataURL, fields: dataOptions.fields, maxLength: dataOptions.maxLength, base: o.adapterBase, batchSize: o.batchSize)
        let written: (count: Int, notes: [String])
        var fileExamples = 0      // every example of the data file (a shard's manifest records it for merge)
        if method.readsDynamics {
            let result = try Scorer.score(method, run: runURL, data: dataURL, fields: dataOptions.fields, options: o, nullRun: nullURL)
            try ScoreWriter.write(result, format: format, to: outURL)
            written = (result.scores.count, result.notes + [result.constantWarning].compactMap { $0 })
        } else {
            // Part by part from the parts folder into the output: memory does not grow with the data set.
            let r = try ScoreParts.scoreToFile(method, run: runURL, data: dataURL, fields: dataOptions.fields, options: o, nullRun: nullURL,
                                               parts: partsURL, resume: resume, partSize: partSize, shard: shard, format: format, to: outURL)
            written = (r.count, r.notes)
            fileExamples = r.total
        }
        if FileManager.default.fileExists(atPath: partsURL.path) { try FileManager.default.removeItem(at: partsURL) }
        try ShardMerge.recordShard(shard, examples: fileExamples, job: jobLine, output: outURL)
        for n in written.notes { printError(n.hasPrefix("warning: ") ? "winnow: WARNING: " + n.dropFirst(9) : "note: " + n) }
        printError("score: wrote \(written.count) \(method) scores to \(outURL.path)")
        if let check, check.learnedNothing {
            printError("winnow: WARNING: the run's final model learned nothing on \(dataURL.path): it \(check.description). "
                       + "These scores come from a model that learned nothing and mean nothing.")
        }
    }

    func writeProponents(_ m: [[Float]], train trainTable: ExampleTable, test testEnc: ExampleTable) throws {
        var outFile = TextFileBuilder()
        outFile.append("test_index,test_line,test_id,kind,rank,train_index,train_line,train_id,influence")
        let k = min(top, trainTable.count)
        for (ti, row) in m.enumerated() {
            let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
            let prefix = "\(ti),\(testEnc.lines[ti]),\(csvField(testEnc.ids[ti] ?? ""))"
            // Proponents raise the test example's loss reduction (positive influence), opponents lower it
            // (negative): a training example is never both, however few there are.
            for (r, j) in order.prefix(while: { row[$0] > 0 }).prefix(k).enumerated() {
                outFile.append("\(prefix),proponent,\(r + 1),\(j),\(trainTable.lines[j]),\(csvField(trainTable.ids[j] ?? "")),\(String(format: "%.9g", row[j]))")
            }
            for (r, j) in order.reversed().prefix(while: { row[$0] < 0 }).prefix(k).enumerated() {
                outFile.append("\(prefix),opponent,\(r + 1),\(j),\(trainTable.lines[j]),\(csvField(trainTable.ids[j] ?? "")),\(String(format: "%.9g", row[j]))")
            }
        }
        try outFile.write(to: URL(fileURLWithPath: out))
        printError("score: wrote top-\(k) proponents and opponents for \(testEnc.count) test examples to \(out)")
    }
}
