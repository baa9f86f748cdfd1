import CKernels
import Testing

// Per-example gradient norms and dot products (grad_norms.c) and the VoG accumulators
// (reductions.c) against naive Double oracles that materialise every per-example gradient.
// Examples are row ranges starting at off[0] > 0; rows outside the examples and columns beyond the
// width hold NaN, so a kernel that reads outside its operands gives NaN. Shapes are chosen so that
// both the Gram and the materialised path run (the rules are replicated in `GradNormPath`).

// MARK: - Shapes

/// The kernels' path rules, restated: norms use Gram iff 2 T^2 <= din dout; dots use Gram iff
/// N1 N2 (din + dout) <= (N1 + N2 + M1 M2) din dout.
enum GradNormPath {
    static func normsUseGram(t: Int, din: Int, dout: Int) -> Bool { 2 * t * t <= din * dout }

    static func dotsUseGram(_ a: [Int], _ b: [Int], din: Int, dout: Int) -> Bool {
        let n1 = Double(a.reduce(0, +)), n2 = Double(b.reduce(0, +)), dd = Double(din * dout)
        return n1 * n2 * Double(din + dout) <= (n1 + n2) * dd + Double(a.count * b.count) * dd
    }
}

/// One side of a call: example lengths, the row where the first example starts, widths.
struct Examples: Sendable {
    var lengths: [Int]
    var base: Int
    var m: Int { lengths.count }
    var rows: Int { lengths.reduce(0, +) }
    var maxT: Int { lengths.max() ?? 0 }
    /// off[M+1], off[0] = base.
    var off: [Int32] {
        var o = [Int32(base)]
        for t in lengths { o.append(o.last! + Int32(t)) }
        return o
    }
    /// Row range of example m.
    func range(_ m: Int) -> Range<Int> {
        let start = base + lengths[..<m].reduce(0, +)
        return start..<(start + lengths[m])
    }
}

struct NormShape: Sendable, CustomTestStringConvertible {
    var lengths: [Int], din: Int, dout: Int
    var testDescription: String {
        let paths = lengths.filter { $0 > 0 }.map { GradNormPath.normsUseGram(t: $0, din: din, dout: dout) ? "G" : "W" }
        return "T \(lengths) din \(din) dout \(dout) paths \(paths.joined())"
    }

    static let all: [NormShape] = [
        NormShape(lengths: [0, 1, 3, 7, 33], din: 64, dout: 64),  // all Gram
        NormShape(lengths: [0, 1, 3, 7, 33], din: 5, dout: 17),   // T <= 6 Gram, 7 and 33 materialised
        NormShape(lengths: [33, 7], din: 17, dout: 64),           // materialised, Gram
        NormShape(lengths: [1, 3], din: 1, dout: 1),              // all materialised
        NormShape(lengths: [7, 0, 1], din: 1, dout: 300),         // bias columns span two blocks
    ]
}

struct DotShape: Sendable, CustomTestStringConvertible {
    var left: [Int], right: [Int], din: Int, dout: Int
    var gram: Bool { GradNormPath.dotsUseGram(left, right, din: din, dout: dout) }
    var testDescription: String { "T1 \(left) T2 \(right) din \(din) dout \(dout) \(gram ? "Gram" : "materialised")" }

    static let all: [DotShape] = [
        DotShape(left: [0, 1, 3, 7, 33], right: [7, 1, 0], din: 64, dout: 64),  // Gram
        DotShape(left: [0, 1, 3, 7, 33], right: [33, 7], din: 5, dout: 17),     // materialised
        DotShape(left: [1], right: [1], din: 1, dout: 1),                       // Gram
        DotShape(left: [33, 30], right: [33, 30], din: 3, dout: 2),             // materialised
        DotShape(left: [3, 0, 7], right: [1, 17], din: 64, dout: 17),           // Gram
        DotShape(left: [3, 0, 7], right: [1, 17], din: 17, dout: 5),            // materialised
    ]
}

// MARK: - Operands

/// A token matrix of `rows` rows (row stride `ld`): random in `live` rows and the first `cols`
/// columns, NaN elsewhere.
func tokenMatrix(rows: Int, cols: Int, ld: Int, live: Range<Int>, using rng: inout SeededGenerator) -> [Float] {
    var x = [Float](repeating: .nan, count: max(rows * ld, 1))
    for r in live {
        for c in 0..<cols { x[r * ld + c] = Float.random(in: -1...1, using: &rng) }
    }
    return x
}

/// Inputs and output gradients of one linear layer for one side.
struct LinearSide {
    var ex: Examples
    var lda: Int, ldg: Int
    var a: [Float], g: [Float]

    init(_ lengths: [Int], base: Int, din: Int, dout: Int, padA: Int, padG: Int, using rng: inout SeededGenerator) {
        ex = Examples(lengths: lengths, base: base)
        lda = din + padA
        ldg = dout + padG
        let rows = base + ex.rows + 2, live = base..<(base + ex.rows)
        a = tokenMatrix(rows: rows, cols: din, ld: lda, live: live, using: &rng)
        g = tokenMatrix(rows: rows, cols: dout, ld: ldg, live: live, using: &rng)
    }

    /// W_m = G_m^T A_m [dout, din] of every example, in Double.
    func weightGrads(din: Int, dout: Int) -> [[Double]] {
        (0..<ex.m).map { Naive.weightGrad(a, lda: lda, g, ldg: ldg, rows: ex.range($0), din: din, dout: dout) }
    }

    /// sum_{t in m} G[t, :] of every example, in Double.
    func biasGrads(dout: Int) -> [[Double]] {
        (0..<ex.m).map { Naive.columnSums(g, ld: ldg, rows: ex.range($0), cols: dout) }
    }
}

// MARK: - Naive oracles

extension Naive {
    /// W[o, i] = sum_{t in rows} G[t, o] A[t, i].
    static func weightGrad(_ a: [Float], lda: Int, _ g: [Float], ldg: Int, rows: Range<Int>,
                           din: Int, dout: Int) -> [Double] {
        var w = [Double](repeating: 0, count: din * dout)
        for t in rows {
            for o in 0..<dout {
                let go = Double(g[t * ldg + o])
                for i in 0..<din { w[o * din + i] += go * Double(a[t * lda + i]) }
            }
        }
        return w
    }

    /// sum_{t in rows} x[t, :].
    static func columnSums(_ x: [Float], ld: Int, rows: Range<Int>, cols: Int) -> [Double] {
        var s = [Double](repeating: 0, count: cols)
        for t in rows {
            for c in 0..<cols { s[c] += Double(x[t * ld + c]) }
        }
        return s
    }

    static func dot(_ x: [Double], _ y: [Double]) -> Double {
        var s = 0.0
        for i in x.indices { s += x[i] * y[i] }
        return s
    }

    /// The dense embedding-table gradient of one example, as id -> summed row.
    static func tableGrad(_ d: [Float], ld: Int, ids: [Int32], rows: Range<Int>, cols: Int) -> [Int32: [Double]] {
        var table: [Int32: [Double]] = [:]
        for t in rows {
            var row = table[ids[t]] ?? [Double](repeating: 0, count: cols)
            for c in 0..<cols { row[c] += Double(d[t * ld + c]) }
            table[ids[t]] = row
        }
        return table
    }

    /// <E1, E2>_F of two sparse table gradients (ids missing from either side contribute 0).
    static func tableDot(_ e1: [Int32: [Double]], _ e2: [Int32: [Double]]) -> Double {
        var s = 0.0
        for (id, row) in e1 {
            if let other = e2[id] { s += dot(row, other) }
        }
        return s
    }
}

/// For every pair (i, j): want[i, j] = scale <x_i, y_j> and size[i, j] = scale ||x_i|| ||y_j||.
private func pairDots(_ x: [[Double]], _ y: [[Double]], scale: Double) -> (want: [Double], size: [Double]) {
    var want: [Double] = [], size: [Double] = []
    for xi in x {
        for yj in y {
            want.append(scale * Naive.dot(xi, yj))
            size.append(scale * (Naive.dot(xi, xi) * Naive.dot(yj, yj)).squareRoot())
        }
    }
    return (want, size)
}

/// Dot products compared relative to the size of their operands: |got - want| <= 1e-6 size +
/// 1e-4 |want|, i.e. 1e-4 relative unless the dot cancels to below 1% of ||x|| ||y|| (the float
/// operands only fix such a value to ~1e-7 ||x|| ||y||). Empty pairs (size 0) must give exactly 0.
private func expectDotsClose(_ name: String, _ got: [Float], _ want: [Double], size: [Double],
                             sourceLocation: SourceLocation = #_sourceLocation) {
    let g = got.indices.map { size[$0] > 0 ? Float(Double(got[$0]) / size[$0]) : got[$0] }
    let w = want.indices.map { size[$0] > 0 ? want[$0] / size[$0] : want[$0] }
    expectClose(name, g, w, Tolerance(atol: 1e-6, rtol: 1e-4), sourceLocation: sourceLocation)
}

/// Row-major [M1, ldo] accumulator: 0 in the M1 x M2 block, 42 in the padding columns.
private func paddedOutput(m1: Int, m2: Int, ldo: Int) -> [Float] {
    (0..<(m1 * ldo)).map { $0 % ldo < m2 ? 0 : 42 }
}

private func expectPaddingUntouched(_ name: String, _ out: [Float], m2: Int, ldo: Int,
                                    sourceLocation: SourceLocation = #_sourceLocation) {
    let bad = out.indices.contains { $0 % ldo >= m2 && out[$0] != 42 }
    #expect(!bad, "\(name) wrote into the padding columns of out", sourceLocation: sourceLocation)
}

private let relative1e4 = Tolerance(atol: 0, rtol: 1e-4)

// MARK: - Tests

@Suite("Per-example gradient norms and dot products")
struct GradNormTests {
    @Test func shapesCoverBothPaths() {
        let normPaths = NormShape.all.flatMap { s in
            s.lengths.filter { $0 > 0 }.map { GradNormPath.normsUseGram(t: $0, din: s.din, dout: s.dout) }
        }
        #expect(normPaths.contains(true) && normPaths.contains(false))
        let dotPaths = DotShape.all.map(\.gram)
        #expect(dotPaths.contains(true) && dotPaths.contains(false))
    }

    // MARK: Linear

    @Test(arguments: NormShape.all)
    func linearNorms(_ s: NormShape) {
        var rng = SeededGenerator(seed: 91)
        let side = LinearSide(s.lengths, base: 2, din: s.din, dout: s.dout, padA: 3, padG: 1, using: &rng)
        let scale: Float = 0.7
        let want = side.weightGrads(din: s.din, dout: s.dout).map { Double(scale) * Naive.dot($0, $0) }
        let off = side.ex.off, m = side.ex.m
        var work = [Float](repeating: .nan, count: ck_grad_norms_linear_work_size(Int32(side.ex.maxT), Int32(s.din), Int32(s.dout)))
        var fast = [Float](repeating: 0, count: m), ref = fast
        ck_grad_norms_linear(&fast, &work, side.a, Int32(side.lda), side.g, Int32(side.ldg), off, Int32(m),
                             Int32(s.din), Int32(s.dout), scale)
        ck_grad_norms_linear_ref(&ref, nil, side.a, Int32(side.lda), side.g, Int32(side.ldg), off, Int32(m),
                                 Int32(s.din), Int32(s.dout), scale)
        expectClose("grad_norms_linear vs naive", fast, want, relative1e4)
        expectClose("grad_norms_linear_ref vs naive", ref, want, relative1e4)
        expectClose("grad_norms_linear vs _ref", fast, ref, relative1e4)
        #expect(zip(s.lengths, fast).allSatisfy { $0 > 0 || $1 == 0 }, "an empty example got a non-zero norm")

        // a second call accumulates: every value doubles
        let once = fast
        ck_grad_norms_linear(&fast, &work, side.a, Int32(side.lda), side.g, Int32(side.ldg), off, Int32(m),
                             Int32(s.din), Int32(s.dout), scale)
        expectClose("grad_norms_linear accumulates", fast, once.map { 2 * Double($0) }, Tolerance(atol: 0, rtol: 1e-6))
    }

    @Test(arguments: NormShape.all)
    func biasNorms(_ s: NormShape) {
        var rng = SeededGenerator(seed: 92)
        let side = LinearSide(s.lengths, base: 3, din: 1, dout: s.dout, padA: 0, padG: 2, using: &rng)
        let scale: Float = 1.5
        let want = side.biasGrads(dout: s.dout).map { Double(scale) * Naive.dot($0, $0) }
        var out = [Float](repeating: 0, count: side.ex.m)
        ck_grad_norms_bias(&out, side.g, Int32(side.ldg), side.ex.off, Int32(side.ex.m), Int32(s.dout), scale)
        expectClose("grad_norms_bias vs naive", out, want, relative1e4)
    }

    @Test(arguments: DotShape.all)
    func linearDots(_ s: DotShape) {
        var rng = SeededGenerator(seed: 93)
        let l = LinearSide(s.left, base: 1, din: s.din, dout: s.dout, padA: 1, padG: 2, using: &rng)
        let r = LinearSide(s.right, base: 4, din: s.din, dout: s.dout, padA: 5, padG: 0, using: &rng)
        let scale: Float = 0.7
        let (want, size) = pairDots(l.weightGrads(din: s.din, dout: s.dout), r.weightGrads(din: s.din, dout: s.dout),
                                    scale: Double(scale))
        let (m1, m2) = (l.ex.m, r.ex.m), ldo = m2 + 2
        let workCount = ck_grad_dots_linear_work_size(Int32(l.ex.rows), Int32(m1), Int32(r.ex.rows), Int32(m2),
                                                      Int32(s.din), Int32(s.dout))
        var work = [Float](repeating: .nan, count: workCount)
        var fast = paddedOutput(m1: m1, m2: m2, ldo: ldo), ref = fast
        let (off1, off2) = (l.ex.off, r.ex.off)
        ck_grad_dots_linear(&fast, Int32(ldo), &work, l.a, Int32(l.lda), l.g, Int32(l.ldg), off1, Int32(m1),
                            r.a, Int32(r.lda), r.g, Int32(r.ldg), off2, Int32(m2), Int32(s.din), Int32(s.dout), scale)
        ck_grad_dots_linear_ref(&ref, Int32(ldo), nil, l.a, Int32(l.lda), l.g, Int32(l.ldg), off1, Int32(m1),
                                r.a, Int32(r.lda), r.g, Int32(r.ldg), off2, Int32(m2), Int32(s.din), Int32(s.dout), scale)
        let got = packed(fast, rows: m1, cols: m2, ld: ldo), gotRef = packed(ref, rows: m1, cols: m2, ld: ldo)
        expectDotsClose("grad_dots_linear vs naive", got, want, size: size)
        expectDotsClose("grad_dots_linear_ref vs naive", gotRef, want, size: size)
        expectDotsClose("grad_dots_linear vs _ref", got, gotRef.asDouble, size: size)
        expectPaddingUntouched("grad_dots_linear", fast, m2: m2, ldo: ldo)

        // accumulates (beta = 1 on the materialised path, += on the Gram path)
        ck_grad_dots_linear(&fast, Int32(ldo), &work, l.a, Int32(l.lda), l.g, Int32(l.ldg), off1, Int32(m1),
                            r.a, Int32(r.lda), r.g, Int32(r.ldg), off2, Int32(m2), Int32(s.din), Int32(s.dout), scale)
        expectDotsClose("grad_dots_linear accumulates", packed(fast, rows: m1, cols: m2, ld: ldo),
                        got.map { 2 * Double($0) }, size: size)
        expectPaddingUntouched("grad_dots_linear (second call)", fast, m2: m2, ldo: ldo)
    }

    @Test(arguments: DotShape.all)
    func biasDots(_ s: DotShape) {
        var rng = SeededGenerator(seed: 94)
        let l = LinearSide(s.left, base: 2, din: 1, dout: s.dout, padA: 0, padG: 3, using: &rng)
        let r = LinearSide(s.right, base: 1, din: 1, dout: s.dout, padA: 0, padG: 0, using: &rng)
        let scale: Float = -0.5
        let (want, size) = pairDots(l.biasGrads(dout: s.dout), r.biasGrads(dout: s.dout), scale: Double(scale))
        let (m1, m2) = (l.ex.m, r.ex.m), ldo = m2 + 1
        var work = [Float](repeating: .nan, count: (m1 + m2) * s.dout)
        var out = paddedOutput(m1: m1, m2: m2, ldo: ldo)
        ck_grad_dots_bias(&out, Int32(ldo), &work, l.g, Int32(l.ldg), l.ex.off, Int32(m1), r.g, Int32(r.ldg), r.ex.off,
                          Int32(m2), Int32(s.dout), scale)
        expectDotsClose("grad_dots_bias vs naive", packed(out, rows: m1, cols: m2, ld: ldo), want, size: size)
        expectPaddingUntouched("grad_dots_bias", out, m2: m2, ldo: ldo)
    }

    // MARK: LayerNorm

    @Test(arguments: [1, 7, 33, 300])
    func layerNormExampleGrads(c: Int) {
        let ex = Examples(lengths: [0, 1, 3, 7, 33], base: 3)
        let n = ex.base + ex.rows + 1  // every row is normalised; only the example rows are summed
        var rng = SeededGenerator(seed: 95)
        let inp = randomFloats(n * c, in: -2...3, using: &rng), dout = randomFloats(n * c, using: &rng)
        let w = randomFloats(c, using: &rng), b = randomFloats(c, using: &rng)
        var y = [Float](repeating: 0, count: n * c), mean = [Float](repeating: 0, count: n), rstd = mean
        ck_layernorm_forward(&y, &mean, &rstd, inp, w, b, Int32(n), Int32(c), 1e-5)
        var dw = [Float](repeating: .nan, count: ex.m * c), db = dw  // overwritten, never read
        ck_layernorm_example_grads(&dw, &db, dout, inp, mean, rstd, ex.off, Int32(ex.m), Int32(c))
        var wantW: [Double] = [], wantB: [Double] = []
        for m in 0..<ex.m {
            var sw = [Double](repeating: 0, count: c), sb = sw
            for t in ex.range(m) {
                for i in 0..<c {
                    let xhat = (Double(inp[t * c + i]) - Double(mean[t])) * Double(rstd[t])
                    sw[i] += Double(dout[t * c + i]) * xhat
                    sb[i] += Double(dout[t * c + i])
                }
            }
            wantW += sw
            wantB += sb
        }
        expectClose("layernorm_example_grads dweight", dw, wantW, .forward)
        expectClose("layernorm_example_grads dbias", db, wantB, .forward)
    }

    // MARK: Embedding

    /// vocab 1 makes every token the same id, 3 gives many repeats, 50 mostly distinct ids.
    @Test(arguments: [1, 3, 50], [1, 17, 64])
    func embedding(vocab: Int, c: Int) {
        var rng = SeededGenerator(seed: 96)
        let e1 = Examples(lengths: [0, 1, 3, 7, 33], base: 2), e2 = Examples(lengths: [7, 0, 33], base: 1)
        let (ld1, ld2) = (c + 2, c)
        let n1 = e1.base + e1.rows + 1, n2 = e2.base + e2.rows
        let d1 = tokenMatrix(rows: n1, cols: c, ld: ld1, live: e1.base..<(e1.base + e1.rows), using: &rng)
        let d2 = tokenMatrix(rows: n2, cols: c, ld: ld2, live: e2.base..<(e2.base + e2.rows), using: &rng)
        let ids1 = (0..<n1).map { _ in Int32.random(in: 0..<Int32(vocab), using: &rng) }
        let ids2 = (0..<n2).map { _ in Int32.random(in: 0..<Int32(vocab), using: &rng) }
        let t1 = (0..<e1.m).map { Naive.tableGrad(d1, ld: ld1, ids: ids1, rows: e1.range($0), cols: c) }
        let t2 = (0..<e2.m).map { Naive.tableGrad(d2, ld: ld2, ids: ids2, rows: e2.range($0), cols: c) }
        let scale: Float = 1.3

        var work = [Float](repeating: .nan, count: e1.maxT * c)
        var norms = [Float](repeating: 0, count: e1.m)
        ck_grad_norms_embedding(&norms, &work, d1, Int32(ld1), ids1, e1.off, Int32(e1.m), Int32(c), scale)
        expectClose("grad_norms_embedding vs naive", norms, t1.map { Double(scale) * Naive.tableDot($0, $0) }, relative1e4)

        let ldo = e2.m + 1
        var out = paddedOutput(m1: e1.m, m2: e2.m, ldo: ldo)
        let rows1 = e1.off.last! - e1.off[0], rows2 = e2.off.last! - e2.off[0]
        var dotsWork = [Float](repeating: .nan, count: ck_grad_dots_embedding_work_size(rows1, rows2, Int32(c)))
        var iwork = [Int32](repeating: -7, count: ck_grad_dots_embedding_iwork_size(rows1, Int32(e1.m), rows2, Int32(e2.m)))
        ck_grad_dots_embedding(&out, Int32(ldo), &dotsWork, &iwork, d1, Int32(ld1), ids1, e1.off, Int32(e1.m),
                               d2, Int32(ld2), ids2, e2.off, Int32(e2.m), Int32(c), scale)
        var want: [Double] = [], size: [Double] = []
        for x in t1 {
            for y in t2 {
                want.append(Double(scale) * Naive.tableDot(x, y))
                size.append(Double(scale) * (Naive.tableDot(x, x) * Naive.tableDot(y, y)).squareRoot())
            }
        }
        expectDotsClose("grad_dots_embedding vs naive", packed(out, rows: e1.m, cols: e2.m, ld: ldo), want, size: size)
        expectPaddingUntouched("grad_dots_embedding", out, m2: e2.m, ldo: ldo)
    }

    // MARK: VoG

    /// K Welford steps against the two-pass mean and sum of squared deviations in Double, then the
    /// summed population standard deviation.
    @Test(arguments: [1, 7, 33, 1000], [1, 2, 5])
    func vog(n: Int, k: Int) {
        var rng = SeededGenerator(seed: 97)
        let samples = (0..<k).map { _ in randomFloats(n, in: -1.7...2.3, using: &rng) }
        var mean = [Float](repeating: 0, count: n), m2 = mean
        for (i, g) in samples.enumerated() { ck_vog_accumulate(&mean, &m2, g, n, Int32(i + 1)) }
        var wantMean: [Double] = [], wantM2: [Double] = [], wantSum = 0.0
        for i in 0..<n {
            let mu = samples.reduce(0.0) { $0 + Double($1[i]) } / Double(k)
            let ss = samples.reduce(0.0) { $0 + (Double($1[i]) - mu) * (Double($1[i]) - mu) }
            wantMean.append(mu)
            wantM2.append(ss)
            wantSum += (ss / Double(k)).squareRoot()
        }
        expectClose("vog mean", mean, wantMean, .forward)
        expectClose("vog m2", m2, wantM2, .forward)
        let sum = ck_vog_sum_std(m2, n, Int32(k))
        #expect(abs(sum - wantSum) <= 1e-4 * wantSum + 1e-6, "vog_sum_std \(sum), expected \(wantSum)")
        if k == 1 { #expect(m2.allSatisfy { $0 == 0 } && sum == 0, "one sample must have zero variance") }
    }

    /// Rounding can leave m2 slightly negative: it counts as 0, never NaN.
    @Test func vogSumStdClampsNegativeM2() {
        let m2: [Float] = [-1e-9, 4, 0, -0.0]
        #expect(ck_vog_sum_std(m2, m2.count, 4) == 1)
    }
}
