import CKernels
import WinnowCore
import WinnowData

/// A PyTorch `nn.Linear`: weight [out, in] and bias [out], addressed by index in a `ParameterStore`.
/// Forward: out[N, out] = inp[N, in] @ W^T + b.  Backward: dinp += dout @ W, dW += dout^T inp, db += sum dout.
package struct Linear: Sendable {
    let weight: Int
    let bias: Int
    let inDim: Int
    let outDim: Int

    init(_ store: inout ParameterStore, _ name: String, in inDim: Int, out outDim: Int) {
        weight = store.add("\(name).weight", Tensor(shape: [outDim, inDim]))
        bias = store.add("\(name).bias", Tensor(shape: [outDim]))
        self.inDim = inDim
        self.outDim = outDim
    }

    /// out (row stride ldOut) = inp (row stride ldInp) @ W^T + b over N rows.
    func forward(_ p: ParameterStore, out: UnsafeMutablePointer<Float>, ldOut: Int,
                 inp: UnsafePointer<Float>, ldInp: Int, rows n: Int) {
        product(p, out: out, ldOut: ldOut, inp: inp, ldInp: ldInp, rows: n)
        let b = p[bias].ptr, oc = outDim
        Parallel.rows(n, width: oc) { _, r in
            ck_add_bias_rows(out + r.lowerBound * ldOut, Int32(ldOut), b, Int32(r.count), Int32(oc))
        }
    }

    /// out = inp @ W^T without the bias (a GEMM on OpenBLAS's threads); an epilogue adds the bias.
    func product(_ p: ParameterStore, out: UnsafeMutablePointer<Float>, ldOut: Int,
                 inp: UnsafePointer<Float>, ldInp: Int, rows n: Int) {
        ck_linear_forward(out, Int32(ldOut), inp, Int32(ldInp), p[weight].ptr, nil, Int32(n), Int32(inDim), Int32(outDim))
    }

    /// Accumulates dinp (nullable; written instead with `accumulate` false), and, when `grads` is
    /// given, dW and db.
    func backward(_ p: ParameterStore, grads: inout ParameterStore?, dinp: UnsafeMutablePointer<Float>?, ldDinp: Int,
                  dout: UnsafePointer<Float>, ldDout: Int, inp: UnsafePointer<Float>, ldInp: Int, rows n: Int,
                  accumulate: Bool = true) {
        let dw = grads != nil ? grads![weight].mptr : nil
        var dinp = dinp
        if let d = dinp, !accumulate {
            ck_gemm(d, Int32(ldDinp), dout, Int32(ldDout), p[weight].ptr, Int32(inDim), Int32(n), Int32(inDim), Int32(outDim),
                    Int32(CK_TRANS_N), Int32(CK_TRANS_N), 1, 0)
            dinp = nil
        }
        ck_linear_backward(dinp, Int32(ldDinp), dw, nil, dout, Int32(ldDout), inp, Int32(ldInp), p[weight].ptr,
                           Int32(n), Int32(inDim), Int32(outDim))
        if grads != nil { Profile.section("bwd bias sums") { Linear.columnSums(into: grads![bias].mptr, dout, ld: ldDout, rows: n, cols: outDim) } }
    }

    /// dst[c] += sum over rows of G[:, c]: fixed blocks of `Parallel.reductionRows` rows read whole
    /// (streaming) across cores, each summed in double in row order, then the blocks added in order,
    /// so the result does not depend on the split or the core count.
    static func columnSums(into dst: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, ld: Int, rows n: Int, cols: Int) {
        let R = Parallel.reductionRows, blocks = (n + R - 1) / R
        guard blocks > 0 else { return }
        var partial = [Double](repeating: 0, count: blocks * cols)
        partial.withUnsafeMutableBufferPointer { pp in
            let part = pp.baseAddress!
            Parallel.rows(blocks, width: R * cols) { _, r in
                for b in r {
                    ck_column_sums_partial(part + b * cols, g + b * R * ld, Int32(ld), Int32(min(R, n - b * R)), Int32(cols))
                }
            }
            ck_column_partials_add(dst, part, Int32(blocks), Int32(cols))
        }
    }
}

/// A LayerNorm over the last dimension with weight and bias (Hugging Face names `.weight/.bias`).
package struct LayerNorm: Sendable {
    let weight: Int
    let bias: Int
    let dim: Int
    let eps: Float

    init(_ store: inout ParameterStore, _ name: String, dim: Int, eps: Float) {
        weight = store.add("\(name).weight", Tensor(shape: [dim], repeating: 1))
        bias = store.add("\(name).bias", Tensor(shape: [dim]))
        self.dim = dim
        self.eps = eps
    }

    func forward(_ p: ParameterStore, out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                 rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, rows n: Int) {
        let w = p[weight].ptr, b = p[bias].ptr, C = dim, e = eps
        Parallel.rows(n, width: C) { _, r in
            let o = r.lowerBound
            ck_layernorm_forward(out + o * C, mean + o, rstd + o, inp + o * C, w, b, Int32(r.count), Int32(C), e)
        }
    }

    /// dinp accumulates (or is written, with `accumulate` false); dweight/dbias accumulate when `grads`
    /// is given. Fixed blocks of `Parallel.reductionRows` rows across cores: each block's input gradient,
    /// then its parameter sums while the rows are in cache (double, row order); the blocks' sums are
    /// added in block order, so nothing depends on the split or the core count.
    func backward(_ p: ParameterStore, grads: inout ParameterStore?, dinp: UnsafeMutablePointer<Float>,
                  dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                  rstd: UnsafePointer<Float>, rows n: Int, accumulate: Bool = true) {
        let w = p[weight].ptr, C = dim
        let R = Parallel.reductionRows, blocks = (n + R - 1) / R
        guard blocks > 0 else { return }
        var partial = [Double](repeating: 0, count: grads != nil ? 2 * blocks * C : 0)
        partial.withUnsafeMutableBufferPointer { pp in
            // (an empty array may still have a base address: the pointers follow `grads` itself)
            let pw = grads != nil ? pp.baseAddress : nil, pb = pw.map { $0 + blocks * C }
            Parallel.rows(blocks, width: R * C) { _, r in
                for b in r {
                    let o = b * R, rows = Int32(min(R, n - o))
                    if accumulate {
                        ck_layernorm_backward(dinp + o * C, nil, nil, dout + o * C, inp + o * C, w, mean + o, rstd + o, rows, Int32(C))
                    } else {
                        ck_layernorm_backward_input_set(dinp + o * C, dout + o * C, inp + o * C, w, mean + o, rstd + o, rows, Int32(C))
                    }
                    if let pw, let pb {
                        ck_layernorm_param_partial(pw + b * C, pb + b * C, dout + o * C, inp + o * C, Int32(C), mean + o, rstd + o, rows, Int32(C))
                    }
                }
            }
            if let pw, let pb {
                ck_column_partials_add(grads![weight].mptr, pw, Int32(blocks), Int32(C))
                ck_column_partials_add(grads![bias].mptr, pb, Int32(blocks), Int32(C))
            }
        }
    }
}

/// Dropout with a counter-based mask: the backward recomputes the mask from (seed, offset).
package enum Dropout {
    static func forward(_ x: UnsafeMutablePointer<Float>, count: Int, p: Float, seed: UInt64) {
        guard p > 0 else { return }
        Parallel.elements(count) { o, n in ck_dropout_forward(x + o, x + o, n, p, seed, UInt64(o)) }
    }

    /// dinp += mask * dout / (1-p); with p == 0 a plain accumulate. With `accumulate` false dinp is written.
    static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, count: Int, p: Float, seed: UInt64,
                         accumulate: Bool = true) {
        Parallel.elements(count) { o, n in
            if accumulate {
                ck_dropout_backward(dinp + o, dout + o, n, p, seed, UInt64(o))
            } else {
                ck_dropout_backward_set(dinp + o, dout + o, n, p, seed, UInt64(o))
            }
        }
    }
}

/// Elementwise kernels split across cores (results identical to one call over the whole array).
package enum Elementwise {
    static func add(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        Parallel.elements(count) { o, n in ck_add(out + o, a + o, b + o, n) }
    }

    /// dinp = dout * gelu'(inp) (written, not accumulated).
    static func geluBackwardSet(_ dinp: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        Parallel.elements(count) { o, n in ck_gelu_backward_set(dinp + o, dout + o, inp + o, n) }
    }

    /// dinp = dout * deriv.
    static func multiply(_ dinp: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ deriv: UnsafePointer<Float>, count: Int) {
        Parallel.elements(count) { o, n in ck_mul(dinp + o, dout + o, deriv + o, n) }
    }

    static func zero(_ x: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.elements(count) { o, n in (x + o).update(repeating: 0, count: n) }
    }

    static func copy(_ dst: UnsafeMutablePointer<Float>, from src: UnsafePointer<Float>, count: Int) {
        Parallel.elements(count) { o, n in (dst + o).update(from: src + o, count: n) }
    }
}
