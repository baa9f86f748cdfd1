import CKernels
import Foundation
import Testing

// The Llama family's kernels (RMSNorm, rotary embeddings, SwiGLU): forward against a naive Double
// forward and the `_ref` twin, backward against central finite differences of the Double forward with
// L = sum(out * R). Awkward sizes; backward buffers start non-zero where the kernel accumulates.

enum NaiveLlama {
    static func rmsnorm(_ x: [Double], _ w: [Double], n: Int, c: Int, eps: Double) -> [Double] {
        var out = [Double](repeating: 0, count: n * c)
        for r in 0..<n {
            let ms = (0..<c).reduce(0.0) { $0 + x[r * c + $1] * x[r * c + $1] } / Double(c)
            for j in 0..<c { out[r * c + j] = w[j] * x[r * c + j] / (ms + eps).squareRoot() }
        }
        return out
    }

    /// Rotate-half RoPE of `rows` rows holding `nh` heads of `hs` dims, row r at position r % t.
    static func rope(_ x: [Double], rows: Int, t: Int, nh: Int, hs: Int, theta: Double) -> [Double] {
        var out = x
        let h = hs / 2
        for r in 0..<rows {
            for head in 0..<nh {
                for d in 0..<hs {
                    let j = d % h
                    let a = Double(Float(Double(r % t)) * Float(1 / pow(theta, Double(2 * j) / Double(hs))))
                    let v = x[r * nh * hs + head * hs + d]
                    let rot = d < h ? -x[r * nh * hs + head * hs + d + h] : x[r * nh * hs + head * hs + d - h]
                    out[r * nh * hs + head * hs + d] = v * cos(a) + rot * sin(a)
                }
            }
        }
        return out
    }

    static func swiglu(_ g: [Double], _ u: [Double]) -> [Double] { zip(g, u).map { $0 / (1 + exp(-$0)) * $1 } }
    /// Gemma's gelu_pytorch_tanh(gate) * up.
    static func geglu(_ g: [Double], _ u: [Double]) -> [Double] {
        zip(g, u).map { x, u in 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) * u }
    }
}

@Suite("Llama kernels")
struct LlamaKernelTests {
    @Test(arguments: [(1, 1), (3, 7), (5, 33), (2, 64)])
    func rmsnorm(_ shape: (Int, Int)) {
        let (N, C) = shape
        var rng = SeededGenerator(seed: 5)
        let x = randomFloats(N * C, in: -2...2, using: &rng), w = randomFloats(C, using: &rng), dout = randomFloats(N * C, using: &rng)
        let eps: Float = 1e-5
        var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
        ck_rmsnorm_forward(&out, &rstd, x, w, Int32(N), Int32(C), eps)
        expectClose("rmsnorm out", out, NaiveLlama.rmsnorm(x.asDouble, w.asDouble, n: N, c: C, eps: Double(eps)), .forward)
        var outRef = [Float](repeating: 0, count: N * C), rstdRef = [Float](repeating: 0, count: N)
        ck_rmsnorm_forward_ref(&outRef, &rstdRef, x, w, Int32(N), Int32(C), eps)
        expectClose("rmsnorm out vs _ref", out, outRef, .twin)

        let dx0 = randomFloats(N * C, using: &rng), dw0 = randomFloats(C, using: &rng)
        var dx = dx0, dw = dw0
        ck_rmsnorm_backward(&dx, &dw, dout, x, w, rstd, Int32(N), Int32(C), 1)
        let r = dout.asDouble
        let gx = centralDifferences(at: x.asDouble) { weightedSum(NaiveLlama.rmsnorm($0, w.asDouble, n: N, c: C, eps: Double(eps)), r) }
        let gw = centralDifferences(at: w.asDouble) { weightedSum(NaiveLlama.rmsnorm(x.asDouble, $0, n: N, c: C, eps: Double(eps)), r) }
        expectClose("rmsnorm dinp", increments(dx, dx0), gx, .backward)
        expectClose("rmsnorm dweight", increments(dw, dw0), gw, .backward)
        var dxSet = dx0
        ck_rmsnorm_backward(&dxSet, nil, dout, x, w, rstd, Int32(N), Int32(C), 0)
        expectClose("rmsnorm dinp written", dxSet, gx, .backward)
        var dxRef = dx0, dwRef = dw0
        ck_rmsnorm_backward_ref(&dxRef, &dwRef, dout, x, w, rstd, Int32(N), Int32(C), 1)
        expectClose("rmsnorm dinp vs _ref", dx, dxRef, .twin)
        expectClose("rmsnorm dweight vs _ref", dw, dwRef, .twin)
    }

    @Test(arguments: [(1, 1, 1, 2), (2, 5, 3, 8), (3, 7, 2, 64)])
    func rope(_ shape: (Int, Int, Int, Int)) {
        let (B, T, NH, HS) = shape
        let rows = B * T, ld = NH * HS + 3, theta: Float = 10000
        var rng = SeededGenerator(seed: 9)
        let x = randomFloats(rows * ld, using: &rng), dout = randomFloats(rows * ld, using: &rng)
        var cosv = [Float](repeating: 0, count: T * HS / 2), sinv = cosv
        ck_rope_table(&cosv, &sinv, Int32(T), Int32(HS), theta)
        var y = x
        ck_rope_apply(&y, Int32(ld), cosv, sinv, Int32(rows), Int32(T), Int32(NH), Int32(HS), 0)
        let xd = packed(x, rows: rows, cols: NH * HS, ld: ld).asDouble
        let naive = NaiveLlama.rope(xd, rows: rows, t: T, nh: NH, hs: HS, theta: Double(theta))
        expectClose("rope out", packed(y, rows: rows, cols: NH * HS, ld: ld), naive, .forward)
        #expect((0..<rows).allSatisfy { r in (NH * HS..<ld).allSatisfy { y[r * ld + $0] == x[r * ld + $0] } }, "rope wrote into the row padding")
        var yRef = x
        ck_rope_apply_ref(&yRef, Int32(ld), cosv, sinv, Int32(rows), Int32(T), Int32(NH), Int32(HS), 0)
        expectClose("rope out vs _ref", y, yRef, .twin)
        // The backward is the inverse rotation applied to dout.
        var g = dout
        ck_rope_apply(&g, Int32(ld), cosv, sinv, Int32(rows), Int32(T), Int32(NH), Int32(HS), 1)
        let r = packed(dout, rows: rows, cols: NH * HS, ld: ld).asDouble
        let fd = centralDifferences(at: xd) { weightedSum(NaiveLlama.rope($0, rows: rows, t: T, nh: NH, hs: HS, theta: Double(theta)), r) }
        expectClose("rope backward", packed(g, rows: rows, cols: NH * HS, ld: ld), fd, .backward)
        var back = y
        ck_rope_apply(&back, Int32(ld), cosv, sinv, Int32(rows), Int32(T), Int32(NH), Int32(HS), 1)
        expectClose("rope inverse", back, x, Tolerance(atol: 1e-5, rtol: 1e-5))
    }

    @Test(arguments: [1, 7, 100])
    func swiglu(_ n: Int) {
        var rng = SeededGenerator(seed: 3)
        let g = randomFloats(n, in: -6...6, using: &rng), u = randomFloats(n, in: -2...2, using: &rng), dout = randomFloats(n, using: &rng)
        var out = [Float](repeating: 0, count: n), outRef = out
        ck_swiglu_forward(&out, g, u, n)
        ck_swiglu_forward_ref(&outRef, g, u, n)
        expectClose("swiglu out", out, NaiveLlama.swiglu(g.asDouble, u.asDouble), .forward)
        expectClose("swiglu out vs _ref", out, outRef, .twin)
        var dg = [Float](repeating: 9, count: n), du = dg
        ck_swiglu_backward(&dg, &du, dout, g, u, n)
        let r = dout.asDouble
        expectClose("swiglu dgate", dg, centralDifferences(at: g.asDouble) { weightedSum(NaiveLlama.swiglu($0, u.asDouble), r) }, .backward)
        expectClose("swiglu dup", du, centralDifferences(at: u.asDouble) { weightedSum(NaiveLlama.swiglu(g.asDouble, $0), r) }, .backward)
    }

    @Test(arguments: [1, 7, 100])
    func geglu(_ n: Int) {
        var rng = SeededGenerator(seed: 4)
        let g = randomFloats(n, in: -6...6, using: &rng), u = randomFloats(n, in: -2...2, using: &rng), dout = randomFloats(n, using: &rng)
        var out = [Float](repeating: 0, count: n), outRef = out
        ck_geglu_forward(&out, g, u, n)
        ck_geglu_forward_ref(&outRef, g, u, n)
        expectClose("geglu out", out, NaiveLlama.geglu(g.asDouble, u.asDouble), .forward)
        expectClose("geglu out vs _ref", out, outRef, .twin)
        var dg = [Float](repeating: 9, count: n), du = dg, dgRef = dg, duRef = dg
        ck_geglu_backward(&dg, &du, dout, g, u, n)
        ck_geglu_backward_ref(&dgRef, &duRef, dout, g, u, n)
        let r = dout.asDouble
        expectClose("geglu dgate", dg, centralDifferences(at: g.asDouble) { weightedSum(NaiveLlama.geglu($0, u.asDouble), r) }, .backward)
        expectClose("geglu dup", du, centralDifferences(at: u.asDouble) { weightedSum(NaiveLlama.geglu(g.asDouble, $0), r) }, .backward)
        expectClose("geglu dgate vs _ref", dg, dgRef, .twin)
        expectClose("geglu dup vs _ref", du, duRef, .twin)
    }

    /// Far tails (exp overflowing or underflowing inside the vectorised sigmoid): finite, as the double forms.
    @Test func gatedActivationsAtTheTails() {
        let g: [Float] = [-200, -100, -89, -30, -8, -1e-6, 0, 1e-6, 8, 30, 89, 100, 200], u = [Float](repeating: 1.5, count: 13)
        let n = g.count
        var out = [Float](repeating: 0, count: n), dg = out, du = out
        let dout = [Float](repeating: 1, count: n)
        for (name, f, b, naive) in [("swiglu", ck_swiglu_forward, ck_swiglu_backward, NaiveLlama.swiglu),
                                    ("geglu", ck_geglu_forward, ck_geglu_backward, NaiveLlama.geglu)] {
            f(&out, g, u, n)
            b(&dg, &du, dout, g, u, n)
            #expect(out.allSatisfy(\.isFinite) && dg.allSatisfy(\.isFinite) && du.allSatisfy(\.isFinite), "\(name): \(out) \(dg) \(du)")
            expectClose("\(name) tails", out, naive(g.asDouble, u.asDouble), .forward)
            expectClose("\(name) tails dup", du, naive(g.asDouble, [Double](repeating: 1, count: n)), .forward)
        }
    }
}
