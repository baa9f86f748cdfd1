import CKernels
import Dispatch
import Foundation
import Synchronization

/// The one threading policy (style.md): GEMMs called from the main thread use OpenBLAS's own threads;
/// everything else (elementwise kernels, attention heads, per-example work) is split here into
/// disjoint ranges run with `DispatchQueue.concurrentPerform`, with OpenBLAS at one thread meanwhile,
/// so the two levels never run at once. Kernels are single-threaded and reentrant; results do not
/// depend on the split (reductions across ranges are never formed here), nor on other threads: OpenBLAS's
/// results depend on its thread count, so a region holds a lock that keeps every other BLAS call out
/// (ck_parallel_region_begin), and its kernels always run at one OpenBLAS thread, even inline.
///
///     Parallel.ranges(rows) { _, r in ck_layernorm_forward(out + r.lowerBound * C, ..., Int32(r.count), ...) }
package enum Parallel {
    /// Cores the process may use: its CPU affinity mask (taskset, mpirun's binding), and no more than
    /// Foundation's count (which reads a container's CPU quota).
    package static let cores = max(1, min(Int(ck_cpu_count()), ProcessInfo.processInfo.activeProcessorCount))

    /// The limit `Threads.limit(to:)` set, 0 for none.
    static let limit = Atomic<Int>(0)

    /// Cores Winnow's work uses: `cores`, or fewer when limited.
    package static var workers: Int {
        let l = limit.load(ordering: .relaxed)
        return l > 0 ? min(l, cores) : cores
    }

    /// Rows per block of a reduction over rows (bias and LayerNorm parameter gradients): fixed, so
    /// that block sums added in block order give the same result on any number of cores.
    package static let reductionRows = 64

    /// Floats of work below which a part is not worth a dispatch (256 KiB).
    package static let grain = 1 << 16

    /// Items per part at least, for items of `width` floats of work each.
    package static func minChunk(width: Int) -> Int { max(1, grain / max(1, width)) }

    /// Parts `ranges` splits `count` items into: up to 4 per core (so a core slowed by a neighbour
    /// takes fewer), each at least `minChunk` items.
    package static func parts(_ count: Int, minChunk: Int = 1) -> Int {
        max(1, min(4 * workers, count / max(1, minChunk)))
    }

    /// `ranges` over `n` rows of `width` floats each (small arrays run inline).
    package static func rows(_ n: Int, width: Int, blas: Bool = false, _ body: (Int, Range<Int>) -> Void) {
        ranges(n, minChunk: minChunk(width: width), blas: blas, body)
    }

    /// Calls `body(part, range)` for `parts(count, minChunk:)` contiguous ranges covering 0..<count,
    /// concurrently. `part` indexes per-part scratch. `blas`: the body calls BLAS (see `forEach`).
    package static func ranges(_ count: Int, minChunk: Int = 1, blas: Bool = false, _ body: (Int, Range<Int>) -> Void) {
        guard count > 0 else { return }
        let n = parts(count, minChunk: minChunk)
        let split = { (i: Int) -> Range<Int> in (i * count / n)..<((i + 1) * count / n) }
        forEach(n, blas: blas) { body($0, split($0)) }
    }

    /// Calls `body(i)` for i in 0..<n concurrently (inline when n == 1 or one core). With `blas`, the
    /// body's BLAS calls run at one OpenBLAS thread, even inline, under the lock that keeps every other
    /// BLAS call out meanwhile (OpenBLAS's results depend on its thread count); without it the body
    /// must not call BLAS.
    package static func forEach(_ n: Int, blas: Bool = false, _ body: (Int) -> Void) {
        if n <= 0 { return }
        if blas { ck_parallel_region_begin() }
        defer { if blas { ck_parallel_region_end() } }
        if n == 1 || workers == 1 {
            for i in 0..<n { body(i) }
            return
        }
        withoutActuallyEscaping(body) { b in
            // The bodies capture raw pointers to disjoint ranges, which Swift cannot prove Sendable;
            // concurrentPerform returns only after every call, so nothing outlives this frame.
            let task = unsafeBitCast(b, to: (@Sendable (Int) -> Void).self)
            // The products' precision is per thread: the workers take the caller's.
            let precision = ck_gemm_precision()
            // At most `workers` lanes run at once (concurrentPerform alone would use every CPU); each takes the
            // next part until none is left, so a lane slowed by a neighbour takes fewer.
            let next = NextIndex()
            DispatchQueue.concurrentPerform(iterations: min(n, workers)) { _ in
                let own = ck_gemm_precision()
                if own != precision { _ = ck_set_gemm_precision(precision) }
                if blas { ck_parallel_worker_enter() }
                while true {
                    let i = next.value.wrappingAdd(1, ordering: .relaxed).oldValue
                    if i >= n { break }
                    task(i)
                }
                if blas { ck_parallel_worker_exit() }
                if own != precision { _ = ck_set_gemm_precision(own) }
            }
        }
    }

    /// The next part a lane of `forEach` takes.
    final class NextIndex: Sendable { let value = Atomic<Int>(0) }

    /// Elementwise kernel over `count` floats split into aligned parts: `body(offset, length)`.
    package static func elements(_ count: Int, _ body: (Int, Int) -> Void) {
        // 64K floats (256 KiB) per part at least: below that the dispatch costs more than it saves.
        if count < 2 * grain { body(0, count); return }
        ranges(count / 16, minChunk: grain / 16) { _, r in
            let lo = r.lowerBound * 16, hi = r.upperBound == count / 16 ? count : r.upperBound * 16
            body(lo, hi - lo)
        }
    }
}

/// How many cores Winnow's work uses in this process: the dense products (OpenBLAS's threads and
/// Winnow's own GEMM) and the per-example and elementwise work. By default every core the process may
/// use; a program that embeds Winnow beside other work limits it (the `winnow` tool reads
/// `WINNOW_THREADS`). Winnow's own kernels (its AVX-512 GEMM, the per-example and elementwise work) give the
/// same results on any count; OpenBLAS's products (the AVX2 path) may differ in the last bits.
///
///     try Threads.limit(to: 1)   // Winnow's work on one core from here on
///     try Threads.limit(to: nil) // every core again
public enum Threads {
    /// The cores Winnow's work uses now.
    public static var count: Int { Parallel.workers }

    /// Cores the process may use (its CPU affinity mask and quota): the most `limit(to:)` gives.
    public static var available: Int { Parallel.cores }

    /// Limits Winnow's work to `n` cores (at most `available`), or lifts the limit with nil. Call it while no
    /// Winnow work runs: work under way keeps the count it started with.
    /// - Throws: `WinnowError.invalidOption` when `n` is below 1.
    public static func limit(to n: Int?) throws {
        if let n, n < 1 { throw WinnowError.invalidOption(name: "threads", reason: "must be at least 1, not \(n)") }
        let k = min(n ?? Parallel.cores, Parallel.cores)
        let blas = initialBLASThreads   // read before the first change
        Parallel.limit.store(n == nil ? 0 : k, ordering: .relaxed)
        ck_blas_set_threads(Int32(n == nil ? blas : min(k, blas)))
    }

    /// OpenBLAS's own thread count before any limit (its default, or `OPENBLAS_NUM_THREADS`).
    static let initialBLASThreads = Int(ck_blas_get_threads())

    /// Applies `WINNOW_THREADS` from the environment (a program's own `limit(to:)` comes after). Returns a
    /// note when the value exceeds the cores available.
    /// - Throws: `WinnowError.invalidOption` when it is set but not a whole number of at least 1.
    public static func applyEnvironment() throws -> String? {
        guard let v = ProcessInfo.processInfo.environment["WINNOW_THREADS"], !v.isEmpty else { return nil }   // set empty: as unset
        guard let n = Int(v), n >= 1 else {
            throw WinnowError.invalidOption(name: "WINNOW_THREADS", reason: "expected a whole number of at least 1, not '\(v)'")
        }
        try limit(to: n)
        return n > available ? "note: WINNOW_THREADS=\(n), but the process may use \(available) cores: it uses \(available)" : nil
    }
}
