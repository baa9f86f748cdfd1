import ArgumentParser
import Foundation
import Winnow

public struct WinnowCommand: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "winnow",
        abstract: "Score how much each training example matters, and prune, sample or reweight training data.",
        version: winnowVersion,
        subcommands: [TrainCommand.self, EvalCommand.self, PredictCommand.self, ScoreCommand.self, TokenizeCommand.self, PruneCommand.self, MergeCommand.self, ExperimentCommand.self, PretrainCommand.self, ReportCommand.self, InspectCommand.self, BenchCommand.self]
    )
}

/// The whole `winnow` program: parses `arguments` (default: the process's), runs the command, and
/// returns the exit status (docs/contracts.md §7: 0 success, 1 user error with one line on stderr, 2 usage).
public enum WinnowMain {
    public static func run(arguments: [String]? = nil) -> Int32 {
        if let p = Benchmark.isaRequestProblem() {
            printError(p.error ? "winnow: error: \(p.message)" : p.message)
            if p.error { return 2 }
        }
        do {
            if let note = try Threads.applyEnvironment() { printError(note) }
        } catch let error as WinnowError {
            printError("winnow: error: \(cliMessage(error))")
            return 2
        } catch { return 2 }
        do {
            var command = try WinnowCommand.parseAsRoot(arguments)
            try command.run()
            return 0
        } catch {
            return report(error)
        }
    }

    /// Parses and validates `arguments` as `run` does (the output checks included) without running the
    /// command: nil when they are valid, else the exit status, with the error printed.
    public static func check(arguments: [String]) -> Int32? {
        do {
            _ = try WinnowCommand.parseAsRoot(arguments)
            return nil
        } catch {
            let status = report(error)
            return status == 0 ? nil : status
        }
    }

    /// Prints `error` as `run` does and returns the exit status.
    static func report(_ error: any Error) -> Int32 {
        if let error = error as? WinnowError {
            printError("winnow: error: \(cliMessage(error))")
            return 1
        }
        let code = WinnowCommand.exitCode(for: error)
        if code == .success {
            print(WinnowCommand.fullMessage(for: error))
            return 0
        }
        if error is CocoaError || error is DecodingError || (error as NSError).domain == NSCocoaErrorDomain {
            // Name the file Foundation failed on, where it says which ("You don't have permission." alone names none).
            let info = (error as NSError).userInfo
            let path = info[NSFilePathErrorKey] as? String ?? (info[NSURLErrorKey] as? URL)?.path
            printError("winnow: error: \(path.map { "\($0): " } ?? "")\(error.localizedDescription)")
            return 1
        }
        printError(WinnowCommand.fullMessage(for: error))
        return code == .validationFailure ? 2 : 1
    }

    /// On SIGINT or SIGTERM, removes the temporary files of outputs being written (`PendingTemporaryFiles`) and
    /// ends a progress bar's line on a terminal (so the shell's next output starts on its own line), then dies
    /// of the signal as before (exit status 128 + signal; outputs are written to temporary files and renamed,
    /// so none is left partial).
    /// A signal the process inherited as ignored (a background job of a non-interactive shell) stays ignored.
    public static func endBarLineOnSignal() {
        PendingTemporaryFiles.prepare()
        for sig in [SIGINT, SIGTERM] {
            let previous = signal(sig, SIG_IGN)
            if let previous, unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { continue }
            signal(sig) { s in
                // Only flags and pointers are read, and write(2) and unlink(2) made here: all async-signal-safe.
                PendingTemporaryFiles.unlinkAll()
                if ProgressBar.lineOpen != 0 { _ = write(2, "\n", 1) }
                signal(s, SIG_DFL)
                raise(s)
            }
        }
    }

    /// OpenBLAS's worker threads spin (`sched_yield` in a loop) for 2^28 TSC cycles, tens of
    /// milliseconds, after every threaded call before they sleep. Between GEMMs Winnow runs attention
    /// heads, GELU and LayerNorm on both cores, so the spinning worker took a core from them: those
    /// sections ran a third slower (`winnow bench --profile`, Benchmarks/README.md). OpenBLAS reads
    /// `OPENBLAS_THREAD_TIMEOUT` (log2 of the cycles, 4...30) only when the library loads, before any
    /// of our code runs, so when the variable is unset the executable sets it to 4 (sleep almost at
    /// once; a wake-up costs microseconds against milliseconds per GEMM) and replaces itself with a
    /// fresh copy through `execv` (same process id, arguments and file descriptors). A value the user
    /// set is kept. Programs that embed the library can set the variable themselves.
    public static func limitOpenBLASIdleSpin() {
        #if os(Linux)
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returned: it failed (no /proc?). Carry on with OpenBLAS's default; nothing is lost.
        #endif
    }

    /// glibc: keep freed blocks up to 32 MiB (its largest mmap threshold) in the heap and never trim it,
    /// so per-batch tensors reuse memory instead of faulting in fresh zeroed pages every batch.
    public static func tuneAllocator() {
        #if canImport(Glibc)
        // <malloc.h>: M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3 (the macros are not imported into Swift).
        _ = glibcMallopt(-3, 32 << 20)
        _ = glibcMallopt(-1, Int32.max)
        #endif
    }
}

#if canImport(Glibc)
@_silgen_name("mallopt") func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32
#endif
