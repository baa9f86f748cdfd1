import CKernels
import Testing

// Optimised kernels against their plain-loop `_ref` twins on awkward shapes (1, 7, 33, 17:
// not multiples of 8 or 16), plus properties of the counter RNG that dropout relies on.

struct GemmCase: Sendable, CustomTestStringConvertible {
    var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, beta: Float
    var testDescription: String { "M\(m) N\(n) K\(k) tA \(transA) tB \(transB) beta \(beta)" }

    static let all: [GemmCase] = {
        var cases: [GemmCase] = []
        // also the small kernel's edges: 6-row tiles, 16-column panels, 8 x 8 transposed blocks
        for (m, n, k) in [(1, 1, 1), (7, 33, 17), (33, 7, 1), (17, 1, 33), (13, 40, 70), (6, 16, 8)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    for beta: Float in [0, 1.3] { cases.append(GemmCase(m: m, n: n, k: k, transA: transA, transB: transB, beta: beta)) }
                }
            }
        }
        return cases
    }()

    /// Shapes that cross the AVX-512 kernel's blocks (12-row tiles, 32-column panels, k blocks of at most 1024,
    /// row blocks of 192, column blocks of 2048) and split over threads by rows or by columns.
    static let large: [GemmCase] = {
        var cases: [GemmCase] = []
        for (m, n, k) in [(200, 45, 300), (37, 300, 1300), (13, 2100, 40), (300, 300, 300)] {
            for transA in [false, true] {
                for transB in [false, true] { cases.append(GemmCase(m: m, n: n, k: k, transA: transA, transB: transB, beta: transA ? 0 : 0.6)) }
            }
        }
        return cases
    }()
}

/// Which GEMM a test runs.
enum GemmPath: String, CaseIterable, Sendable { case small, smallAVX512, openblas, avx512, dispatched }

@Suite("Optimised kernels against _ref twins")
struct KernelReferenceTests {
    /// ck_gemm (cblas) and ck_gemm_small (our tiled kernel) against the double-sum loops.
    @Test(arguments: GemmCase.all, GemmPath.allCases)
    func gemm(_ g: GemmCase, path: GemmPath) {
        gemmAgainstReference(g, path: path)
    }

    /// The large products of the AVX-512 kernel and OpenBLAS (both run here: this CPU has AVX-512).
    @Test(arguments: GemmCase.large, [GemmPath.openblas, .avx512, .smallAVX512])
    func largeGemm(_ g: GemmCase, path: GemmPath) {
        gemmAgainstReference(g, path: path)
    }

    /// The opt-in bf16 product against plain loops on the same bf16-rounded operands.
    @Test(arguments: GemmCase.all + GemmCase.large)
    func bf16Gemm(_ g: GemmCase) {
        guard ck_isa_supported(Int32(CK_ISA_AVX512_BF16)) == 1 else { return }   // no AVX512_BF16 here: nothing to run
        let lda = (g.transA ? g.m : g.k) + 3, ldb = (g.transB ? g.k : g.n) + 1, ldc = g.n + 2
        let aRows = g.transA ? g.k : g.m, bRows = g.transB ? g.n : g.k
        var rng = SeededGenerator(seed: 73)
        let a = randomFloats(aRows * lda, using: &rng), b = randomFloats(bRows * ldb, using: &rng)
        var c0 = g.beta == 0 ? [Float](repeating: .nan, count: g.m * ldc) : randomFloats(g.m * ldc, using: &rng)
        for i in 0..<g.m { for j in g.n..<ldc { c0[i * ldc + j] = 42 } }
        var fast = c0, ref = c0
        let tA = Int32(g.transA ? CK_TRANS_T : CK_TRANS_N), tB = Int32(g.transB ? CK_TRANS_T : CK_TRANS_N)
        fast.withUnsafeMutableBufferPointer {
            ck_gemm_bf16($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB, 0.7, g.beta)
        }
        ref.withUnsafeMutableBufferPointer {
            ck_gemm_bf16_ref($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB, 0.7, g.beta)
        }
        let tol = g.k <= 400 ? Tolerance.twin : Tolerance(atol: 1e-6 * Double(g.k).squareRoot(), rtol: 1e-4)
        expectClose("bf16 gemm C", fast, ref, tol)
        #expect((0..<g.m).allSatisfy { i in (g.n..<ldc).allSatisfy { fast[i * ldc + $0] == 42 } }, "bf16 gemm wrote into the padding")
    }

    /// ck_gemm_bias (the bias added as Winnow's kernel stores each tile; rows filled with it before
    /// OpenBLAS's product: `make test`'s two passes run both) against ck_gemm_ref plus the bias, in F32 and
    /// with bf16 operands where the CPU has AVX512_BF16 (against ck_gemm_bf16_ref plus the bias).
    @Test(arguments: GemmCase.all + GemmCase.large, [false, true])
    func gemmBias(_ g: GemmCase, bf16: Bool) {
        if bf16 && ck_isa_supported(Int32(CK_ISA_AVX512_BF16)) == 0 { return }   // no AVX512_BF16 here: nothing to run
        let lda = (g.transA ? g.m : g.k) + 3, ldb = (g.transB ? g.k : g.n) + 1, ldc = g.n + 2
        let aRows = g.transA ? g.k : g.m, bRows = g.transB ? g.n : g.k
        var rng = SeededGenerator(seed: 74)
        let a = randomFloats(aRows * lda, using: &rng), b = randomFloats(bRows * ldb, using: &rng), bias = randomFloats(g.n, using: &rng)
        var c0 = g.beta == 0 ? [Float](repeating: .nan, count: g.m * ldc) : randomFloats(g.m * ldc, using: &rng)
        for i in 0..<g.m { for j in g.n..<ldc { c0[i * ldc + j] = 42 } }
        var fast = c0, ref = c0
        let tA = Int32(g.transA ? CK_TRANS_T : CK_TRANS_N), tB = Int32(g.transB ? CK_TRANS_T : CK_TRANS_N)
        let saved = ck_gemm_precision()
        if bf16 { #expect(ck_set_gemm_precision(Int32(CK_PRECISION_BF16)) == Int32(CK_PRECISION_BF16)) }
        fast.withUnsafeMutableBufferPointer {
            ck_gemm_bias($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB, 0.7, g.beta, bias)
        }
        ck_set_gemm_precision(saved)
        ref.withUnsafeMutableBufferPointer {
            if bf16 {
                ck_gemm_bf16_ref($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB, 0.7, g.beta)
                for i in 0..<g.m { for j in 0..<g.n { $0[i * ldc + j] += bias[j] } }
            } else {
                ck_gemm_bias_ref($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB, 0.7, g.beta,
                                 bias)
            }
        }
        let tol = g.k <= 400 ? Tolerance.twin : Tolerance(atol: 1e-6 * Double(g.k).squareRoot(), rtol: 1e-4)
        expectClose("gemm bias C", fast, ref, tol)
        #expect((0..<g.m).allSatisfy { i in (g.n..<ldc).allSatisfy { fast[i * ldc + $0] == 42 } }, "gemm bias wrote into the padding")
    }

    /// Winnow's kernel splits a product by rows over the pool's threads, which pack each block of op(B)
    /// once, together, and wait for one another (three k blocks here: six waits): the same bits as the
    /// product on one thread (inside a parallel region).
    @Test(arguments: [false, true])
    func avx512ThreadsShareThePackingWithOneThreadsBits(transB: Bool) {
        guard ck_isa_supported(Int32(CK_ISA_AVX512)) == 1, ck_blas_get_threads() > 1 else { return }   // one core or no AVX-512
        let (m, n, k) = (600, 700, 2500)
        let ldb = transB ? k : n
        var rng = SeededGenerator(seed: 75)
        let a = randomFloats(m * k, using: &rng), b = randomFloats(k * n, using: &rng)
        var pooled = [Float](repeating: .nan, count: m * n), alone = pooled
        let tB = Int32(transB ? CK_TRANS_T : CK_TRANS_N)
        ck_gemm_avx512(&pooled, Int32(n), a, Int32(k), b, Int32(ldb), Int32(m), Int32(n), Int32(k), Int32(CK_TRANS_N), tB, 1, 0)
        ck_parallel_region_begin()
        ck_gemm_avx512(&alone, Int32(n), a, Int32(k), b, Int32(ldb), Int32(m), Int32(n), Int32(k), Int32(CK_TRANS_N), tB, 1, 0)
        ck_parallel_region_end()
        #expect(pooled.map(\.bitPattern) == alone.map(\.bitPattern))
    }

    @Test func bf16RoundsToNearestEven() {
        let one: Float = 1, u = Float(1) / 256       // bf16 keeps 7 fraction bits: its step at 1 is 2^-7
        #expect(ck_round_bf16(one) == one)
        #expect(ck_round_bf16(one + u) == one)                      // halfway, to the even neighbour 1
        #expect(ck_round_bf16(one + 3 * u) == one + 4 * u)          // halfway, to the even neighbour 1 + 2^-6
        #expect(ck_round_bf16(one + 1.5 * u) == one + 2 * u)        // above halfway
        #expect(ck_round_bf16(-(one + 3 * u)) == -(one + 4 * u))
    }

    @Test func theAVX512KernelRunsWhereTheCPUHasIt() {
        #expect(ck_isa_supported(Int32(CK_ISA_AVX2)) == 1)
        if ck_isa_requested() < 0 { #expect(ck_isa() == (ck_isa_supported(Int32(CK_ISA_AVX512)) == 1 ? Int32(CK_ISA_AVX512) : Int32(CK_ISA_AVX2))) }
    }

    func gemmAgainstReference(_ g: GemmCase, path: GemmPath) {
        if [.avx512, .smallAVX512].contains(path) && ck_isa_supported(Int32(CK_ISA_AVX512)) == 0 { return }   // no AVX-512 here: nothing to run
        // padded leading dimensions; op(A) is [M,K], stored [K,M] when transposed
        let lda = (g.transA ? g.m : g.k) + 3, ldb = (g.transB ? g.k : g.n) + 1, ldc = g.n + 2
        let aRows = g.transA ? g.k : g.m, bRows = g.transB ? g.n : g.k
        var rng = SeededGenerator(seed: 71)
        let a = randomFloats(aRows * lda, using: &rng), b = randomFloats(bRows * ldb, using: &rng)
        // beta == 0 must not read C: start from NaN there
        var c0 = g.beta == 0 ? [Float](repeating: .nan, count: g.m * ldc) : randomFloats(g.m * ldc, using: &rng)
        for i in 0..<g.m { for j in g.n..<ldc { c0[i * ldc + j] = 42 } }
        var fast = c0, ref = c0
        let tA = Int32(g.transA ? CK_TRANS_T : CK_TRANS_N), tB = Int32(g.transB ? CK_TRANS_T : CK_TRANS_N)
        var pack = [Float](repeating: .nan, count: ck_gemm_small_pack_size(Int32(g.n), Int32(g.k)))
        fast.withUnsafeMutableBufferPointer {
            switch path {
            case .small:
                ck_gemm_small($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB,
                              0.7, g.beta, &pack)
            case .smallAVX512:
                ck_gemm_small_avx512($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB,
                                     0.7, g.beta, &pack)
            case .openblas:
                ck_gemm_openblas($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB, 0.7, g.beta)
            case .avx512:
                ck_gemm_avx512($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB, 0.7, g.beta)
            case .dispatched:
                ck_gemm($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB, 0.7, g.beta)
            }
        }
        ref.withUnsafeMutableBufferPointer {
            ck_gemm_ref($0.baseAddress, Int32(ldc), a, Int32(lda), b, Int32(ldb), Int32(g.m), Int32(g.n), Int32(g.k), tA, tB, 0.7, g.beta)
        }
        // A float sum of k products of numbers in [-1, 1] is off by about eps * sqrt(k) of its terms' size.
        let tol = g.k <= 400 ? Tolerance.twin : Tolerance(atol: 1e-6 * Double(g.k).squareRoot(), rtol: 1e-4)
        expectClose("gemm C", fast, ref, tol)
        #expect((0..<g.m).allSatisfy { i in (g.n..<ldc).allSatisfy { fast[i * ldc + $0] == 42 } }, "gemm wrote into the padding")
    }

    @Test func gemmStridedBatched() {
        let (m, n, k, batch) = (7, 5, 9, 3)
        let sA = m * k + 4, sB = k * n + 2, sC = m * n + 1  // gaps between operands
        var rng = SeededGenerator(seed: 72)
        let a = randomFloats(batch * sA, using: &rng), b = randomFloats(batch * sB, using: &rng)
        let c0 = randomFloats(batch * sC, using: &rng)
        var fast = c0, ref = c0
        fast.withUnsafeMutableBufferPointer {
            ck_gemm_strided_batched($0.baseAddress, Int32(n), sC, a, Int32(k), sA, b, Int32(n), sB, Int32(batch),
                                    Int32(m), Int32(n), Int32(k), Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 0.5)
        }
        ref.withUnsafeMutableBufferPointer { c in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    for i in 0..<batch {
                        ck_gemm_ref(c.baseAddress! + i * sC, Int32(n), ap.baseAddress! + i * sA, Int32(k), bp.baseAddress! + i * sB,
                                    Int32(n), Int32(m), Int32(n), Int32(k), Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 0.5)
                    }
                }
            }
        }
        expectClose("gemm_strided_batched C", fast, ref, .twin)
    }

    /// ck_syrk_small_upper's upper triangle against A A^T in double (tiles crossing the diagonal,
    /// partial row tiles and column panels, the AVX-512 form's half-panel tiles, one column wide at
    /// N 49, K not a multiple of 8); rows far below the diagonal stay untouched.
    @Test(arguments: [(1, 1), (7, 9), (17, 70), (40, 33), (49, 20), (128, 64)], [Float(0), 1.3])
    func syrkSmallUpper(_ shape: (n: Int, k: Int), beta: Float) {
        syrkSmallUpper(shape, beta: beta, avx512: false)
        if ck_isa_supported(Int32(CK_ISA_AVX512)) == 1 { syrkSmallUpper(shape, beta: beta, avx512: true) }
    }

    /// `avx512`: the AVX-512 form called directly (whatever WINNOW_ISA says); else the dispatched one.
    func syrkSmallUpper(_ shape: (n: Int, k: Int), beta: Float, avx512: Bool) {
        let (n, k) = shape, lda = k + 3, ldc = n + 2
        var rng = SeededGenerator(seed: 73)
        let a = randomFloats(n * lda, using: &rng)
        let c0 = beta == 0 ? [Float](repeating: .nan, count: n * ldc) : randomFloats(n * ldc, using: &rng)
        var fast = c0, ref = c0
        var pack = [Float](repeating: .nan, count: ck_gemm_small_pack_size(Int32(n), Int32(k)))
        if avx512 {
            ck_syrk_small_upper_avx512(&fast, Int32(ldc), a, Int32(lda), Int32(n), Int32(k), 0.7, beta, &pack)
        } else {
            ck_syrk_small_upper(&fast, Int32(ldc), a, Int32(lda), Int32(n), Int32(k), 0.7, beta, &pack)
        }
        let band = avx512 || ck_isa() == Int32(CK_ISA_AVX512) ? 31 : 15   // entries a diagonal tile may write below it
        ck_gemm_ref(&ref, Int32(ldc), a, Int32(lda), a, Int32(lda), Int32(n), Int32(n), Int32(k), Int32(CK_TRANS_N),
                    Int32(CK_TRANS_T), 0.7, beta)
        var upperFast: [Float] = [], upperRef: [Float] = []
        for i in 0..<n {
            for j in i..<n { upperFast.append(fast[i * ldc + j]); upperRef.append(ref[i * ldc + j]) }
            for j in 0..<max(0, i - band) where !(fast[i * ldc + j].bitPattern == c0[i * ldc + j].bitPattern) {
                Issue.record("row \(i) column \(j), below the diagonal's tiles, was written")
            }
        }
        expectClose("syrk small upper", upperFast, upperRef, .twin)
    }

    @Test func blasThreads() {
        let n = ck_blas_get_threads()
        #expect(n >= 1)
        ck_blas_set_threads(n)  // same value: other suites may be inside BLAS right now
        #expect(ck_blas_get_threads() == n)
    }

    @Test(arguments: [AttentionShape(b: 1, t: 1, nh: 1, hs: 1), AttentionShape(b: 2, t: 7, nh: 3, hs: 5),
                      AttentionShape(b: 2, t: 33, nh: 2, hs: 8), AttentionShape(b: 3, t: 16, nh: 2, hs: 16),
                      AttentionShape(b: 2, t: 100, nh: 2, hs: 8)],
          AttentionVariant.all)
    func attention(shape: AttentionShape, variant: AttentionVariant) {
        compareAttentionTwins(shape: shape, variant: variant, keyMask: variant.masked ? attentionKeyMask(b: shape.b, t: shape.t) : nil)
    }

    /// A row whose keys are all masked with finfo.min gives the uniform distribution (as PyTorch
    /// does), never NaN; a row of -inf gives zeros.
    @Test(arguments: [false, true])
    func fullyMaskedRows(causal: Bool) {
        let shape = AttentionShape(b: 2, t: 7, nh: 2, hs: 4)
        let variant = AttentionVariant(causal: causal, pDrop: 0.1, masked: true)
        let mask = attentionKeyMask(b: shape.b, t: shape.t, full: true)
        let out = compareAttentionTwins(shape: shape, variant: variant, keyMask: mask)
        #expect(!out.contains { $0.isNaN }, "attention output has NaN for a fully masked batch")

        let run = AttentionRun(shape: AttentionShape(b: 1, t: 4, nh: 1, hs: 1),
                               variant: AttentionVariant(causal: false, pDrop: 0, masked: true), scale: 1, seed: 1)
        var rng = SeededGenerator(seed: 73)
        let qkv = randomFloats(4 * 3, using: &rng)
        for reference in [false, true] {
            let (o, att) = run.forward(qkv, keyMask: [Float](repeating: -.infinity, count: 4), reference: reference)
            #expect(att.allSatisfy { $0 == 0 } && o.allSatisfy { $0 == 0 }, "-inf key mask (reference \(reference)): \(att)")
        }
    }

    /// Forward and backward of the optimised and _ref kernels agree; returns the forward output.
    @discardableResult
    private func compareAttentionTwins(shape: AttentionShape, variant: AttentionVariant, keyMask: [Float]?,
                                       sourceLocation: SourceLocation = #_sourceLocation) -> [Float] {
        let C = shape.nh * shape.hs, rows = shape.b * shape.t
        var rng = SeededGenerator(seed: 74)
        let qkv = randomFloats(rows * 3 * C, in: -1.5...1.5, using: &rng)
        let dout = randomFloats(rows * C, using: &rng), d0 = randomFloats(rows * 3 * C, using: &rng)
        let run = AttentionRun(shape: shape, variant: variant, scale: 1 / Float(shape.hs).squareRoot(), seed: 99)
        let fast = run.forward(qkv, keyMask: keyMask, reference: false)
        let ref = run.forward(qkv, keyMask: keyMask, reference: true)
        expectClose("attention att (fast vs ref)", fast.att, ref.att, .twin, sourceLocation: sourceLocation)
        expectClose("attention out (fast vs ref)", fast.out, ref.out, .twin, sourceLocation: sourceLocation)
        let dFast = run.backward(d0, dout: dout, att: fast.att, qkv: qkv, reference: false)
        let dRef = run.backward(d0, dout: dout, att: fast.att, qkv: qkv, reference: true)
        expectClose("attention dqkv (fast vs ref)", increments(dFast, d0), increments(dRef, d0), .twin,
                    sourceLocation: sourceLocation)
        return fast.out
    }

    // MARK: - Counter RNG

    /// The documented formula (ck_internal.h): u = (mix(mix(seed) + (counter + 1) * golden) >> 40) * 2^-24.
    /// Pinning it keeps dropout masks reproducible across versions of the kernels.
    @Test func counterRNGFollowsDocumentedFormula() {
        func mix(_ z0: UInt64) -> UInt64 {
            var z = z0
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for seed: UInt64 in [0, 1, 42, .max] {
            for counter: UInt64 in [0, 1, 7, 1 << 40, .max - 1] {
                let z = mix(mix(seed) &+ (counter &+ 1) &* 0x9E37_79B9_7F4A_7C15)
                let expected = Float(z >> 40) * (1 / 16_777_216)
                #expect(ck_rng_uniform(seed, counter) == expected, "seed \(seed) counter \(counter)")
            }
        }
    }

    @Test func counterRNGIsUniformAndDropoutKeepsTheExpectation() {
        let n = 100_000
        var sum = 0.0
        for i in 0..<n {
            let u = ck_rng_uniform(3, UInt64(i))
            #expect(u >= 0 && u < 1)
            sum += Double(u)
        }
        #expect(abs(sum / Double(n) - 0.5) < 0.005, "mean of u is \(sum / Double(n))")
        let ones = [Float](repeating: 1, count: n)
        var y = [Float](repeating: 0, count: n)
        y.withUnsafeMutableBufferPointer { ck_dropout_forward($0.baseAddress, ones, n, 0.1, 5, 0) }
        let dropped = Double(y.filter { $0 == 0 }.count) / Double(n)
        let mean = y.reduce(0.0) { $0 + Double($1) } / Double(n)
        #expect(abs(dropped - 0.1) < 0.005 && abs(mean - 1) < 0.01, "dropped \(dropped), mean \(mean)")
        // in place gives the same as out of place; p = 0 copies
        var inPlace = randomFloatsForAliasing()
        let source = inPlace
        var outOfPlace = [Float](repeating: 0, count: source.count)
        inPlace.withUnsafeMutableBufferPointer { ck_dropout_forward($0.baseAddress, $0.baseAddress, source.count, 0.3, 9, 3) }
        outOfPlace.withUnsafeMutableBufferPointer { ck_dropout_forward($0.baseAddress, source, source.count, 0.3, 9, 3) }
        #expect(inPlace == outOfPlace)
        outOfPlace.withUnsafeMutableBufferPointer { ck_dropout_forward($0.baseAddress, source, source.count, 0, 9, 3) }
        #expect(outOfPlace == source)
    }

    private func randomFloatsForAliasing() -> [Float] {
        var rng = SeededGenerator(seed: 75)
        return randomFloats(1000, using: &rng)
    }
}
