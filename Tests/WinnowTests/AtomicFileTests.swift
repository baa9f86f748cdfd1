import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// `AtomicFile.writeLines` streams through its buffer (more than one flush here) and still replaces the
/// target only when the whole file is written: an error part-way leaves the old file and no temporary.
@Suite struct AtomicFileTests {
    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-atomic-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    @Test func linesBeyondTheBufferArriveWholeAndInOrder() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("rows.csv")
        let rows = (0..<60_000).map { "\($0),example-\($0),\(Double($0) * 0.25)" }     // about 1.5 MiB: two flushes
        try AtomicFile.writeLines(to: url) { emit in for r in rows { try emit(r) } }
        let got = try String(contentsOf: url, encoding: .utf8)
        #expect(got.utf8.count > 1 << 20)
        #expect(got == rows.joined(separator: "\n") + "\n")
    }

    struct Stop: Error {}

    @Test func anErrorPartWayLeavesTheOldFileAndNoTemporary() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("rows.csv")
        try AtomicFile.write("old\n", to: url)
        #expect(throws: Stop.self) {
            try AtomicFile.writeLines(to: url) { emit in
                for i in 0..<100_000 {
                    if i == 90_000 { throw Stop() }       // after at least one flush to the temporary file
                    try emit(String(repeating: "x", count: 20))
                }
            }
        }
        #expect(try String(contentsOf: url, encoding: .utf8) == "old\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["rows.csv"])
    }

    /// A symbolic link is followed (its target replaced, the link kept); a FIFO is written through, not replaced.
    @Test func linksAreFollowedAndPipesWrittenThrough() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("target.txt"), link = dir.appendingPathComponent("link.jsonl")
        try AtomicFile.write("old\n", to: target)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        try AtomicFile.write("new\n", to: link)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == target.path)
        #expect(try String(contentsOf: target, encoding: .utf8) == "new\n")
        let fifo = dir.appendingPathComponent("pipe")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        // A reader on the other end (cat), then the write: the FIFO stays a FIFO and carries the bytes.
        let cat = Process(), out = Pipe()
        cat.executableURL = URL(fileURLWithPath: "/bin/cat")
        cat.arguments = [fifo.path]
        cat.standardOutput = out
        try cat.run()
        try AtomicFile.write("through\n", to: fifo)
        let received = out.fileHandleForReading.readDataToEndOfFile()
        cat.waitUntilExit()
        #expect(String(decoding: received, as: UTF8.self) == "through\n")
        var st = stat()
        #expect(stat(fifo.path, &st) == 0 && st.st_mode & S_IFMT == S_IFIFO)
    }

    /// Two writers of one output: the second is refused while the first holds the lock, and may write once
    /// it is released; the lock file goes with the lock. A device is not locked.
    @Test func anOutputHasOneWriterAtATime() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("scores.csv")
        let first = try OutputLock(out)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(".scores.csv.lock").path))
        #expect(throws: WinnowError.self) { _ = try OutputLock(out) }
        do { _ = try OutputLock(out) } catch { #expect("\(error)".contains("another winnow process is writing \(out.path)"), "\(error)") }
        first.release()
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent(".scores.csv.lock").path))
        let second = try OutputLock(out)
        second.release()
        let device = try OutputLock(URL(fileURLWithPath: "/dev/null"))
        #expect(!FileManager.default.fileExists(atPath: "/dev/.null.lock"))
        device.release()
        // A link is locked as the file it names (two names, one lock); a new folder is made and locked.
        let link = dir.appendingPathComponent("link.csv")
        try AtomicFile.write("x\n", to: out)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: out)
        let viaFile = try OutputLock(out)
        #expect(throws: WinnowError.self) { _ = try OutputLock(link) }
        viaFile.release()
        let nested = dir.appendingPathComponent("new/sub/s.csv")
        let inNew = try OutputLock(nested)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("new/sub/.s.csv.lock").path))
        #expect(throws: WinnowError.self) { _ = try OutputLock(nested) }
        inNew.release()
    }

    /// A temporary file a killed writer left beside the target goes at the next write; a live writer's stays.
    @Test func temporaryFilesOfDeadWritersAreRemoved() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("m.csv")
        // A process id that is not running: a child that has exited and been reaped.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let dead = dir.appendingPathComponent(".m.csv.tmp-\(p.processIdentifier)-12345")
        let live = dir.appendingPathComponent(".m.csv.tmp-\(getpid())-678")
        let recent = dir.appendingPathComponent(".m.csv.tmp-\(p.processIdentifier)-999")
        for f in [dead, live, recent] { try Data("partial".utf8).write(to: f) }
        // Untouched for two hours: the dead writer's goes, a live one's stays; a dead id's file written a minute
        // ago stays too (a writer on another host of a shared file system has an id that means nothing here).
        for f in [dead, live] { try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: f.path) }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: recent.path)
        try AtomicFile.write("whole\n", to: out)
        #expect(!FileManager.default.fileExists(atPath: dead.path))
        #expect(FileManager.default.fileExists(atPath: live.path) && FileManager.default.fileExists(atPath: recent.path))
        #expect(try String(contentsOf: out, encoding: .utf8) == "whole\n")
    }
}
