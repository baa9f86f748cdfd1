import CKernels
import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowTraining

/// Seeded random orthonormal projections of per-example gradients (TracIn `--project D`, in the style of
/// TracIn-CP-Fast-RandProj). A linear layer's per-example gradient W = G^T A is projected as
/// (G Q_out)^T (A Q_in) with Q_in [din, k], Q_out [dout, k] random orthonormal frames (QR of a seeded
/// Gaussian through LAPACKE), k = min(dim, ceil(sqrt(D))); vectors (LayerNorm gradients, pooled-vector
/// gradients) are projected to min(d, D) dimensions; embedding tables act as linear layers whose inputs
/// are one-hot ids. Each projected factor is scaled by sqrt(n/k), so inner products are preserved in
/// expectation. A dimension no larger than k is kept exactly. The frames depend only on the seed and the
/// layer, so train and test examples and all checkpoints share them.
///
///     var p = GradientProjector(dim: 1024, seed: 0)
///     let v = p.project(factors)          // [M, total projected dims]
final class GradientProjector {
    let dim: Int
    let seed: UInt64
    private var frames: [String: Tensor] = [:]

    init(dim: Int, seed: UInt64) {
        self.dim = dim
        self.seed = seed
    }

    /// Q [n, k] with orthonormal columns, the same for the same (key, n, k).
    func frame(_ key: String, n: Int, k: Int) -> Tensor {
        let id = "\(key):\(n):\(k)"
        if let q = frames[id] { return q }
        var rng = SeededGenerator(seed: seed, stream: "projection-\(id)")
        var q = Tensor(shape: [n, k])
        q.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = Float(rng.nextNormal()) } }
        var tau = Tensor(shape: [k])
        let info = ck_qr_orthonormalize(q.mptr, Int32(k), tau.mptr, Int32(n), Int32(k))
        precondition(info == 0, "QR of a \(n)x\(k) Gaussian failed (LAPACK info \(info))")
        frames[id] = q
        return q
    }

    /// X [rows, n] -> X Q sqrt(n/k) [rows, k], or X itself when k >= n.
    func apply(_ x: Tensor, key: String, k: Int) -> Tensor {
        let rows = x.shape[0], n = x.shape[1]
        guard k < n else { return x }
        let q = frame(key, n: n, k: k)
        var out = Tensor(shape: [rows, k])
        ck_gemm(out.mptr, Int32(k), x.ptr, Int32(n), q.ptr, Int32(k), Int32(rows), Int32(k), Int32(n),
                Int32(CK_TRANS_N), Int32(CK_TRANS_N), (Float(n) / Float(k)).squareRoot(), 0)
        return out
    }

    /// Per-example projected gradients [M, total] of all entries, concatenated.
    func project(_ f: GradientFactors) -> Tensor {
        let r = max(1, Int(Double(dim).squareRoot().rounded(.up)))
        var blocks: [Tensor] = []
        let M = f.count
        for (ei, e) in f.entries.enumerated() {
            switch e {
            case let .linear(av, gv, off, w, b):
                let a = av.dense, g = gv.dense
                let gp = apply(g, key: "\(ei).out", k: min(g.shape[1], r))
                if w { blocks.append(perExampleOuter(gp, apply(a, key: "\(ei).in", k: min(a.shape[1], r)), off)) }
                if b { blocks.append(columnSums(gp, off)) }
            case let .rows(v):
                blocks.append(apply(v, key: "\(ei).rows", k: min(v.shape[1], dim)))
            case let .embedding(dv, ids, off, tableRows):
                blocks.append(embeddingBlock(dv, ids: ids, offsets: off, tableRows: tableRows, key: "\(ei)", r: r))
            case let .tiedEmbedding(dv, ids, off, av, gv, hoff):
                // The table's gradient E + G^T A, projected with the same frames on both sides: P(E) + P(H).
                let V = gv.width
                var blk = embeddingBlock(dv, ids: ids, offsets: off, tableRows: V, key: "\(ei)", r: r)
                let head = perExampleOuter(apply(av.dense, key: "\(ei).out", k: min(av.width, r)),
                                           apply(gv.dense, key: "\(ei).in", k: min(V, r)), hoff)
                for i in 0..<blk.count { blk.mptr[i] += head.ptr[i] }
                blocks.append(blk)
            }
        }
        let total = blocks.reduce(0) { $0 + $1.shape[1] }
        var out = Tensor(shape: [M, total])
        var col = 0
        for blk in blocks {
            let w = blk.shape[1]
            for m in 0..<M { (out.mptr + m * total + col).update(from: blk.ptr + m * w, count: w) }
            col += w
        }
        return out
    }

    /// Row m: the projected embedding-table gradient of example m (row ids[t] receives D[t, :]).
    func embeddingBlock(_ dv: FactorRows, ids: [Int32], offsets off: [Int32], tableRows: Int, key: String, r: Int) -> Tensor {
        let d = dv.dense
        let k1 = min(tableRows, r)
        var a: Tensor
        if k1 < tableRows {
            let q = frame("\(key).in", n: tableRows, k: k1)
            let s = (Float(tableRows) / Float(k1)).squareRoot()
            a = Tensor(shape: [ids.count, k1])
            for (t, id) in ids.enumerated() { for j in 0..<k1 { a.mptr[t * k1 + j] = s * q.ptr[Int(id) * k1 + j] } }
        } else {
            a = Tensor(shape: [ids.count, tableRows])
            for (t, id) in ids.enumerated() { a.mptr[t * tableRows + Int(id)] = 1 }
        }
        return perExampleOuter(apply(d, key: "\(key).out", k: min(d.shape[1], r)), a, off)
    }

    /// Row m: vec(G_m^T A_m) over the example's rows [off[m], off[m+1]).
    func perExampleOuter(_ g: Tensor, _ a: Tensor, _ off: [Int32]) -> Tensor {
        let k2 = g.shape[1], k1 = a.shape[1], M = off.count - 1
        var out = Tensor(shape: [M, k2 * k1])
        for m in 0..<M {
            let r0 = Int(off[m]), n = Int(off[m + 1]) - r0
            guard n > 0 else { continue }
            ck_gemm(out.mptr + m * k2 * k1, Int32(k1), g.ptr + r0 * k2, Int32(k2), a.ptr + r0 * k1, Int32(k1),
                    Int32(k2), Int32(k1), Int32(n), Int32(CK_TRANS_T), Int32(CK_TRANS_N), 1, 0)
        }
        return out
    }

    /// Row m: sum of the example's rows of g.
    func columnSums(_ g: Tensor, _ off: [Int32]) -> Tensor {
        let d = g.shape[1], M = off.count - 1
        var out = Tensor(shape: [M, d])
        for m in 0..<M {
            for r in Int(off[m])..<Int(off[m + 1]) { for j in 0..<d { out.mptr[m * d + j] += g.ptr[r * d + j] } }
        }
        return out
    }
}
