import CKernels
import Testing

/// The fused epilogues, the writing (`_set`) variants, the column-block reductions and the head-range
/// attention equal the compositions of the kernels they replace, which the other suites check against
/// finite differences and plain-loop twins. Equalities are exact where the arithmetic is the same.
@Suite("Fused and split kernels")
struct FusedKernelTests {
    @Test(arguments: [(1, 1), (7, 33), (64, 130)])
    func biasGeluEqualsBiasThenGelu(rows: Int, cols: Int) {
        var rng = SeededGenerator(seed: 11)
        let x = randomFloats(rows * cols, in: -4...4, using: &rng), bias = randomFloats(cols, using: &rng)
        var pre = x, out = [Float](repeating: 0, count: x.count)
        ck_bias_gelu_forward(&pre, &out, bias, Int32(rows), Int32(cols))
        var want = x
        for r in 0..<rows { for c in 0..<cols { want[r * cols + c] += bias[c] } }
        var wantOut = [Float](repeating: 0, count: x.count)
        ck_gelu_forward(&wantOut, want, want.count)
        #expect(pre == want)
        #expect(out == wantOut)
        // The inference form: the same output, its input left as it was.
        var outInfer = [Float](repeating: 0, count: x.count)
        ck_bias_gelu_forward_infer(x, &outInfer, bias, Int32(rows), Int32(cols))
        #expect(outInfer == wantOut)
    }

    @Test func trainingGeluKeepsTheDerivative() {
        let rows = 9, cols = 70
        var rng = SeededGenerator(seed: 17)
        let x = randomFloats(rows * cols, in: -6...6, using: &rng), bias = randomFloats(cols, using: &rng)
        var pre = x, out = [Float](repeating: 0, count: x.count)
        ck_bias_gelu_forward_train(&pre, &out, bias, Int32(rows), Int32(cols))
        var xb = x, wantOut = [Float](repeating: 0, count: x.count)
        ck_bias_gelu_forward(&xb, &wantOut, bias, Int32(rows), Int32(cols))
        #expect(out == wantOut)
        // The kept derivative is what the backward computes from x (dout = 1) ...
        var deriv = [Float](repeating: 0, count: x.count)
        ck_gelu_backward_set(&deriv, [Float](repeating: 1, count: x.count), xb, x.count)
        #expect(pre == deriv)
        // ... and the multiply applies it.
        let dout = randomFloats(x.count, using: &rng)
        var d1 = [Float](repeating: 0, count: x.count), d2 = d1
        ck_mul(&d1, dout, pre, x.count)
        ck_gelu_backward_set(&d2, dout, xb, x.count)
        expectClose("GELU backward from the kept derivative", d1, d2, .twin)
    }

    @Test(arguments: [Float(0), 0.1, 0.5])
    func biasDropoutResidualEqualsItsParts(p: Float) {
        let rows = 37, cols = 24, seed: UInt64 = 99
        var rng = SeededGenerator(seed: 12)
        let y = randomFloats(rows * cols, using: &rng), res = randomFloats(rows * cols, using: &rng), bias = randomFloats(cols, using: &rng)
        var out = [Float](repeating: 0, count: y.count)
        ck_bias_dropout_residual(&out, res, y, bias, Int32(rows), Int32(cols), p, seed, 0)
        var yb = y
        for r in 0..<rows { for c in 0..<cols { yb[r * cols + c] += bias[c] } }
        ck_dropout_forward(&yb, yb, yb.count, p, seed, 0)
        let want = zip(res, yb).map { $0 + $1 }
        #expect(out == want)
        // Two row ranges with their flat offsets give the same masks as one call.
        var split = [Float](repeating: 0, count: y.count)
        let r0 = 15
        split.withUnsafeMutableBufferPointer { o in
            res.withUnsafeBufferPointer { rs in
                y.withUnsafeBufferPointer { ys in
                    ck_bias_dropout_residual(o.baseAddress!, rs.baseAddress!, ys.baseAddress!, bias, Int32(r0), Int32(cols), p, seed, 0)
                    let off = r0 * cols
                    ck_bias_dropout_residual(o.baseAddress! + off, rs.baseAddress! + off, ys.baseAddress! + off, bias,
                                             Int32(rows - r0), Int32(cols), p, seed, UInt64(off))
                }
            }
        }
        #expect(split == out)
    }

    @Test func addBiasRowsRespectsTheRowStride() {
        let rows = 5, cols = 3, ld = 7
        var x = [Float](repeating: 1, count: rows * ld)
        ck_add_bias_rows(&x, Int32(ld), [1, 2, 3], Int32(rows), Int32(cols))
        for r in 0..<rows {
            #expect(Array(x[(r * ld)..<(r * ld + cols)]) == [2, 3, 4])
            #expect(x[(r * ld + cols)..<(r * ld + ld)].allSatisfy { $0 == 1 })
        }
    }

    @Test(arguments: [Float(0), 0.2])
    func writingVariantsEqualAccumulatingIntoZeros(p: Float) {
        let n = 1000, C = 50, N = 20
        var rng = SeededGenerator(seed: 13)
        let dout = randomFloats(n, using: &rng), x = randomFloats(n, in: -3...3, using: &rng)
        var acc = [Float](repeating: 0, count: n), set = [Float](repeating: 7, count: n)
        ck_gelu_backward(&acc, dout, x, n)
        ck_gelu_backward_set(&set, dout, x, n)
        #expect(set == acc)
        acc = [Float](repeating: 0, count: n); set = [Float](repeating: 7, count: n)
        ck_dropout_backward(&acc, dout, n, p, 5, 3)
        ck_dropout_backward_set(&set, dout, n, p, 5, 3)
        #expect(set == acc)
        // LayerNorm input gradient
        let w = randomFloats(C, using: &rng), b = randomFloats(C, using: &rng)
        var y = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
        let inp = Array(x.prefix(N * C))
        ck_layernorm_forward(&y, &mean, &rstd, inp, w, b, Int32(N), Int32(C), 1e-12)
        acc = [Float](repeating: 0, count: N * C); set = [Float](repeating: 7, count: N * C)
        ck_layernorm_backward(&acc, nil, nil, dout, inp, w, mean, rstd, Int32(N), Int32(C))
        ck_layernorm_backward_input_set(&set, dout, inp, w, mean, rstd, Int32(N), Int32(C))
        #expect(set == acc)
    }

    @Test func columnBlocksEqualTheWholeReduction() {
        let N = 300, C = 200
        var rng = SeededGenerator(seed: 14)
        let dout = randomFloats(N * C, using: &rng), inp = randomFloats(N * C, using: &rng)
        let w = randomFloats(C, using: &rng), b = randomFloats(C, using: &rng)
        var y = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
        ck_layernorm_forward(&y, &mean, &rstd, inp, w, b, Int32(N), Int32(C), 1e-12)
        var dinp = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C), db = dw
        ck_layernorm_backward(&dinp, &dw, &db, dout, inp, w, mean, rstd, Int32(N), Int32(C))
        var dw2 = [Float](repeating: 0, count: C), db2 = dw2
        for c0 in stride(from: 0, to: C, by: 64) {
            let nb = min(64, C - c0)
            dw2.withUnsafeMutableBufferPointer { wp in db2.withUnsafeMutableBufferPointer { bp in
                dout.withUnsafeBufferPointer { dp in inp.withUnsafeBufferPointer { ip in
                    ck_layernorm_param_grads(wp.baseAddress! + c0, bp.baseAddress! + c0, dp.baseAddress! + c0, ip.baseAddress! + c0,
                                             Int32(C), mean, rstd, Int32(N), Int32(nb))
                } }
            } }
        }
        #expect(dw2 == dw)
        #expect(db2 == db)
        // Linear bias gradient
        var dbias = [Float](repeating: 0, count: C), blocks = dbias
        ck_linear_backward(nil, 0, nil, &dbias, dout, Int32(C), inp, Int32(C), w, Int32(N), Int32(C), Int32(C))
        for c0 in stride(from: 0, to: C, by: 64) {
            blocks.withUnsafeMutableBufferPointer { o in dout.withUnsafeBufferPointer { d in
                ck_column_sums_add(o.baseAddress! + c0, d.baseAddress! + c0, Int32(C), Int32(N), Int32(min(64, C - c0)))
            } }
        }
        #expect(blocks == dbias)
    }

    /// Row-block partial sums (fixed blocks, added in block order) against a double reference, for the
    /// bias and the LayerNorm parameter gradients; a last block shorter than the others included.
    @Test(arguments: [(300, 200, 64), (64, 33, 64), (1000, 17, 7)])
    func rowBlockPartialsEqualTheDoubleSums(N: Int, C: Int, R: Int) {
        var rng = SeededGenerator(seed: 16)
        let dout = randomFloats(N * C, using: &rng), inp = randomFloats(N * C, in: -3...3, using: &rng)
        let w = randomFloats(C, using: &rng), b = randomFloats(C, using: &rng)
        var y = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
        ck_layernorm_forward(&y, &mean, &rstd, inp, w, b, Int32(N), Int32(C), 1e-12)
        let blocks = (N + R - 1) / R
        var pw = [Double](repeating: .nan, count: blocks * C), pb = pw, pc = pw
        for blk in 0..<blocks {
            let o = blk * R, rows = Int32(min(R, N - o))
            pc.withUnsafeMutableBufferPointer { p in dout.withUnsafeBufferPointer { d in
                ck_column_sums_partial(p.baseAddress! + blk * C, d.baseAddress! + o * C, Int32(C), rows, Int32(C))
            } }
            pw.withUnsafeMutableBufferPointer { a in pb.withUnsafeMutableBufferPointer { bb in
                dout.withUnsafeBufferPointer { d in inp.withUnsafeBufferPointer { x in mean.withUnsafeBufferPointer { m in rstd.withUnsafeBufferPointer { r in
                    ck_layernorm_param_partial(a.baseAddress! + blk * C, bb.baseAddress! + blk * C, d.baseAddress! + o * C,
                                               x.baseAddress! + o * C, Int32(C), m.baseAddress! + o, r.baseAddress! + o, rows, Int32(C))
                } } } }
            } }
        }
        var bias = [Float](repeating: 0.5, count: C), dw = bias, db = bias
        ck_column_partials_add(&bias, pc, Int32(blocks), Int32(C))
        ck_column_partials_add(&dw, pw, Int32(blocks), Int32(C))
        ck_column_partials_add(&db, pb, Int32(blocks), Int32(C))
        for c in 0..<C {
            var sb = 0.0, sw = 0.0
            for n in 0..<N {
                let d = Double(dout[n * C + c])
                sb += d
                sw += d * (Double(inp[n * C + c]) - Double(mean[n])) * Double(rstd[n])
            }
            #expect(abs(Double(bias[c]) - (0.5 + sb)) <= 1e-6 * max(1, abs(sb)), "bias column \(c)")
            #expect(abs(Double(db[c]) - (0.5 + sb)) <= 1e-6 * max(1, abs(sb)), "LayerNorm bias column \(c)")
            #expect(abs(Double(dw[c]) - (0.5 + sw)) <= 1e-5 * max(1, abs(sw)), "LayerNorm weight column \(c)")
        }
    }

    @Test(arguments: [(5, 3), (40, 64), (128, 17)])
    func syrkUpperEqualsTheGemm(n: Int, k: Int) {
        var rng = SeededGenerator(seed: 15)
        let a = randomFloats(n * k, using: &rng)
        var full = [Float](repeating: 0, count: n * n), upper = [Float](repeating: -1, count: n * n)
        ck_gemm(&full, Int32(n), a, Int32(k), a, Int32(k), Int32(n), Int32(n), Int32(k), Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0)
        ck_syrk_upper(&upper, Int32(n), a, Int32(k), Int32(n), Int32(k), 1, 0)
        var got: [Float] = [], want: [Float] = []
        for i in 0..<n {
            for j in 0..<n {
                if j >= i { got.append(upper[i * n + j]); want.append(full[i * n + j]) } else { #expect(upper[i * n + j] == -1) }
            }
        }
        expectClose("syrk upper", got, want, .twin)
    }

    @Test(arguments: [Float(0), 0.1])
    func headRangesEqualOneCall(p: Float) {
        let B = 3, T = 9, NH = 2, HS = 4, C = NH * HS, N = B * T
        var rng = SeededGenerator(seed: 16)
        let qkv = randomFloats(N * 3 * C, using: &rng), dout = randomFloats(N * C, using: &rng)
        var mask = [Float](repeating: 0, count: B * T)
        mask[T - 1] = -Float.greatestFiniteMagnitude
        let ws = Int(ck_attention_work_size(Int32(T), Int32(HS)))
        var work = [Float](repeating: 0, count: 2 * ws)
        var out1 = [Float](repeating: 0, count: N * C), att1 = [Float](repeating: 0, count: B * NH * T * T)
        var out2 = out1, att2 = att1, drop = att1
        qkv.withUnsafeBufferPointer { q in
            let qp = q.baseAddress!
            ck_attention_forward(&out1, &att1, qp, qp + C, qp + 2 * C, Int32(3 * C), mask, &work, Int32(B), Int32(T), Int32(NH),
                                 Int32(HS), 0, 0.5, p, 3)
            for (lo, hi) in [(0, 2), (2, 5), (5, B * NH)] {
                ck_attention_forward_heads(Int32(lo), Int32(hi), &out2, &att2, &drop, qp, qp + C, qp + 2 * C, Int32(3 * C), mask, &work,
                                           Int32(B), Int32(T), Int32(NH), Int32(HS), 0, 0.5, p, 3, 0)
            }
            #expect(out2 == out1)
            #expect(att2 == att1)
            if p == 0 {   // inference: no probabilities kept (att nil), the same output
                var out3 = [Float](repeating: 0, count: N * C)
                ck_attention_forward_heads(0, Int32(B * NH), &out3, nil, nil, qp, qp + C, qp + 2 * C, Int32(3 * C), mask, &work,
                                           Int32(B), Int32(T), Int32(NH), Int32(HS), 0, 0.5, 0, 3, 0)
                #expect(out3 == out1)
            }
            var d1 = [Float](repeating: 0, count: N * 3 * C), d2 = [Float](repeating: 9, count: N * 3 * C)
            d1.withUnsafeMutableBufferPointer { g in
                let gp = g.baseAddress!
                ck_attention_backward(gp, gp + C, gp + 2 * C, Int32(3 * C), &work, dout, att1, qp, qp + C, qp + 2 * C, Int32(3 * C),
                                      Int32(B), Int32(T), Int32(NH), Int32(HS), 0, 0.5, p, 3)
            }
            d2.withUnsafeMutableBufferPointer { g in
                let gp = g.baseAddress!
                for (lo, hi) in [(0, 4), (4, B * NH)] {
                    ck_attention_backward_heads(Int32(lo), Int32(hi), gp, gp + C, gp + 2 * C, Int32(3 * C), &work, dout, att1,
                                                p > 0 ? drop : nil, qp, qp + C, qp + 2 * C, Int32(3 * C), Int32(B), Int32(T), Int32(NH),
                                                Int32(HS), 0, 0.5, p, 3, 0, 0)
                }
            }
            // The saved dropped probabilities give the recomputed mask's gradients (exactly: same products).
            #expect(d2 == d1, "writing the heads' slices with the saved mask equals accumulating into zeros")
            // The first query of each sequence alone (a classifier's last layer): its rows of out and att
            // equal the full forward's; from a dout that is zero elsewhere, the backward equals the full one.
            var out4 = [Float](repeating: 7, count: N * C), att4 = [Float](repeating: 7, count: B * NH * T * T), drop4 = att4
            ck_attention_forward_heads(0, Int32(B * NH), &out4, &att4, &drop4, qp, qp + C, qp + 2 * C, Int32(3 * C), mask, &work,
                                       Int32(B), Int32(T), Int32(NH), Int32(HS), 0, 0.5, p, 3, 1)
            for b in 0..<B {
                #expect(Array(out4[(b * T * C)..<(b * T * C + C)]) == Array(out1[(b * T * C)..<(b * T * C + C)]), "out row 0 of sequence \(b)")
                #expect(out4[b * T * C + C] == 7, "rows after the first are left as they were")
                for h in 0..<NH {
                    let o = (b * NH + h) * T * T
                    #expect(Array(att4[o..<(o + T)]) == Array(att1[o..<(o + T)]), "att row 0 of head \(b),\(h)")
                }
            }
            var doutCLS = [Float](repeating: 0, count: N * C)
            for b in 0..<B { for c in 0..<C { doutCLS[b * T * C + c] = dout[b * T * C + c] } }
            var d5 = [Float](repeating: 0, count: N * 3 * C), d6 = [Float](repeating: 9, count: N * 3 * C)
            d5.withUnsafeMutableBufferPointer { g in
                let gp = g.baseAddress!
                ck_attention_backward(gp, gp + C, gp + 2 * C, Int32(3 * C), &work, doutCLS, att1, qp, qp + C, qp + 2 * C, Int32(3 * C),
                                      Int32(B), Int32(T), Int32(NH), Int32(HS), 0, 0.5, p, 3)
            }
            d6.withUnsafeMutableBufferPointer { g in
                let gp = g.baseAddress!
                ck_attention_backward_heads(0, Int32(B * NH), gp, gp + C, gp + 2 * C, Int32(3 * C), &work, doutCLS, att4,
                                            p > 0 ? drop4 : nil, qp, qp + C, qp + 2 * C, Int32(3 * C), Int32(B), Int32(T), Int32(NH),
                                            Int32(HS), 0, 0.5, p, 3, 0, 1)
            }
            expectClose("the first query's backward equals the full backward of its rows", d6, d5, Tolerance(atol: 1e-7, rtol: 1e-6))
        }
    }
}
