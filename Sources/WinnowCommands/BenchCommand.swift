import ArgumentParser
import Foundation
import Winnow

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure end-to-end throughput on BERT-small (4 layers, hidden 512, 8 heads, seq 128, batch 32).",
        discussion: "Reports the GEMM in use (Winnow's AVX-512 kernel or OpenBLAS) with both rates on the model's shapes, examples/s of a training step and a forward pass, achieved GFLOP/s, and the fraction of the sgemm peak measured in the same run.")

    @Option(parsing: .unconditional, help: "Sequence length.") var seqLen: Int = 128
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Batch size (default 32; 8 with --model).") var batchSizeGiven: Int?
    var batchSize: Int { batchSizeGiven ?? 32 }
    @Option(name: .customLong("layers"), parsing: .unconditional, help: "Encoder layers (default 4; not with --model or --gemm-only).") var layersGiven: Int?
    @Option(name: .customLong("hidden"), parsing: .unconditional, help: "Hidden size (default 512; not with --model).") var hiddenGiven: Int?
    @Option(name: .customLong("heads"), parsing: .unconditional, help: "Attention heads (default 8; not with --model or --gemm-only).") var headsGiven: Int?
    var layers: Int { layersGiven ?? 4 }
    var hidden: Int { hiddenGiven ?? 512 }
    var heads: Int { headsGiven ?? 8 }
    @Option(parsing: .unconditional, help: "Timed repetitions of each measurement.") var repeats: Int = 5
    @Option(help: "Comma-separated measurements to run (forward, train, grad-norms, vog, mlm, tracin; with --model forward, train, grad-norms); default all. The others report 0.")
    var only: String?
    @Option(help: "Measure a causal language model instead: smollm2 (models/smollm2 under the current folder: run from the checkout's root), a .gguf file or a Llama folder; --batch-size defaults to 8 there.")
    var model: String?
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Also measure OpenBLAS's sgemm with this OPENBLAS_CORETYPE (e.g. SkylakeX) in a child process, beside Winnow's GEMM (the product itself never changes the core type).")
    var referenceCoretype: String?
    @Flag(help: "Only the GEMM rates (OpenBLAS as configured and Winnow's AVX-512 kernel) on the model's shapes.") var gemmOnly = false
    @Flag(help: "Print the wall time of each section of the encoder's passes (adds a clock read per section; not with --model).")
    var profile = false

    /// The measurements --only names (all by default).
    var measures: Set<Benchmark.Measure> {
        only.map { Set($0.split(separator: ",").compactMap { Benchmark.Measure(rawValue: String($0)) }) }
            ?? (model == nil ? Set(Benchmark.Measure.allCases) : Benchmark.causalLMMeasures)
    }

    /// OpenBLAS's x86-64 core names (`OPENBLAS_CORETYPE`; an unknown name silently falls back to the detected core).
    static let coretypes = ["Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn", "Dunnington", "Nehalem",
                            "Sandybridge", "Haswell", "SkylakeX", "CooperLake", "SapphireRapids", "Opteron", "Barcelona", "Bobcat",
                            "Bulldozer", "Piledriver", "Steamroller", "Excavator", "Zen"]

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard batchSizeGiven.map({ $0 >= 1 }) ?? true else { throw ValidationError("--batch-size must be at least 1") }
        guard seqLen >= 3 else { throw ValidationError("--seq-len must be at least 3 ([CLS], a token, [SEP])") }
        if let only, measures.isEmpty { throw ValidationError("--only '\(only)' names no measurement; expected forward, train, grad-norms, vog, mlm or tracin") }
        guard layers >= 1, hidden >= 1, heads >= 1 else { throw ValidationError("--layers, --hidden and --heads must be at least 1") }
        guard hidden % heads == 0 else { throw ValidationError("--hidden \(hidden) must be a multiple of --heads \(heads)") }
        if gemmOnly, model == nil, let ignored = [(layersGiven != nil, "--layers"), (headsGiven != nil, "--heads")].first(where: { $0.0 })?.1 {
            throw ValidationError("\(ignored) does not apply to --gemm-only (the GEMM shapes follow --hidden, --seq-len and --batch-size)")
        }
        if let c = referenceCoretype, !Self.coretypes.contains(where: { $0.caseInsensitiveCompare(c) == .orderedSame }) {
            throw ValidationError("--reference-coretype: '\(c)' is not an OpenBLAS core type (\(Self.coretypes.joined(separator: ", ")))")
        }
        if gemmOnly && (only != nil || profile) { throw ValidationError("\(only != nil ? "--only" : "--profile") does not apply to --gemm-only (GEMM rates alone)") }
        if profile && json { throw ValidationError("--profile prints a table; it does not go into --json") }
        for name in (only ?? "").split(separator: ",") where Benchmark.Measure(rawValue: String(name)) == nil {
            throw ValidationError("--only: unknown measurement '\(name)'; expected forward, train, grad-norms, vog, mlm or tracin")
        }
        guard model != nil else { return }
        // A causal language model has its own shape and no encoder sections: these would be ignored.
        for (given, name) in [(layersGiven != nil, "--layers"), (hiddenGiven != nil, "--hidden"), (headsGiven != nil, "--heads"),
                              (profile, "--profile")] where given {
            throw ValidationError("\(name) applies to the BERT benchmark, not to --model (the model file gives its shape)")
        }
        if let extra = measures.subtracting(Benchmark.causalLMMeasures).map(\.rawValue).sorted().first {
            throw ValidationError("--only: '\(extra)' is not measured with --model; expected forward, train or grad-norms")
        }
    }

    /// The GEMM table: the ISA in use, OpenBLAS's preset kernel and Winnow's on the model's shapes.
    func gemmReport(_ shapes: [Benchmark.GemmShape]) throws -> [String: Any] {
        let rates = Benchmark.gemmRates(shapes, repeats: repeats)
        let coretype = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"
        // The core OpenBLAS really runs: an unknown or unsupported OPENBLAS_CORETYPE falls back to another one.
        let core = Benchmark.openBLASCore
        var obj: [String: Any] = ["isa": Benchmark.isaName, "openblas_coretype": coretype, "openblas_core": core, "gemm": rates.map(\.json),
                                  "threads": Threads.count, "cores": Threads.available]
        if !json {
            print("GEMM in use: \(Benchmark.isaName == "avx512" ? "Winnow's AVX-512 kernel" : "OpenBLAS") (isa \(Benchmark.isaName); WINNOW_ISA=avx2|avx512 forces one); "
                  + "OpenBLAS kernels for \(core) (OPENBLAS_CORETYPE \(coretype)); \(Threads.count) of \(Threads.available) cores (WINNOW_THREADS limits them)")
            for r in rates {
                let s = r.shape
                let name = s.name.padding(toLength: 22, withPad: " ", startingAt: 0)
                print("  " + name + String(format: " %5d x %5d x %5d%@  OpenBLAS %6.1f GFLOP/s   Winnow %6.1f GFLOP/s  (%.2fx)", s.m, s.n, s.k,
                                           (s.transA ? " A^T" : s.transB ? " B^T" : "    ") as NSString, r.openblas, r.winnow, r.winnow / r.openblas))
            }
        }
        if let referenceCoretype {
            // OpenBLAS picks its kernel when it loads: a child process with the core type set measures it.
            let p = Process()
            // This executable, wherever it was found (argv[0] is a bare name when run from PATH).
            p.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: "/proc/self/exe")
            p.arguments = ["bench", "--gemm-only", "--json", "--repeats", "\(repeats)"]
            var env = ProcessInfo.processInfo.environment
            env["OPENBLAS_CORETYPE"] = referenceCoretype
            p.environment = env
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0, let child = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let first = (child["gemm"] as? [[String: Any]])?.first, let ref = first["openblas_gflops"] as? Double else {
                throw WinnowError.invalidOption(name: "--reference-coretype", reason: "the child bench with OPENBLAS_CORETYPE=\(referenceCoretype) failed")
            }
            let ran = child["openblas_core"] as? String ?? "unknown"
            if ran.caseInsensitiveCompare(referenceCoretype) != .orderedSame {
                printError("note: OPENBLAS_CORETYPE=\(referenceCoretype) ran OpenBLAS's \(ran) kernels (this OpenBLAS has none for \(referenceCoretype) on this CPU)")
            }
            let ours = rates.first?.winnow ?? 0
            obj["reference_coretype"] = referenceCoretype
            obj["reference_core"] = ran
            obj["reference_sgemm_gflops"] = ref
            obj["winnow_fraction_of_reference"] = ours / ref
            if !json {
                print(String(format: "  sgemm 2048^3 with OPENBLAS_CORETYPE=%@ (child process, %@ kernels): %.1f GFLOP/s; Winnow's AVX-512 GEMM here %.1f = %.0f%% of it",
                             referenceCoretype, ran, ref, ours, 100 * ours / ref))
            }
        }
        return obj
    }

    func run() throws {
        // What was measured goes with the figures.
        let shape: [String: Any] = ["seq_len": seqLen, "batch_size": batchSize, "repeats": repeats, "hidden": hidden]
            .merging(gemmOnly ? [:] : ["layers": layers, "heads": heads]) { a, _ in a }
        if gemmOnly && model == nil {
            var obj = try gemmReport(Benchmark.modelShapes(tokens: seqLen * batchSize, hidden: hidden, intermediate: 4 * hidden, qkv: 3 * hidden))
            for (k, v) in shape { obj[k] = v }
            if json { print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!) }
            return
        }
        if let model {
            // `smollm2` names the checkout's models/smollm2 (scripts/fetch-pretrained.sh smollm2), read from the current folder.
            let url = URL(fileURLWithPath: model == "smollm2" ? "models/smollm2" : model)
            if model == "smollm2" && !FileManager.default.fileExists(atPath: url.path) {
                throw WinnowError.invalidOption(name: "--model", reason:
                    "smollm2 is models/smollm2 of a Winnow checkout, and \(url.path) does not exist: run from the checkout's root "
                    + "after scripts/fetch-pretrained.sh smollm2, or give the path of a .gguf file or model folder")
            }
            var r = try Benchmark.runCausalLM(url, seqLen: seqLen, batchSize: batchSizeGiven ?? 8, repeats: repeats,
                                              only: gemmOnly ? [] : measures, log: json ? nil : { print($0) },
                                              gemm: { try gemmReport($0) })
            r["openblas_thread_timeout"] = ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] ?? "unset"
            if json { print(String(data: try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]), encoding: .utf8)!) }
            return
        }
        Profile.enabled = profile
        let gemm = try gemmReport(Benchmark.modelShapes(tokens: seqLen * batchSize, hidden: hidden, intermediate: 4 * hidden, qkv: 3 * hidden))
        let r = Benchmark.run(layers: layers, hidden: hidden, heads: heads, seqLen: seqLen, batchSize: batchSize, repeats: repeats,
                              only: measures,
                              log: json ? nil : { print($0) })
        // The OpenBLAS idle-spin setting the run had (see WinnowMain.limitOpenBLASIdleSpin): it changes
        // the non-GEMM sections by a third, so it belongs with the figures.
        let timeout = ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] ?? "unset"
        if json {
            var obj = r.json
            for (k, v) in gemm { obj[k] = v }
            for (k, v) in shape { obj[k] = v }
            obj["openblas_thread_timeout"] = timeout
            print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
        } else {
            print("OPENBLAS_THREAD_TIMEOUT: \(timeout)")
        }
    }
}
