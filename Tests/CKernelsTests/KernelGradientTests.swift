import CKernels
import Foundation
import Testing

// Every C backward against central finite differences of a naive Double forward (Naive.*), and
// every C forward against that forward. The loss is L = sum(out * R) with random R, so R is the
// dout fed to the backward. Backward buffers start non-zero to check that kernels accumulate.
// Sizes stay small: in a debug build the C target is compiled at -O0.

// MARK: - Linear

struct LinearShape: Sendable, CustomTestStringConvertible {
    var n: Int, c: Int, oc: Int
    var testDescription: String { "N\(n) C\(c) OC\(oc)" }
}

@Suite("Kernel gradients")
struct KernelGradientTests {
    @Test(arguments: [LinearShape(n: 1, c: 1, oc: 1), LinearShape(n: 7, c: 33, oc: 17),
                      LinearShape(n: 5, c: 7, oc: 33), LinearShape(n: 4, c: 16, oc: 8)],
          [true, false])
    func linear(shape: LinearShape, hasBias: Bool) {
        let (N, C, OC) = (shape.n, shape.c, shape.oc)
        // padded strides everywhere, so a kernel that ignores ld* reads or writes the wrong cells
        let ldInp = C + 3, ldOut = OC + 2, ldDout = OC + 5, ldDinp = C + 1
        var rng = SeededGenerator(seed: 11)
        let inp = randomFloats(N * ldInp, using: &rng)
        let weight = randomFloats(OC * C, using: &rng)
        let bias = randomFloats(OC, using: &rng)
        let dout = randomFloats(N * ldDout, using: &rng)
        var out = [Float](repeating: 99, count: N * ldOut)
        out.withUnsafeMutableBufferPointer { o in
            bias.withUnsafeBufferPointer { b in
                ck_linear_forward(o.baseAddress, Int32(ldOut), inp, Int32(ldInp), weight, hasBias ? b.baseAddress : nil,
                                  Int32(N), Int32(C), Int32(OC))
            }
        }
        let inpD = inp.asDouble, wD = weight.asDouble, bD: [Double]? = hasBias ? bias.asDouble : nil
        expectClose("linear out", packed(out, rows: N, cols: OC, ld: ldOut),
                    Naive.linear(inpD, ldInp: ldInp, wD, bD, n: N, c: C, oc: OC), .forward)
        #expect((0..<N).allSatisfy { out[$0 * ldOut + OC] == 99 }, "linear forward wrote into the row padding")

        let dinp0 = randomFloats(N * ldDinp, using: &rng), dw0 = randomFloats(OC * C, using: &rng)
        let db0 = randomFloats(OC, using: &rng)
        var dinp = dinp0, dw = dw0, db = db0
        dinp.withUnsafeMutableBufferPointer { di in
            dw.withUnsafeMutableBufferPointer { dwp in
                db.withUnsafeMutableBufferPointer { dbp in
                    ck_linear_backward(di.baseAddress, Int32(ldDinp), dwp.baseAddress, hasBias ? dbp.baseAddress : nil,
                                       dout, Int32(ldDout), inp, Int32(ldInp), weight, Int32(N), Int32(C), Int32(OC))
                }
            }
        }
        let r = packed(dout, rows: N, cols: OC, ld: ldDout).asDouble
        let gInp = centralDifferences(at: inpD) { weightedSum(Naive.linear($0, ldInp: ldInp, wD, bD, n: N, c: C, oc: OC), r) }
        expectClose("linear dinp", packed(increments(dinp, dinp0), rows: N, cols: C, ld: ldDinp),
                    packed(gInp, rows: N, cols: C, ld: ldInp), .backward)
        #expect((0..<N).allSatisfy { dinp[$0 * ldDinp + C] == dinp0[$0 * ldDinp + C] }, "linear dinp padding changed")
        let gW = centralDifferences(at: wD) { weightedSum(Naive.linear(inpD, ldInp: ldInp, $0, bD, n: N, c: C, oc: OC), r) }
        expectClose("linear dweight", increments(dw, dw0), gW, .backward)
        if let bD {
            let gB = centralDifferences(at: bD) { weightedSum(Naive.linear(inpD, ldInp: ldInp, wD, $0, n: N, c: C, oc: OC), r) }
            expectClose("linear dbias", increments(db, db0), gB, .backward)
        } else {
            #expect(db == db0, "linear backward touched dbias although it was NULL")
        }
    }

    // MARK: - Activations

    @Test(arguments: [1, 7, 33])
    func gelu(n: Int) {
        var rng = SeededGenerator(seed: 21)
        let x = randomFloats(n, in: -4...4, using: &rng), r = randomFloats(n, using: &rng)
        var y = [Float](repeating: 0, count: n)
        y.withUnsafeMutableBufferPointer { ck_gelu_forward($0.baseAddress, x, n) }
        expectClose("gelu out", y, x.map { Naive.gelu(Double($0)) }, .forward)
        let dx0 = randomFloats(n, using: &rng)
        var dx = dx0
        dx.withUnsafeMutableBufferPointer { ck_gelu_backward($0.baseAddress, r, x, n) }
        let g = centralDifferences(at: x.asDouble) { weightedSum($0.map(Naive.gelu), r.asDouble) }
        expectClose("gelu dinp", increments(dx, dx0), g, .backward)
    }

    /// The kernel's vectorised erfc keeps both tails relatively accurate (1 + erff(x) would cancel).
    @Test func geluMatchesErfAcrossTheRange() {
        let x = stride(from: -9.0, through: 9.0, by: 0.01).map { Float($0) }
        var y = [Float](repeating: 0, count: x.count)
        y.withUnsafeMutableBufferPointer { ck_gelu_forward($0.baseAddress, x, x.count) }
        expectClose("gelu out on [-9, 9]", y, x.map { Naive.gelu(Double($0)) }, Tolerance(atol: 1e-7, rtol: 1e-5))
    }

    @Test(arguments: [1, 7, 33])
    func tanhActivation(n: Int) {
        var rng = SeededGenerator(seed: 22)
        let x = randomFloats(n, in: -3...3, using: &rng), r = randomFloats(n, using: &rng)
        var y = [Float](repeating: 0, count: n)
        y.withUnsafeMutableBufferPointer { ck_tanh_forward($0.baseAddress, x, n) }
        expectClose("tanh out", y, x.map { tanh(Double($0)) }, .forward)
        let dx0 = randomFloats(n, using: &rng)
        var dx = dx0
        dx.withUnsafeMutableBufferPointer { ck_tanh_backward($0.baseAddress, r, y, n) }
        let g = centralDifferences(at: x.asDouble) { weightedSum($0.map { tanh($0) }, r.asDouble) }
        expectClose("tanh dinp", increments(dx, dx0), g, .backward)
    }

    @Test(arguments: [1, 7, 33], [Float(0), 0.1])
    func dropout(n: Int, p: Float) {
        var rng = SeededGenerator(seed: 23)
        let x = randomFloats(n, using: &rng), r = randomFloats(n, using: &rng)
        let seed: UInt64 = 77, offset: UInt64 = 1000
        var y = [Float](repeating: 0, count: n)
        y.withUnsafeMutableBufferPointer { ck_dropout_forward($0.baseAddress, x, n, p, seed, offset) }
        expectClose("dropout out", y, Naive.dropout(x.asDouble, p: p, seed: seed, offset: offset), .forward)
        let dx0 = randomFloats(n, using: &rng)
        var dx = dx0
        dx.withUnsafeMutableBufferPointer { ck_dropout_backward($0.baseAddress, r, n, p, seed, offset) }
        // the mask is a pure function of (seed, counter), so differentiating the forward is valid
        let g = centralDifferences(at: x.asDouble) { weightedSum(Naive.dropout($0, p: p, seed: seed, offset: offset), r.asDouble) }
        expectClose("dropout dinp", increments(dx, dx0), g, .backward)
    }

    // MARK: - LayerNorm

    @Test(arguments: [(1, 3), (1, 7), (7, 33), (3, 16), (2, 100)])
    func layerNorm(n: Int, c: Int) {
        var rng = SeededGenerator(seed: 31)
        let eps: Float = 1e-5
        let x = randomFloats(n * c, in: -2...3, using: &rng), w = randomFloats(c, in: 0.5...1.5, using: &rng)
        let b = randomFloats(c, using: &rng), r = randomFloats(n * c, using: &rng)
        var y = [Float](repeating: 0, count: n * c), mean = [Float](repeating: 0, count: n)
        var rstd = [Float](repeating: 0, count: n)
        y.withUnsafeMutableBufferPointer { yp in
            mean.withUnsafeMutableBufferPointer { mp in
                rstd.withUnsafeMutableBufferPointer { rp in
                    ck_layernorm_forward(yp.baseAddress, mp.baseAddress, rp.baseAddress, x, w, b, Int32(n), Int32(c), eps)
                }
            }
        }
        let xD = x.asDouble, wD = w.asDouble, bD = b.asDouble, rD = r.asDouble, e = Double(eps)
        expectClose("layernorm out", y, Naive.layerNorm(xD, wD, bD, n: n, c: c, eps: e), .forward)

        let dx0 = randomFloats(n * c, using: &rng), dw0 = randomFloats(c, using: &rng), db0 = randomFloats(c, using: &rng)
        var dx = dx0, dw = dw0, db = db0
        dx.withUnsafeMutableBufferPointer { dxp in
            dw.withUnsafeMutableBufferPointer { dwp in
                db.withUnsafeMutableBufferPointer { dbp in
                    ck_layernorm_backward(dxp.baseAddress, dwp.baseAddress, dbp.baseAddress, r, x, w, mean, rstd, Int32(n), Int32(c))
                }
            }
        }
        let gx = centralDifferences(at: xD) { weightedSum(Naive.layerNorm($0, wD, bD, n: n, c: c, eps: e), rD) }
        expectClose("layernorm dinp", increments(dx, dx0), gx, .backward)
        let gw = centralDifferences(at: wD) { weightedSum(Naive.layerNorm(xD, $0, bD, n: n, c: c, eps: e), rD) }
        expectClose("layernorm dweight", increments(dw, dw0), gw, .backward)
        let gb = centralDifferences(at: bD) { weightedSum(Naive.layerNorm(xD, wD, $0, n: n, c: c, eps: e), rD) }
        expectClose("layernorm dbias", increments(db, db0), gb, .backward)

        // dweight/dbias are nullable and do not change dinp
        var dx2 = dx0
        dx2.withUnsafeMutableBufferPointer { ck_layernorm_backward($0.baseAddress, nil, nil, r, x, w, mean, rstd, Int32(n), Int32(c)) }
        #expect(dx2 == dx, "layernorm dinp differs when dweight/dbias are NULL")
    }

    // MARK: - Softmax + cross-entropy

    @Test(arguments: [(1, 1), (7, 33), (5, 7), (3, 100)])
    func softmaxCrossEntropy(n: Int, v: Int) {
        var rng = SeededGenerator(seed: 41)
        let logits = randomFloats(n * v, in: -5...5, using: &rng)
        let weights = randomFloats(n, in: 0.1...1, using: &rng)
        // every third row is ignored (target -100, like PyTorch's ignore_index)
        let targets: [Int32] = (0..<n).map { $0 % 3 == 2 ? -100 : Int32.random(in: 0..<Int32(v), using: &rng) }
        var losses = [Float](repeating: 0, count: n), probs = [Float](repeating: 0, count: n * v)
        losses.withUnsafeMutableBufferPointer { lp in
            probs.withUnsafeMutableBufferPointer { pp in
                ck_softmax_xent_forward(lp.baseAddress, pp.baseAddress, logits, targets, Int32(n), Int32(v))
            }
        }
        let expected = Naive.softmaxXent(logits.asDouble, targets, n: n, v: v)
        expectClose("softmax_xent probs", probs, expected.probs, .forward)
        expectClose("softmax_xent losses", losses, expected.losses, .forward)

        let d0 = randomFloats(n * v, using: &rng)
        var dlogits = d0
        dlogits.withUnsafeMutableBufferPointer { ck_softmax_xent_backward($0.baseAddress, weights, probs, targets, Int32(n), Int32(v)) }
        let wD = weights.asDouble
        let g = centralDifferences(at: logits.asDouble) { weightedSum(Naive.softmaxXent($0, targets, n: n, v: v).losses, wD) }
        expectClose("softmax_xent dlogits", increments(dlogits, d0), g, .backward)

        // plain softmax, in place
        var inPlace = logits
        inPlace.withUnsafeMutableBufferPointer { ck_softmax_forward($0.baseAddress, $0.baseAddress, Int32(n), Int32(v)) }
        expectClose("softmax in place", inPlace, expected.probs, .forward)
    }

    @Test func crossEntropyOfVanishingProbabilityIsFinite() {
        let logits: [Float] = [1000, -1000, 0]
        let targets: [Int32] = [1]
        var loss: [Float] = [0]
        var probs = [Float](repeating: 0, count: 3)
        loss.withUnsafeMutableBufferPointer { lp in
            probs.withUnsafeMutableBufferPointer { ck_softmax_xent_forward(lp.baseAddress, $0.baseAddress, logits, targets, 1, 3) }
        }
        expectClose("cross-entropy with p_y = 0", loss, [Double(2000)], .forward)
    }

    // MARK: - Attention

    @Test(arguments: [AttentionShape(b: 1, t: 1, nh: 1, hs: 1), AttentionShape(b: 2, t: 7, nh: 3, hs: 5),
                      AttentionShape(b: 1, t: 17, nh: 2, hs: 4), AttentionShape(b: 1, t: 70, nh: 2, hs: 4)],
          AttentionVariant.all)
    func attention(shape: AttentionShape, variant: AttentionVariant) {
        let (B, T, NH, HS) = (shape.b, shape.t, shape.nh, shape.hs)
        let C = NH * HS, ld = 3 * C
        let scale = 1 / Float(HS).squareRoot(), seed: UInt64 = 1234
        var rng = SeededGenerator(seed: 51)
        let qkv = randomFloats(B * T * ld, in: -1.5...1.5, using: &rng)
        let r = randomFloats(B * T * C, using: &rng)
        let keyMask: [Float]? = variant.masked ? attentionKeyMask(b: B, t: T) : nil
        let run = AttentionRun(shape: shape, variant: variant, scale: scale, seed: seed)
        let (out, att) = run.forward(qkv, keyMask: keyMask, reference: false)

        let qkvD = qkv.asDouble
        let expected = Naive.attention(qkvD, keyMask: keyMask, b: B, t: T, nh: NH, hs: HS, causal: variant.causal, window: variant.window,
                                       scale: Double(scale), pDrop: variant.pDrop, seed: seed)
        expectClose("attention att", att, expected.att, .forward)
        expectClose("attention out", out, expected.out, .forward)

        let d0 = randomFloats(B * T * ld, using: &rng)
        let dqkv = run.backward(d0, dout: r, att: att, qkv: qkv, reference: false)
        let rD = r.asDouble
        let g = centralDifferences(at: qkvD) {
            weightedSum(Naive.attention($0, keyMask: keyMask, b: B, t: T, nh: NH, hs: HS, causal: variant.causal, window: variant.window,
                                        scale: Double(scale), pDrop: variant.pDrop, seed: seed).out, rD)
        }
        let inc = increments(dqkv, d0)
        for (part, name) in ["dq", "dk", "dv"].enumerated() {
            expectClose("attention \(name)", packed(inc, rows: B * T, cols: C, ld: ld, offset: part * C),
                        packed(g, rows: B * T, cols: C, ld: ld, offset: part * C), .backward)
        }
    }

    // MARK: - Embedding

    @Test func embedding() {
        let V = 11, C = 7
        let ids: [Int32] = [3, 0, 10, 3, 3, 5, 0, 1, 10]  // repeats: the backward must add, not overwrite
        let N = ids.count
        var rng = SeededGenerator(seed: 61)
        let table = randomFloats(V * C, using: &rng), r = randomFloats(N * C, using: &rng)
        let out0 = randomFloats(N * C, using: &rng)
        var out = out0
        out.withUnsafeMutableBufferPointer { ck_embedding_forward($0.baseAddress, table, ids, Int32(N), Int32(C), 1) }
        let gathered = (0..<N * C).map { Double(table[Int(ids[$0 / C]) * C + $0 % C]) }
        expectClose("embedding out (accumulate)", increments(out, out0), gathered, .forward)
        out.withUnsafeMutableBufferPointer { ck_embedding_forward($0.baseAddress, table, ids, Int32(N), Int32(C), 0) }
        expectClose("embedding out", out, gathered, .forward)

        let d0 = randomFloats(V * C, using: &rng)
        var dtable = d0
        dtable.withUnsafeMutableBufferPointer { ck_embedding_backward($0.baseAddress, r, ids, Int32(N), Int32(C)) }
        let rD = r.asDouble
        let g = centralDifferences(at: table.asDouble) { t in
            weightedSum((0..<N * C).map { t[Int(ids[$0 / C]) * C + $0 % C] }, rD)
        }
        expectClose("embedding dtable", increments(dtable, d0), g, .backward)
    }
}

// MARK: - Attention helpers (shared with KernelReferenceTests)

struct AttentionShape: Sendable, CustomTestStringConvertible {
    var b: Int, t: Int, nh: Int, hs: Int
    var testDescription: String { "B\(b) T\(t) NH\(nh) HS\(hs)" }
}

struct AttentionVariant: Sendable, CustomTestStringConvertible {
    var causal: Bool, pDrop: Float, masked: Bool
    /// A causal sliding window of this many keys (Mistral's, Gemma's) when above 1.
    var window = 0
    var testDescription: String { "causal \(causal)\(window > 1 ? " window \(window)" : ""), p \(pDrop), key mask \(masked)" }
    /// The kernels' `causal` argument.
    var causalArgument: Int32 { causal ? Int32(max(1, window)) : 0 }

    static let all = [
        AttentionVariant(causal: false, pDrop: 0, masked: false),
        AttentionVariant(causal: true, pDrop: 0, masked: true),
        AttentionVariant(causal: false, pDrop: 0.1, masked: true),
        AttentionVariant(causal: true, pDrop: 0.1, masked: false),
        AttentionVariant(causal: true, pDrop: 0, masked: true, window: 3),
        AttentionVariant(causal: true, pDrop: 0.1, masked: false, window: 5),
    ]
}

/// Hugging Face style additive key mask [B,T]: 0 keeps, -Float.greatestFiniteMagnitude drops.
/// Batch 0 drops its last key, batch 1 keys 0 and 3, later batches every key j % 4 == 1; never a
/// whole row (a fully masked row is tested on its own). `full` masks every key of batch 0.
func attentionKeyMask(b: Int, t: Int, full: Bool = false) -> [Float] {
    var mask = [Float](repeating: 0, count: b * t)
    for bi in 0..<b {
        for j in 0..<t {
            let drop = full ? bi == 0
                : t > 1 && ((bi == 0 && j == t - 1) || (bi == 1 && (j == 0 || j == 3)) || (bi > 1 && j % 4 == 1))
            if drop { mask[bi * t + j] = -Float.greatestFiniteMagnitude }
        }
    }
    return mask
}

/// One attention configuration; calls the optimised or the _ref C kernels on a fused QKV buffer.
struct AttentionRun: Sendable {
    var shape: AttentionShape
    var variant: AttentionVariant
    var scale: Float
    var seed: UInt64

    /// Returns out[B*T, C] and att[B,NH,T,T].
    func forward(_ qkv: [Float], keyMask: [Float]?, reference: Bool) -> (out: [Float], att: [Float]) {
        let (B, T, NH, HS) = (shape.b, shape.t, shape.nh, shape.hs)
        let C = NH * HS
        var out = [Float](repeating: .nan, count: B * T * C)
        var att = [Float](repeating: .nan, count: B * NH * T * T)
        var work = [Float](repeating: .nan, count: ck_attention_work_size(Int32(T), Int32(HS)))
        let mask = keyMask ?? []
        qkv.withUnsafeBufferPointer { q in
            mask.withUnsafeBufferPointer { m in
                out.withUnsafeMutableBufferPointer { o in
                    att.withUnsafeMutableBufferPointer { a in
                        work.withUnsafeMutableBufferPointer { w in
                            let p = q.baseAddress!
                            let f = reference ? ck_attention_forward_ref : ck_attention_forward
                            f(o.baseAddress, a.baseAddress, p, p + C, p + 2 * C, Int32(3 * C), keyMask == nil ? nil : m.baseAddress,
                              w.baseAddress, Int32(B), Int32(T), Int32(NH), Int32(HS), variant.causalArgument, scale,
                              variant.pDrop, seed)
                        }
                    }
                }
            }
        }
        return (out, att)
    }

    /// Returns dqkv0 plus the gradients (dq, dk, dv written into the fused [B*T, 3C] layout).
    func backward(_ dqkv0: [Float], dout: [Float], att: [Float], qkv: [Float], reference: Bool) -> [Float] {
        let (B, T, NH, HS) = (shape.b, shape.t, shape.nh, shape.hs)
        let C = NH * HS
        var dqkv = dqkv0
        var work = [Float](repeating: .nan, count: ck_attention_work_size(Int32(T), Int32(HS)))
        qkv.withUnsafeBufferPointer { q in
            dqkv.withUnsafeMutableBufferPointer { d in
                work.withUnsafeMutableBufferPointer { w in
                    let p = q.baseAddress!, dp = d.baseAddress!
                    if reference {
                        ck_attention_backward_ref(dp, dp + C, dp + 2 * C, Int32(3 * C), w.baseAddress, dout, att, p, p + C, p + 2 * C, Int32(3 * C),
                                                  Int32(B), Int32(T), Int32(NH), Int32(HS), scale, variant.pDrop, seed)
                    } else {
                        ck_attention_backward(dp, dp + C, dp + 2 * C, Int32(3 * C), w.baseAddress, dout, att, p, p + C, p + 2 * C, Int32(3 * C),
                                              Int32(B), Int32(T), Int32(NH), Int32(HS), variant.causalArgument, scale, variant.pDrop, seed)
                    }
                }
            }
        }
        return dqkv
    }
}
