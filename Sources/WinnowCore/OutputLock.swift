import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An advisory lock on an output (a file or a run folder) so that two Winnow processes never write the same
/// one at once: `flock(2)` on `.NAME.lock` beside it (beside the file a symbolic link names), held until
/// `release()` or the process ends (a killed process holds nothing). A device or pipe (`/dev/stdout` not
/// redirected to a file) is not locked; where no lock can be taken (a read-only folder, a file system
/// without `flock`, such as Lustre mounted without it), the command runs unlocked, as before.
///
///     let lock = try OutputLock(URL(fileURLWithPath: "scores.csv"))
///     defer { lock.release() }
package final class OutputLock {
    private var fd: Int32 = -1
    private let lockURL: URL

    /// Takes the lock of `target`.
    ///
    /// - Throws: `WinnowError.invalidOption` naming `option` when another process holds it.
    package init(_ target: URL, option: String = "out") throws {
        let t = target.standardizedFileURL.resolvingSymlinksInPath()
        let dir = t.deletingLastPathComponent()
        lockURL = dir.appendingPathComponent(".\(t.lastPathComponent).lock")
        var st = stat()
        if stat(t.path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG && (st.st_mode & S_IFMT) != S_IFDIR { return }
        // The output's folder is made now (the command makes it anyway), so that a new folder is locked too.
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // A lock file another process removed while this one opened it is stale: open again (a few times).
        for _ in 0..<8 {
            let f = open(lockURL.path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
            guard f >= 0 else { return }
            if flock(f, LOCK_EX | LOCK_NB) != 0 {
                let busy = errno == EWOULDBLOCK || errno == EAGAIN
                close(f)
                guard busy else { return }   // no flock on this file system: unlocked
                throw WinnowError.invalidOption(name: option, reason:
                    "another winnow process is writing \(t.path) (it holds \(lockURL.path)); wait for it to finish, or choose another --\(option)")
            }
            var mine = stat(), named = stat()
            if fstat(f, &mine) == 0, stat(lockURL.path, &named) == 0, mine.st_dev == named.st_dev, mine.st_ino == named.st_ino {
                fd = f
                return
            }
            close(f)
        }
    }

    /// Releases the lock and removes its file.
    package func release() {
        guard fd >= 0 else { return }
        unlink(lockURL.path)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
