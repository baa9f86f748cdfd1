// Kernel benchmarks at BERT-small shapes (B 32, T 128, C 512, I 2048, 8 heads): each optimised
// kernel against raw cblas or its plain-loop _ref twin, measured in the same run.
import Benchmark
import CKernels
import RawBLAS

/// A buffer of n floats filled with a fixed pattern in [-0.5, 0.5).
final class Buf: @unchecked Sendable {
    let p: UnsafeMutablePointer<Float>
    let n: Int
    init(_ n: Int) {
        self.n = n
        p = .allocate(capacity: n)
        for i in 0..<n { p[i] = Float((UInt64(i) &* 2_654_435_761) % 1000) / 1000 - 0.5 }
    }
    deinit { p.deallocate() }
}

let B = 32, T = 128, C = 512, I = 2048, NH = 8, HS = 64, N = B * T

nonisolated(unsafe) let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput], timeUnits: .milliseconds,
                                           maxDuration: .seconds(3), maxIterations: 20)

    // GEMM wrapper vs raw cblas: the wrapper must cost nothing.
    for (name, m, n, k) in [("4096x1536x512 (qkv)", N, 3 * C, C), ("4096x2048x512 (intermediate)", N, I, C)] {
        let a = Buf(m * k), b = Buf(n * k), c = Buf(m * n)
        Benchmark("gemm ck_gemm \(name)", configuration: .init(scalingFactor: .one)) { bench in
            for _ in bench.scaledIterations {
                ck_gemm(c.p, Int32(n), a.p, Int32(k), b.p, Int32(k), Int32(m), Int32(n), Int32(k), Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0)
            }
            blackHole(c.p[0])
        }
        Benchmark("gemm raw cblas_sgemm \(name)", configuration: .init(scalingFactor: .one)) { bench in
            for _ in bench.scaledIterations { rawblas_sgemm_nt(c.p, a.p, b.p, Int32(m), Int32(n), Int32(k)) }
            blackHole(c.p[0])
        }
    }

    // Attention's per-head products (one head, strided like the fused QKV buffer, one thread):
    // our register-tiled ck_gemm_small against cblas through ck_gemm.
    let hq = Buf(T * 3 * C), hp = Buf(T * T), ho = Buf(T * C), hpack = Buf(ck_gemm_small_pack_size(Int32(T), Int32(T)))
    for (name, small) in [("ck_gemm", false), ("ck_gemm_small", true)] {
        Benchmark("head products \(name) QK^T + PV + P^T dO + dO V^T, T128 HS64") { bench in
            let saved = ck_blas_get_threads()
            ck_blas_set_threads(1)
            defer { ck_blas_set_threads(saved) }
            let ld = Int32(3 * C), t = Int32(T), hs = Int32(HS), n = Int32(CK_TRANS_N), tr = Int32(CK_TRANS_T)
            for _ in bench.scaledIterations {
                for (c, cld, a, lda, b, m, nn, k, ta, tb) in [
                    (hp.p, t, hq.p, ld, hq.p + C, t, t, hs, n, tr), (ho.p, Int32(C), hp.p, t, hq.p + 2 * C, t, hs, t, n, n),
                    (ho.p, Int32(C), hp.p, t, hq.p, t, hs, t, tr, n), (hp.p, t, hq.p, ld, hq.p + 2 * C, t, t, hs, n, tr),
                ] {
                    if small {
                        ck_gemm_small(c, cld, a, lda, b, ld, m, nn, k, ta, tb, 1, 0, hpack.p)
                    } else {
                        ck_gemm(c, cld, a, lda, b, ld, m, nn, k, ta, tb, 1, 0)
                    }
                }
            }
            blackHole(ho.p[0])
        }
    }

    let qkv = Buf(N * 3 * C), out = Buf(N * C), att = Buf(B * NH * T * T), work = Buf(ck_attention_work_size(Int32(T), Int32(HS))), mask = Buf(B * T), dqkv = Buf(N * 3 * C)
    for i in 0..<(B * T) { mask.p[i] = 0 }
    Benchmark("attention forward B32 T128 NH8 HS64") { bench in
        for _ in bench.scaledIterations {
            ck_attention_forward(out.p, att.p, qkv.p, qkv.p + C, qkv.p + 2 * C, Int32(3 * C), mask.p, work.p,
                                 Int32(B), Int32(T), Int32(NH), Int32(HS), 0, 0.125, 0.1, 7)
        }
        blackHole(out.p[0])
    }
    Benchmark("attention backward B32 T128 NH8 HS64") { bench in
        for _ in bench.scaledIterations {
            ck_attention_backward(dqkv.p, dqkv.p + C, dqkv.p + 2 * C, Int32(3 * C), work.p, out.p, att.p, qkv.p, qkv.p + C, qkv.p + 2 * C,
                                  Int32(3 * C), Int32(B), Int32(T), Int32(NH), Int32(HS), 0, 0.125, 0.1, 7)
        }
        blackHole(dqkv.p[0])
    }

    // A decoder's causal attention (SmolLM2's heads: 9 of 64; 2 sequences of 512): in blocks of 64 queries, each
    // with only the keys up to its end (causal 1), against the full square masked afterwards (causal 0 computes the
    // same products the causal kernel made before it skipped any).
    let dT = 512, dNH = 9, dC = dNH * HS, dN = 2 * dT
    let dqkvIn = Buf(dN * 3 * dC), dOut = Buf(dN * dC), dAtt = Buf(2 * dNH * dT * dT), dWork = Buf(ck_attention_work_size(Int32(dT), Int32(HS)))
    let dGrad = Buf(dN * 3 * dC)
    for (name, causal) in [("blocks of 64 queries", Int32(1)), ("full square", Int32(0))] {
        Benchmark("decoder attention forward + backward B2 T512 NH9 HS64, \(name)") { bench in
            for _ in bench.scaledIterations {
                let q = dqkvIn.p, g = dGrad.p, ld = Int32(3 * dC)
                ck_attention_forward_heads(0, Int32(2 * dNH), dOut.p, dAtt.p, nil, q, q + dC, q + 2 * dC, ld, nil, dWork.p,
                                           2, Int32(dT), Int32(dNH), Int32(HS), causal, 0.125, 0, 0, 0)
                ck_attention_backward_heads(0, Int32(2 * dNH), g, g + dC, g + 2 * dC, ld, dWork.p, dOut.p, dAtt.p, nil, q, q + dC, q + 2 * dC,
                                            ld, 2, Int32(dT), Int32(dNH), Int32(HS), causal, 0.125, 0, 0, 0, 0)
            }
            blackHole(dGrad.p[0])
        }
    }

    // The gated MLPs' activations at SmolLM2's shape (1024 tokens x 1536): SwiGLU and Gemma's GeGLU, forward and backward.
    let gN = 1024 * 1536, gGate = Buf(gN), gUp = Buf(gN), gOut = Buf(gN), gD1 = Buf(gN), gD2 = Buf(gN)
    for (name, fwd, bwd) in [("SwiGLU", ck_swiglu_forward, ck_swiglu_backward), ("GeGLU", ck_geglu_forward, ck_geglu_backward)] {
        Benchmark("\(name) forward + backward 1024x1536") { bench in
            for _ in bench.scaledIterations {
                fwd(gOut.p, gGate.p, gUp.p, gN)
                bwd(gD1.p, gD2.p, gOut.p, gGate.p, gUp.p, gN)
            }
            blackHole(gD1.p[0])
        }
    }
    Benchmark("attention forward _ref B4 T128 NH8 HS64") { bench in
        for _ in bench.scaledIterations {
            ck_attention_forward_ref(out.p, att.p, qkv.p, qkv.p + C, qkv.p + 2 * C, Int32(3 * C), mask.p, work.p,
                                     4, Int32(T), Int32(NH), Int32(HS), 0, 0.125, 0.1, 7)
        }
        blackHole(out.p[0])
    }

    let x = Buf(N * I), y = Buf(N * I), dy = Buf(N * I)
    Benchmark("gelu forward 4096x2048") { bench in
        for _ in bench.scaledIterations { ck_gelu_forward(y.p, x.p, N * I) }
        blackHole(y.p[0])
    }
    Benchmark("gelu backward 4096x2048") { bench in
        for _ in bench.scaledIterations { dy.p.update(repeating: 0, count: N * I); ck_gelu_backward(dy.p, y.p, x.p, N * I) }
        blackHole(dy.p[0])
    }
    let g = Buf(C), mean = Buf(N), rstd = Buf(N), dw = Buf(C), db = Buf(C)
    Benchmark("layernorm forward 4096x512") { bench in
        for _ in bench.scaledIterations { ck_layernorm_forward(y.p, mean.p, rstd.p, x.p, g.p, g.p, Int32(N), Int32(C), 1e-12) }
        blackHole(y.p[0])
    }
    Benchmark("layernorm backward 4096x512") { bench in
        for _ in bench.scaledIterations {
            ck_layernorm_backward(dy.p, dw.p, db.p, y.p, x.p, g.p, mean.p, rstd.p, Int32(N), Int32(C))
        }
        blackHole(dy.p[0])
    }
    let logits = Buf(B * 30522), probs = Buf(B * 30522), losses = Buf(B)
    let targets = UnsafeMutablePointer<Int32>.allocate(capacity: B)
    for i in 0..<B { targets[i] = Int32(i * 17) }
    Benchmark("softmax cross-entropy forward 32x30522") { bench in
        for _ in bench.scaledIterations { ck_softmax_xent_forward(losses.p, probs.p, logits.p, targets, Int32(B), 30522) }
        blackHole(losses.p[0])
    }

    // Per-example gradient norms of one linear layer: Gram form vs materialised (_ref).
    let A = Buf(N * C), G = Buf(N * C), norms = Buf(B)
    let off = UnsafeMutablePointer<Int32>.allocate(capacity: B + 1)
    for i in 0...B { off[i] = Int32(i * T) }
    let gwork = Buf(max(ck_grad_norms_linear_work_size(Int32(T), Int32(C), Int32(C)), C * C))
    Benchmark("grad norms linear 512x512 T128 (Gram)") { bench in
        for _ in bench.scaledIterations {
            ck_grad_norms_linear(norms.p, gwork.p, A.p, Int32(C), G.p, Int32(C), off, Int32(B), Int32(C), Int32(C), 1)
        }
        blackHole(norms.p[0])
    }
    Benchmark("grad norms linear 512x512 T128 (materialised _ref)") { bench in
        for _ in bench.scaledIterations {
            ck_grad_norms_linear_ref(norms.p, gwork.p, A.p, Int32(C), G.p, Int32(C), off, 4, Int32(C), Int32(C), 1)
        }
        blackHole(norms.p[0])
    }
    // TracIn's train-to-test dot products of one linear layer: 32 x 32 examples of T 128 (Gram form
    // picked by the kernel), i.e. 1024 example pairs per call.
    let dots = Buf(B * B)
    let dwork = Buf(max(1, ck_grad_dots_linear_work_size(Int32(N), Int32(B), Int32(N), Int32(B), Int32(C), Int32(C))))
    Benchmark("TracIn dots linear 512x512, 32 x 32 examples of T128", configuration: .init(scalingFactor: .one)) { bench in
        for _ in bench.scaledIterations {
            ck_grad_dots_linear(dots.p, Int32(B), dwork.p, A.p, Int32(C), G.p, Int32(C), off, Int32(B), A.p, Int32(C), G.p, Int32(C), off,
                                Int32(B), Int32(C), Int32(C), 1)
        }
        blackHole(dots.p[0])
    }
    // TracIn's dot products over the position and token-type tables (32 x 32 examples of T 128):
    // rows summed per distinct id first, so a pair costs T dots (positions) or one (token types).
    let positions = (0..<N).map { Int32($0 % T) }, types = [Int32](repeating: 0, count: N)
    let ework = Buf(ck_grad_dots_embedding_work_size(Int32(N), Int32(N), Int32(C)))
    let eiwork = UnsafeMutablePointer<Int32>.allocate(capacity: ck_grad_dots_embedding_iwork_size(Int32(N), Int32(B), Int32(N), Int32(B)))
    for (table, ids) in [("position", positions), ("token-type", types)] {
        Benchmark("TracIn dots embedding (\(table) ids), C512, 32 x 32 examples of T128", configuration: .init(scalingFactor: .one)) { bench in
            for _ in bench.scaledIterations {
                ck_grad_dots_embedding(dots.p, Int32(B), ework.p, eiwork, A.p, Int32(C), ids, off, Int32(B), G.p, Int32(C), ids, off,
                                       Int32(B), Int32(C), 1)
            }
            blackHole(dots.p[0])
        }
    }
    let mean2 = Buf(N * C), m2 = Buf(N * C)
    Benchmark("VoG accumulate 4096x512") { bench in
        for _ in bench.scaledIterations { ck_vog_accumulate(mean2.p, m2.p, A.p, N * C, 3) }
        blackHole(m2.p[0])
    }
    let p = Buf(30522 * C), m = Buf(30522 * C), v = Buf(30522 * C)
    for i in 0..<(30522 * C) { v.p[i] = abs(v.p[i]) }
    Benchmark("adamw 15.6M (word embeddings)") { bench in
        for _ in bench.scaledIterations { ck_adamw_update(p.p, m.p, v.p, A.p, 30522 * C, 1e-4, 0.9, 0.999, 1e-8, 0.01, 3) }
        blackHole(p.p[0])
    }
}
