import CKernels
import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// The threading policy: ranges cover their items once, and OpenBLAS results do not change when
/// another thread runs parallel regions meanwhile (OpenBLAS's results depend on its thread count,
/// which a region changes under its lock).
@Suite struct ParallelTests {
    @Test(arguments: [0, 1, 2, 7, 31, 32, 1000, 4097])
    func rangesCoverEveryItemOnce(count: Int) {
        for minChunk in [1, 3, 256] {
            let seen = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(1, count))
            seen.initialize(repeating: 0)
            defer { seen.deallocate() }
            let base = seen.baseAddress!
            Parallel.ranges(count, minChunk: minChunk) { _, r in for i in r { base[i] += 1 } }
            #expect(seen.prefix(count).allSatisfy { $0 == 1 }, "count \(count), minChunk \(minChunk)")
        }
    }

    @Test func gemmResultsDoNotDependOnRegionsElsewhere() {
        let M = 300, N = 257, K = 129
        var rng = SeededGenerator(seed: 3)
        let a = (0..<(M * K)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<(N * K)).map { _ in Float.random(in: -1...1, using: &rng) }
        func product() -> [Float] {
            var c = [Float](repeating: 0, count: M * N)
            ck_gemm(&c, Int32(N), a, Int32(K), b, Int32(K), Int32(M), Int32(N), Int32(K), Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0)
            return c
        }
        let alone = product()
        let stop = StopFlag()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            // BLAS regions (OpenBLAS at one thread inside) running all the time on another thread.
            let x = [Float](repeating: 0.5, count: 4 * 64 * 64)
            var y = [Float](repeating: 0, count: 4 * 64 * 64)
            while !stop.isSet {
                y.withUnsafeMutableBufferPointer { p in
                    let out = p.baseAddress!
                    x.withUnsafeBufferPointer { xp in
                        let inp = xp.baseAddress!
                        Parallel.ranges(4, minChunk: 1, blas: true) { _, r in
                            for i in r {
                                ck_gemm(out + i * 4096, 64, inp + i * 4096, 64, inp + i * 4096, 64, 64, 64, 64,
                                        Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0)
                            }
                        }
                    }
                }
            }
            done.signal()
        }
        for _ in 0..<20 { #expect(product() == alone) }
        stop.set()
        done.wait()
    }

    /// The products' precision belongs to a thread: bf16 inference on one thread leaves another thread's
    /// F32 products alone (tests and embedding programs run both at once), and Winnow's workers take
    /// their caller's.
    @Test func bf16OnOneThreadLeavesAnotherInF32() throws {
        guard ArithmeticPrecision.bf16.isAvailable else { return }   // no AVX512_BF16: nothing to share
        let M = 64, N = 96, K = 160
        var rng = SeededGenerator(seed: 5)
        let a = (0..<(M * K)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<(N * K)).map { _ in Float.random(in: -1...1, using: &rng) }
        @Sendable func product() -> [Float] {
            var c = [Float](repeating: 0, count: M * N)
            ck_gemm(&c, Int32(N), a, Int32(K), b, Int32(K), Int32(M), Int32(N), Int32(K), Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0)
            return c
        }
        let f32 = product()
        let bf16 = try ArithmeticPrecision.bf16.run { product() }
        #expect(bf16 != f32 && ck_gemm_precision() == Int32(CK_PRECISION_F32))
        let stop = StopFlag()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            while !stop.isSet { _ = try? ArithmeticPrecision.bf16.run { product() } }
            done.signal()
        }
        for _ in 0..<200 { #expect(product() == f32) }
        stop.set()
        done.wait()
        // Parallel's workers run in the caller's precision.
        let seen = try ArithmeticPrecision.bf16.run { () -> [Int32] in
            let out = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 8)
            defer { out.deallocate() }
            Parallel.forEach(8) { out[$0] = ck_gemm_precision() }
            return Array(out)
        }
        #expect(seen.allSatisfy { $0 == Int32(CK_PRECISION_BF16) }, "\(seen)")
    }
}

/// A flag one thread sets and another polls.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
