import Foundation
import Testing

/// `winnow bench --json` on a tiny model: the keys issue 6 names, the fractions taken against the sgemm
/// rate measured between the model's repetitions, and the OpenBLAS idle-spin setting the run had.
/// (These check what bench reports, not how fast anything is: speed lives in benchmarks.)
@Suite struct BenchCLITests {
    static let tiny = ["bench", "--layers", "1", "--hidden", "64", "--heads", "2", "--seq-len", "16", "--batch-size", "4",
                       "--repeats", "2", "--only", "forward,train,tracin", "--json"]

    static func object(_ r: CLIResult) throws -> [String: Any] {
        #expect(r.status == 0, "bench failed: \(r.stderr)")
        let line = try #require(r.stdout.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func jsonHasTheFiguresAndWindowedFractions() throws {
        let o = try Self.object(try CLI.run(Self.tiny, environment: ["OPENBLAS_THREAD_TIMEOUT": nil]))
        for key in ["train_examples_per_s", "forward_examples_per_s", "class_logits_examples_per_s", "grad_norm_examples_per_s",
                    "vog_examples_per_s", "tracin_pairs_per_s", "sgemm_gflops",
                    "train_fraction_of_sgemm_peak", "forward_fraction_of_sgemm_peak", "train_window_sgemm_gflops",
                    "forward_window_sgemm_gflops"] {
            #expect(o[key] is Double, "missing or not a number: \(key)")
        }
        let d = { (k: String) in o[k] as? Double ?? -1 }
        #expect(d("train_examples_per_s") > 0 && d("forward_examples_per_s") > 0 && d("class_logits_examples_per_s") > 0)
        #expect(d("tracin_pairs_per_s") > 0)
        #expect(d("grad_norm_examples_per_s") == 0 && d("vog_examples_per_s") == 0, "--only skipped them: they report 0")
        // The overall peak is the best of every sgemm sample, the windows included.
        #expect(d("train_window_sgemm_gflops") > 0 && d("train_window_sgemm_gflops") <= d("sgemm_gflops"))
        #expect(d("forward_window_sgemm_gflops") > 0 && d("forward_window_sgemm_gflops") <= d("sgemm_gflops"))
        let fwdFraction = d("forward_gflops") / d("forward_window_sgemm_gflops")
        #expect(abs(d("forward_fraction_of_sgemm_peak") - fwdFraction) <= 1e-9 * fwdFraction)
        // The executable shortened OpenBLAS's idle spin for itself (it re-executes with the variable set).
        #expect(o["openblas_thread_timeout"] as? String == "4")
    }

    @Test func aThreadTimeoutTheUserSetIsKept() throws {
        let o = try Self.object(try CLI.run(Self.tiny + ["--repeats", "1"], environment: ["OPENBLAS_THREAD_TIMEOUT": "9"]))
        #expect(o["openblas_thread_timeout"] as? String == "9")
    }

    /// `--model` on a tiny Llama folder: --only picks the decoder's measurements (the others report 0);
    /// options that only shape the BERT benchmark, and measurements the decoder has not, are refused.
    @Test func modelBenchTakesOnlyAndRefusesEncoderOptions() throws {
        let lm = CLI.repo.appendingPathComponent("Tests/Fixtures/decoder/tied").path
        let base = ["bench", "--model", lm, "--seq-len", "8", "--batch-size", "2", "--repeats", "1", "--json"]
        let o = try Self.object(try CLI.run(base + ["--only", "forward"]))
        let d = { (k: String) in o[k] as? Double ?? -1 }
        #expect(d("forward_examples_per_s") > 0 && d("decoder_forward_examples_per_s") > 0)
        #expect(d("train_examples_per_s") == 0 && d("grad_norms_lora_examples_per_s") == 0, "--only skipped them: they report 0")
        let g = try Self.object(try CLI.run(base + ["--only", "grad-norms"]))
        #expect((g["grad_norms_lora_examples_per_s"] as? Double ?? 0) > 0 && (g["forward_examples_per_s"] as? Double) == 0)
        for (extra, named) in [(["--layers", "2"], "--layers"), (["--profile"], "--profile"), (["--only", "vog"], "'vog'")] {
            let r = try CLI.run(base + extra)
            #expect(r.status != 0 && r.stderr.contains(named) && r.stdout.isEmpty, "\(extra): \(r.stderr)")
        }
    }

    /// Options that would trap, measure nothing or be ignored are refused; WINNOW_ISA must name a path.
    @Test func badBenchOptionsAndISARequests() throws {
        for (extra, flag) in [(["--only", ","], "--only"), (["--seq-len", "1"], "--seq-len"), (["--heads", "0"], "--heads"),
                              (["--hidden", "10", "--heads", "3"], "--hidden 10 must be a multiple"), (["--gemm-only", "--layers", "1"], "--layers")] {
            let r = try CLI.run(["bench", "--repeats", "1"] + extra)
            #expect(r.status == 2 && r.stderr.contains(flag), "\(extra): \(r.stderr)")
        }
        let bogus = try CLI.run(["bench", "--gemm-only", "--repeats", "1"], environment: ["WINNOW_ISA": "AVX2"])
        #expect(bogus.status == 2 && bogus.stderr.contains("WINNOW_ISA=AVX2: expected avx2 or avx512"), "\(bogus.stderr)")
        // The JSON names the shapes it measured and the OpenBLAS core that really ran.
        let o = try Self.object(try CLI.run(["bench", "--gemm-only", "--repeats", "1", "--hidden", "64", "--seq-len", "8", "--batch-size", "2", "--json"]))
        #expect(o["hidden"] as? Int == 64 && o["seq_len"] as? Int == 8 && o["batch_size"] as? Int == 2 && o["repeats"] as? Int == 1, "\(o)")
        #expect((o["openblas_core"] as? String).map { !$0.isEmpty && $0 != "unknown" } == true, "\(o)")
        // WINNOW_THREADS limits the cores Winnow's work uses (capped at those the process may use), and must be a count.
        let cores = try #require(o["cores"] as? Int)
        #expect(o["threads"] as? Int == cores, "\(o)")
        let one = try Self.object(try CLI.run(["bench", "--gemm-only", "--repeats", "1", "--hidden", "64", "--seq-len", "8", "--batch-size", "2", "--json"],
                                              environment: ["WINNOW_THREADS": "1"]))
        #expect(one["threads"] as? Int == 1 && one["cores"] as? Int == cores, "\(one)")
        let many = try CLI.run(["bench", "--gemm-only", "--repeats", "1", "--hidden", "64", "--seq-len", "8", "--batch-size", "2", "--json"],
                               environment: ["WINNOW_THREADS": "4096"])
        #expect(many.status == 0 && many.stderr.contains("WINNOW_THREADS=4096, but the process may use \(cores) cores"), "\(many.stderr)")
        #expect(try Self.object(many)["threads"] as? Int == cores)
        // The cores are those the process may run on (its affinity mask), as taskset sets them.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") {
            let pinned = try Self.object(try CLI.run(["taskset", "-c", "0", CLI.binary.path, "bench", "--gemm-only", "--repeats", "1", "--hidden", "64",
                                                      "--seq-len", "8", "--batch-size", "2", "--json"], executable: URL(fileURLWithPath: "/usr/bin/env")))
            #expect(pinned["cores"] as? Int == 1 && pinned["threads"] as? Int == 1, "\(pinned)")
        }
        for bad in ["0", "two", "-1"] {
            let r = try CLI.run(["bench", "--gemm-only", "--repeats", "1"], environment: ["WINNOW_THREADS": bad])
            #expect(r.status == 2 && r.stderr.contains("WINNOW_THREADS") && r.stdout.isEmpty, "\(bad): \(r.stderr)")
        }
    }

    /// Found on PATH (argv[0] a bare name), bench still starts its reference child process.
    @Test func theReferenceRunWorksFromPath() throws {
        let r = try CLI.run(["winnow", "bench", "--gemm-only", "--repeats", "1", "--reference-coretype", "Haswell", "--json"],
                            environment: ["PATH": CLI.binary.deletingLastPathComponent().path + ":/usr/bin:/bin"], executable: URL(fileURLWithPath: "/usr/bin/env"))
        let o = try Self.object(r)
        #expect((o["reference_sgemm_gflops"] as? Double ?? 0) > 0, "\(r.stderr)")
    }
}
