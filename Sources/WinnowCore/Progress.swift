import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Receives what long library work has to say: the progress of its passes and one-line notes (a
/// choice it made, input it skipped). The library is silent unless given a reporter; the `winnow`
/// command passes `TerminalReporter`.
///
///     var o = ScoreOptions(); o.reporter = TerminalReporter()
public protocol ProgressReporter: Sendable {
    /// Starts a task of `total` units (`unit` names them: "ex", "step", "B").
    func start(_ label: String, total: Int, unit: String) -> any ProgressTask
    /// One line for the user.
    func note(_ message: String)
}

/// One task's progress, from `ProgressReporter.start`.
public protocol ProgressTask: AnyObject, Sendable {
    /// Records `n` more units done; `note` is shown beside the count (e.g. the loss).
    func advance(by n: Int, note: String)
    /// Ends the task (a bar prints its last state and a newline).
    func finish(note: String)
}

extension ProgressTask {
    /// Advances by `n` units without a note.
    public func advance(by n: Int = 1) { advance(by: n, note: "") }
    /// Ends the task without a note.
    public func finish() { finish(note: "") }
}

/// Says nothing (the library's default).
public struct SilentReporter: ProgressReporter {
    /// Creates a reporter that says nothing.
    public init() {}
    /// Returns a task that ignores all progress.
    public func start(_ label: String, total: Int, unit: String) -> any ProgressTask { SilentTask() }
    /// Ignores `message`.
    public func note(_ message: String) {}
}

final class SilentTask: ProgressTask {
    func advance(by n: Int, note: String) {}
    func finish(note: String) {}
}

extension ProgressReporter where Self == SilentReporter {
    /// A reporter that says nothing.
    public static var silent: SilentReporter { SilentReporter() }
}

/// Progress on stderr: a bar with rate and ETA on a terminal, plain lines every few seconds otherwise
/// (logs, CI); notes as lines. Only rank 0 of a distributed job reports.
public struct TerminalReporter: ProgressReporter {
    /// Creates a reporter that writes to stderr.
    public init() {}

    /// Starts a progress bar on stderr labelled `label`; on ranks other than 0 it stays silent.
    public func start(_ label: String, total: Int, unit: String) -> any ProgressTask {
        ProgressBar(label: label, total: total, unit: unit)
    }

    /// Writes `message` as one line on stderr (rank 0 only).
    public func note(_ message: String) {
        if Distributed.isRoot { printError(message) }
    }
}

/// `TerminalReporter`'s task: a bar with rate and ETA on a terminal, plain lines otherwise.
///
///     let bar = ProgressBar(label: "train", total: steps, unit: "step")
///     bar.advance(by: 1, note: "loss 0.41")
///     bar.finish()
package final class ProgressBar: ProgressTask, @unchecked Sendable {
    let label: String
    let total: Int
    let unit: String
    let start = Date()
    var done = 0
    var lastPrint = Date.distantPast
    let tty: Bool
    let quiet: Bool

    /// 1 while a terminal bar's line is on screen without its newline (what a signal handler ends).
    nonisolated(unsafe) package static var lineOpen: sig_atomic_t = 0

    package init(label: String, total: Int, unit: String = "it", quiet: Bool = false) {
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
        self.quiet = quiet || !Distributed.isRoot     // one progress line per job, from rank 0
        tty = isatty(2) != 0 && ProcessInfo.processInfo.environment["CI"] == nil
    }

    package func advance(by n: Int = 1, note: String = "") {
        done += n
        let now = Date()
        let interval: TimeInterval = tty ? 0.2 : 10
        if now.timeIntervalSince(lastPrint) >= interval || done >= total {
            lastPrint = now
            render(note: note)
        }
    }

    func render(note: String) {
        guard !quiet else { return }
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        // A total that was an estimate (the bytes of a pipe) can be passed: the bar then stays full, never beyond.
        let eta = rate > 0 ? Double(max(0, total - done)) / rate : 0
        let frac = min(1, Double(done) / Double(total))
        let stats = String(format: "%d/%d %@ | %.1f %@/s | ETA %@", done, max(total, done), unit, rate, unit, ProgressBar.clock(eta))
        if tty {
            let width = 28
            let filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(label) [\(bar)] \(stats) \(note)".utf8))
            ProgressBar.lineOpen = 1
        } else {
            FileHandle.standardError.write(Data("\(label): \(Int(frac * 100))% \(stats) \(note)\n".utf8))
        }
    }

    package func finish(note: String = "") {
        guard !quiet else { return }
        if tty { render(note: note); FileHandle.standardError.write(Data("\n".utf8)); ProgressBar.lineOpen = 0 }
        else if lastPrint == .distantPast || done < total { render(note: note) }
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}

/// Writes one line to stderr (the CLI's messages; the library speaks through a `ProgressReporter`).
package func printError(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
