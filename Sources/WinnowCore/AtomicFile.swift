import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes files so that readers see either the old file or the complete new one, never a part:
/// the bytes go to a temporary file beside the target, are fsync'ed, and the file is renamed over it.
///
///     try AtomicFile.write(data, to: url)
///     try AtomicFile.write(to: url) { handle in handle.write(...) }
package enum AtomicFile {
    /// Writes `data` to `url` atomically.
    package static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { fd in
            try data.withUnsafeBytes { raw in try writeAll(fd: fd, raw, path: url.path) }
        }
    }

    /// Writes a UTF-8 string to `url` atomically.
    package static func write(_ string: String, to url: URL) throws {
        try write(Data(string.utf8), to: url)
    }

    /// Calls `body` with a file descriptor of a temporary file; on success the file replaces `url`.
    /// On any thrown error the temporary file is removed and `url` is left untouched. A symbolic link is
    /// followed (the file it names is replaced, the link kept); a device or pipe (`/dev/stdout`, a FIFO) is
    /// written through, as it cannot be replaced.
    package static func write(to given: URL, _ body: (Int32) throws -> Void) throws {
        let url = given.resolvingSymlinksInPath()
        var st = stat()
        if stat(url.path, &st) == 0 {
            let kind = st.st_mode & S_IFMT
            if kind == S_IFCHR || kind == S_IFIFO || kind == S_IFSOCK {
                let fd = open(url.path, O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else {
                    throw WinnowError.invalidFile(path: given.path, line: nil, reason: "cannot be opened for writing: \(String(cString: strerror(errno)))")
                }
                defer { close(fd) }
                return try body(fd)
            }
        }
        let dir = url.deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "cannot make its folder \(dir.path) (a file of that name, or no permission?)")
        }
        removeStaleTemporaryFiles(of: url)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        // Registered before it exists, so that SIGINT or SIGTERM removes it (`PendingTemporaryFiles`).
        let slot = PendingTemporaryFiles.add(tmp.path)
        defer { PendingTemporaryFiles.remove(slot) }
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "cannot create a file here: \(String(cString: strerror(errno)))")
        }
        do {
            try body(fd)
            guard fsync(fd) == 0 else {
                throw WinnowError.invalidFile(path: url.path, line: nil, reason: "fsync failed: \(String(cString: strerror(errno)))")
            }
            close(fd)
        } catch {
            close(fd)
            unlink(tmp.path)
            throw error
        }
        guard rename(tmp.path, url.path) == 0 else {
            let msg = String(cString: strerror(errno))
            unlink(tmp.path)
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "cannot rename the finished file into place: \(msg)")
        }
        let dfd = open(dir.path, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Removes the temporary files of `url` that a killed writer left (`.NAME.tmp-PID-N` whose process no
    /// longer exists here and that no one has written for an hour: a writer on another host of a shared file
    /// system, whose process id means nothing here, would have written it within the hour).
    package static func removeStaleTemporaryFiles(of url: URL) {
        let dir = url.deletingLastPathComponent(), prefix = ".\(url.lastPathComponent).tmp-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
            let path = dir.appendingPathComponent(name).path
            var st = stat()
            guard stat(path, &st) == 0, Double(time(nil) - st.st_mtim.tv_sec) > 3600 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(path) }
        }
    }

    /// Writes the text lines `body` emits to `url` atomically, through a 1 MiB buffer: per-example
    /// outputs of millions of rows never sit in memory as a whole file.
    ///
    ///     try AtomicFile.writeLines(to: url) { emit in for row in rows { try emit(row) } }
    package static func writeLines(to url: URL, _ body: (_ emit: (String) throws -> Void) throws -> Void) throws {
        try write(to: url) { fd in
            let capacity = 1 << 20
            var buffer = [UInt8]()
            buffer.reserveCapacity(capacity + 4096)
            func flush() throws {
                try buffer.withUnsafeBytes { try writeAll(fd: fd, $0, path: url.path) }
                buffer.removeAll(keepingCapacity: true)
            }
            try body { line in
                buffer.append(contentsOf: line.utf8)
                buffer.append(0x0A)
                if buffer.count >= capacity { try flush() }
            }
            try flush()
        }
    }

    /// Writes every byte of `raw` to `fd`, retrying short writes.
    package static func writeAll(fd: Int32, _ raw: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw WinnowError.invalidFile(path: path, line: nil, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }
}

/// Buffers text lines and writes them with `AtomicFile` when finished (for CSV/JSONL outputs).
package struct TextFileBuilder {
    private var data = Data()
    package init() {}
    /// Continues a file read back (its lines end in newlines).
    package init(data: Data) { self.data = data }
    package mutating func append(_ line: String) { data.append(contentsOf: line.utf8); data.append(0x0A) }
    package func write(to url: URL) throws { try AtomicFile.write(data, to: url) }
}

/// The temporary files `AtomicFile` is writing, as C strings a signal handler can unlink: a command killed by
/// SIGINT or SIGTERM leaves neither a partial output nor its hidden temporary file (SIGKILL cannot be caught:
/// `AtomicFile.removeStaleTemporaryFiles` removes those later).
package enum PendingTemporaryFiles {
    static let capacity = 32
    /// The slots (nil when free); made when first used, which `prepare()` does before a handler is installed.
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        p.initialize(repeating: nil, count: capacity)
        return p
    }()
    static let lock = NSLock()

    /// Makes the slots, so that a signal handler never runs their initialiser.
    package static func prepare() { _ = slots }

    /// Registers `path`; the slot to `remove` (nil when all are taken: the file is then only removed by a later writer).
    package static func add(_ path: String) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard let i = (0..<capacity).first(where: { slots[$0] == nil }) else { return nil }
        slots[i] = strdup(path)
        return i
    }

    /// Forgets the file of `slot` (renamed into place, or removed).
    package static func remove(_ slot: Int?) {
        guard let slot else { return }
        lock.lock(); defer { lock.unlock() }
        let p = slots[slot]
        slots[slot] = nil
        free(p)
    }

    /// Unlinks every registered file: only reads and unlink(2), which are async-signal-safe.
    package static func unlinkAll() {
        for i in 0..<capacity { if let p = slots[i] { unlink(p) } }
    }
}
