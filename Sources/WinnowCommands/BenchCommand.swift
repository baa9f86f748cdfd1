import ArgumentParser
import Foundation
import Winnow

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure end-to-end throughput on BERT-small (4 layers, hidden 512, 8 heads, seq 128, batch 32).",
        discussion: "Reports examples/s of a training step and a forward pass, achieved GFLOP/s, and the fraction of the sgemm peak measured in the same run.")

    @Option(help: "Sequence length.") var seqLen: Int = 128
    @Option(name: .customLong("batch-size"), help: "Batch size (default 32; 8 with --model).") var batchSizeGiven: Int?
    var batchSize: Int { batchSizeGiven ?? 32 }
    @Option(help: "Encoder layers.") var layers: Int = 4
    @Option(help: "Hidden size.") var hidden: Int = 512
    @Option(help: "Attention heads.") var heads: Int = 8
    @Option(help: "Timed repetitions of each measurement.") var repeats: Int = 5
    @Option(help: "Comma-separated measurements to run (forward, train, grad-norms, vog, mlm, tracin); default all. The others report 0.")
    var only: String?
    @Option(help: "Measure a causal language model instead: smollm2 (models/smollm2), a .gguf file or a Llama folder; --batch-size defaults to 8 there.")
    var model: String?
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Print the wall time of each section of the encoder's passes (adds a clock read per section).")
    var profile = false

    func validate() throws {
        for name in (only ?? "").split(separator: ",") where Benchmark.Measure(rawValue: String(name)) == nil {
            throw ValidationError("--only: unknown measurement '\(name)'; expected forward, train, grad-norms, vog, mlm or tracin")
        }
    }

    func run() throws {
        if let model {
            let url = URL(fileURLWithPath: model == "smollm2" ? "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" : model)
            var r = try Benchmark.runCausalLM(url, seqLen: seqLen, batchSize: batchSizeGiven ?? 8, repeats: repeats, log: json ? nil : { print($0) })
            r["openblas_thread_timeout"] = ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] ?? "unset"
            if json { print(String(data: try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]), encoding: .utf8)!) }
            return
        }
        Profile.enabled = profile
        let r = Benchmark.run(layers: layers, hidden: hidden, heads: heads, seqLen: seqLen, batchSize: batchSize, repeats: repeats,
                              only: only.map { Set($0.split(separator: ",").compactMap { Benchmark.Measure(rawValue: String($0)) }) }
                                  ?? Set(Benchmark.Measure.allCases),
                              log: json ? nil : { print($0) })
        // The OpenBLAS idle-spin setting the run had (see WinnowMain.limitOpenBLASIdleSpin): it changes
        // the non-GEMM sections by a third, so it belongs with the figures.
        let timeout = ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] ?? "unset"
        if json {
            var obj = r.json
            obj["openblas_thread_timeout"] = timeout
            print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
        } else {
            print("OPENBLAS_THREAD_TIMEOUT: \(timeout)")
        }
    }
}
