import Foundation
import Testing

/// Runs the built `winnow` binary (beside the test bundle) and captures its output.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLI {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tiny = repo.appendingPathComponent("Tests/Fixtures/tiny-bert")

    static var binary: URL {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let u = candidate.appendingPathComponent("winnow")
            if FileManager.default.isExecutableFile(atPath: u.path) { return u }
        }
        return repo.appendingPathComponent(".build/debug/winnow")
    }

    @discardableResult
    /// `executable`: another program to start with `args` (default: the winnow binary).
    /// `directory`: the folder it runs in (default: the test's).
    static func run(_ args: [String], environment: [String: String?] = [:], executable: URL? = nil, directory: URL? = nil) throws -> CLIResult {
        let p = Process()
        p.executableURL = executable ?? binary
        p.arguments = args
        if let directory { p.currentDirectoryURL = directory }
        var env = ProcessInfo.processInfo.environment
        env["CI"] = "1"      // plain progress lines
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLIResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// A fresh temporary folder.
    static func tempDir(_ name: String) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-cli-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    /// Trains a tiny model on the fixture data into `out`.
    static func trainTiny(_ out: URL, extra: [String] = []) throws -> CLIResult {
        try run(["train", "--data", tiny.appendingPathComponent("train.jsonl").path, "--vocab", tiny.appendingPathComponent("vocab.txt").path,
                 "--out", out.path, "--layers", "1", "--hidden", "16", "--heads", "2", "--epochs", "2", "--batch-size", "16",
                 "--lr", "1e-3", "--max-length", "32", "--checkpoints", "3", "--seed", "5"] + extra)
    }
}

extension CLI {
    /// Starts `winnow args`, sends SIGKILL after `seconds` (if it is still running), and returns
    /// whether it was killed before finishing.
    @discardableResult
    static func runKilled(_ args: [String], after seconds: Double) throws -> Bool {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["CI"] = "1"
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: seconds)
        let killed = p.isRunning
        if killed { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return killed
    }
}
