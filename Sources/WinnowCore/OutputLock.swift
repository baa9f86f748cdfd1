import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An advisory lock on an output (a file or a run folder) so that two Winnow processes never write the same
/// one at once: `flock(2)` on `.NAME.lock` beside it, held until `release()` or the process ends (a killed
/// process holds nothing). Where the lock file cannot be made (a read-only folder), no lock is taken and the
/// write itself reports the folder.
///
///     let lock = try OutputLock(URL(fileURLWithPath: "scores.csv"))
///     defer { lock.release() }
package final class OutputLock {
    private var fd: Int32
    private let lockURL: URL

    /// Takes the lock of `target`.
    ///
    /// - Throws: `WinnowError.invalidOption` naming `option` when another process holds it.
    package init(_ target: URL, option: String = "out") throws {
        let t = target.standardizedFileURL
        lockURL = t.deletingLastPathComponent().appendingPathComponent(".\(t.lastPathComponent).lock")
        fd = -1
        // A device or pipe (`--out /dev/stdout`) is not a file two writers could leave half-written.
        var st = stat()
        if stat(t.path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG && (st.st_mode & S_IFMT) != S_IFDIR { return }
        fd = open(lockURL.path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            fd = -1
            throw WinnowError.invalidOption(name: option, reason:
                "another winnow process is writing \(t.path) (it holds \(lockURL.path)); wait for it to finish, or choose another --\(option)")
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
