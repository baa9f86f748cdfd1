/// Data-parallel training across processes: winnow-mpi installs an MPI-backed group; a single process
/// has none. The trainer splits every global batch into contiguous per-rank slices, sums gradients,
/// loss and dynamics over ranks, and lets only rank 0 write files.
package protocol ProcessGroup: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// In-place sum over all ranks.
    func allReduceSum(_ x: UnsafeMutablePointer<Float>, count: Int)
    func allReduceSum(_ x: UnsafeMutablePointer<Double>, count: Int)
}

package enum Distributed {
    /// Set once at start-up by winnow-mpi, before any training.
    nonisolated(unsafe) package static var group: ProcessGroup? = nil

    /// Does this process write outputs? (Always in a single process; rank 0 under MPI.)
    package static var isRoot: Bool { (group?.rank ?? 0) == 0 }

    /// The active group when more than one process takes part.
    package static var parallel: ProcessGroup? { group.flatMap { $0.size > 1 ? $0 : nil } }

    /// Rows [lo, hi) of a global batch of `n` rows that `rank` of `size` handles.
    package static func slice(_ n: Int, rank: Int, size: Int) -> Range<Int> { (n * rank / size)..<(n * (rank + 1) / size) }
}
