import CKernels
import Foundation
import WinnowCore
import WinnowData

/// Per-example gradient factors of one batch, enough to compute each example's gradient norm and the
/// dot product of two examples' gradients over the selected tensors without materialising per-example
/// gradients (docs/contracts.md §4). Rows are the real (non-pad) tokens of each example: example m owns
/// rows [offsets[m], offsets[m+1]), packed when the batch has padding (pad positions have exactly
/// zero gradient and are dropped), views of the workspace when it has none.
public struct GradientFactors: @unchecked Sendable {
    package enum Entry {
        /// A linear layer: inputs A [rows, din], output gradients G [rows, dout]; weight and/or bias selected.
        case linear(a: FactorRows, g: FactorRows, offsets: [Int32], weight: Bool, bias: Bool)
        /// Materialised per-example gradients [M, d] (LayerNorm parameters, pooled-vector gradients).
        case rows(Tensor)
        /// An embedding table: row ids[t] receives D[t, :].
        case embedding(d: FactorRows, ids: [Int32], offsets: [Int32], tableRows: Int)
        /// An embedding table that is also the output layer (tied `lm_head`): the embedding part as in
        /// `.embedding`, plus a linear part with inputs `headA` [rows, C] and output gradients `headG`
        /// [rows, V] over each example's rows `headOffsets`; norms and dots include the cross terms.
        case tiedEmbedding(d: FactorRows, ids: [Int32], offsets: [Int32], headA: FactorRows, headG: FactorRows, headOffsets: [Int32])
    }

    /// Number of examples (or sample groups) the factors describe.
    public let count: Int
    package var entries: [Entry] = []

    /// Squared gradient norm per example, times `scale`, added to `out`. Examples are split across
    /// cores (each part with its own scratch); every example's value is computed as in one call.
    public func addNorms(into out: inout [Float], scale: Float) {
        precondition(out.count == count, "addNorms: \(out.count) outputs for \(count) examples")
        func maxLength(_ off: [Int32]) -> Int { zip(off.dropFirst(), off).map { Int($0 - $1) }.max() ?? 0 }
        var perPart = 1
        for e in entries {
            switch e {
            case let .linear(a, g, off, w, _) where w:
                perPart = max(perPart, ck_grad_norms_linear_work_size(Int32(maxLength(off)), Int32(a.width), Int32(g.width)))
            case let .embedding(d, _, _, _):
                perPart = max(perPart, d.width)
            case let .tiedEmbedding(d, _, off, a, g, hoff):
                // The cross term's product (`tiedCross`) holds tokens x head rows: it outgrows the others for long examples.
                perPart = max(perPart, d.width * maxLength(off), maxLength(off) * maxLength(hoff),
                              ck_grad_norms_linear_work_size(Int32(maxLength(hoff)), Int32(a.width), Int32(g.width)))
            default:
                break
            }
        }
        let work = Tensor(uninitializedShape: [perPart * Parallel.parts(count)])
        let entries = self.entries
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            Parallel.ranges(count, blas: true) { part, r in
                let w = work.buffer.base + part * perPart, m0 = r.lowerBound, M = Int32(r.count)
                for e in entries {
                    switch e {
                    case let .linear(a, g, off, weight, bias):
                        let din = a.width, dout = g.width
                        off.withUnsafeBufferPointer { offp in
                            let o = offp.baseAddress! + m0
                            if weight {
                                ck_grad_norms_linear(base + m0, w, a.ptr, Int32(a.ld), g.ptr, Int32(g.ld), o, M, Int32(din), Int32(dout), scale)
                            }
                            if bias { ck_grad_norms_bias(base + m0, g.ptr, Int32(g.ld), o, M, Int32(dout), scale) }
                        }
                    case let .rows(v):
                        let d = v.shape[1]
                        for m in r { base[m] += scale * Float(ck_sum_squares(v.ptr + m * d, d)) }
                    case let .embedding(d, ids, off, _):
                        ids.withUnsafeBufferPointer { idp in
                            off.withUnsafeBufferPointer { offp in
                                ck_grad_norms_embedding(base + m0, w, d.ptr, Int32(d.ld), idp.baseAddress, offp.baseAddress! + m0,
                                                        M, Int32(d.width), scale)
                            }
                        }
                    case let .tiedEmbedding(d, ids, off, a, g, hoff):
                        ids.withUnsafeBufferPointer { idp in
                            off.withUnsafeBufferPointer { offp in
                                ck_grad_norms_embedding(base + m0, w, d.ptr, Int32(d.ld), idp.baseAddress, offp.baseAddress! + m0,
                                                        M, Int32(d.width), scale)
                            }
                        }
                        hoff.withUnsafeBufferPointer { hp in
                            ck_grad_norms_linear(base + m0, w, a.ptr, Int32(a.ld), g.ptr, Int32(g.ld), hp.baseAddress! + m0, M,
                                                 Int32(a.width), Int32(g.width), scale)
                        }
                        for m in r {
                            base[m] += 2 * scale * Float(tiedCross(d: d, ids: ids, rows: Int(off[m])..<Int(off[m + 1]),
                                                                   a: a, g: g, headRows: Int(hoff[m])..<Int(hoff[m + 1]), work: w))
                        }
                    }
                }
            }
        }
    }

    /// out[i, j] (row stride ldo) += scale * <g_i, h_j> for examples i of self and j of `other`.
    package func addDots(with other: GradientFactors, into out: UnsafeMutablePointer<Float>, ldo: Int, scale: Float) {
        precondition(entries.count == other.entries.count, "addDots: factor lists differ")
        let M1 = count, M2 = other.count
        func linearWork(_ off1: [Int32], _ off2: [Int32], din: Int, dout: Int) -> Int {
            ck_grad_dots_linear_work_size(off1.last! - off1[0], Int32(M1), off2.last! - off2[0], Int32(M2), Int32(din), Int32(dout))
        }
        // One scratch for every linear layer (the materialised form's is (M1 + M2) din dout floats):
        // allocated and faulted in once, not per layer.
        var linearScratch = 1
        for (e1, e2) in zip(entries, other.entries) {
            if case let (.linear(a1, g1, off1, true, _), .linear(_, _, off2, _, _)) = (e1, e2) {
                linearScratch = max(linearScratch, linearWork(off1, off2, din: a1.width, dout: g1.width))
            }
        }
        let work = Tensor(uninitializedShape: [linearScratch])
        for (e1, e2) in zip(entries, other.entries) {
            switch (e1, e2) {
            case let (.linear(a1, g1, off1, w, b), .linear(a2, g2, off2, _, _)):
                let din = a1.width, dout = g1.width
                off1.withUnsafeBufferPointer { o1 in
                    off2.withUnsafeBufferPointer { o2 in
                        if w {
                            ck_grad_dots_linear(out, Int32(ldo), work.buffer.base, a1.ptr, Int32(a1.ld), g1.ptr, Int32(g1.ld), o1.baseAddress, Int32(M1),
                                                a2.ptr, Int32(a2.ld), g2.ptr, Int32(g2.ld), o2.baseAddress, Int32(M2), Int32(din), Int32(dout), scale)
                        }
                        if b {
                            var work = Tensor(shape: [max(1, (M1 + M2) * dout)])
                            ck_grad_dots_bias(out, Int32(ldo), work.mptr, g1.ptr, Int32(g1.ld), o1.baseAddress, Int32(M1),
                                              g2.ptr, Int32(g2.ld), o2.baseAddress, Int32(M2), Int32(dout), scale)
                        }
                    }
                }
            case let (.rows(v1), .rows(v2)):
                let d = v1.shape[1]
                // out += scale * V1 V2^T
                ck_gemm(out, Int32(ldo), v1.ptr, Int32(d), v2.ptr, Int32(d), Int32(M1), Int32(M2), Int32(d), Int32(CK_TRANS_N), Int32(CK_TRANS_T), scale, 1)
            case let (.embedding(d1, ids1, off1, _), .embedding(d2, ids2, off2, _)):
                let C = d1.width
                ids1.withUnsafeBufferPointer { i1 in ids2.withUnsafeBufferPointer { i2 in
                    off1.withUnsafeBufferPointer { o1 in off2.withUnsafeBufferPointer { o2 in
                        let n1 = off1.last! - off1[0], n2 = off2.last! - off2[0]
                        var work = Tensor(uninitializedShape: [max(1, ck_grad_dots_embedding_work_size(n1, n2, Int32(C)))])
                        var iwork = [Int32](repeating: 0, count: ck_grad_dots_embedding_iwork_size(n1, Int32(M1), n2, Int32(M2)))
                        ck_grad_dots_embedding(out, Int32(ldo), work.mptr, &iwork, d1.ptr, Int32(d1.ld), i1.baseAddress, o1.baseAddress, Int32(M1),
                                               d2.ptr, Int32(d2.ld), i2.baseAddress, o2.baseAddress, Int32(M2), Int32(C), scale)
                    } }
                } }
            case let (.tiedEmbedding(d1, ids1, off1, a1, g1, hoff1), .tiedEmbedding(d2, ids2, off2, a2, g2, hoff2)):
                // <E1 + H1, E2 + H2>: the embedding and linear parts, then both cross terms.
                let embedding1 = Entry.embedding(d: d1, ids: ids1, offsets: off1, tableRows: 0)
                let embedding2 = Entry.embedding(d: d2, ids: ids2, offsets: off2, tableRows: 0)
                let head1 = Entry.linear(a: a1, g: g1, offsets: hoff1, weight: true, bias: false)
                let head2 = Entry.linear(a: a2, g: g2, offsets: hoff2, weight: true, bias: false)
                var parts1 = GradientFactors(count: M1), parts2 = GradientFactors(count: M2)
                parts1.entries = [embedding1, head1]
                parts2.entries = [embedding2, head2]
                parts1.addDots(with: parts2, into: out, ldo: ldo, scale: scale)
                let maxRows = max(zip(off1.dropFirst(), off1).map { Int($0 - $1) }.max() ?? 0, zip(off2.dropFirst(), off2).map { Int($0 - $1) }.max() ?? 0)
                let maxHead = max(zip(hoff1.dropFirst(), hoff1).map { Int($0 - $1) }.max() ?? 0, zip(hoff2.dropFirst(), hoff2).map { Int($0 - $1) }.max() ?? 0)
                let scratch = Tensor(uninitializedShape: [max(1, maxRows * maxHead)])
                for i in 0..<M1 {
                    for j in 0..<M2 {
                        let e1h2 = tiedCross(d: d1, ids: ids1, rows: Int(off1[i])..<Int(off1[i + 1]), a: a2, g: g2,
                                             headRows: Int(hoff2[j])..<Int(hoff2[j + 1]), work: scratch.buffer.base)
                        let e2h1 = tiedCross(d: d2, ids: ids2, rows: Int(off2[j])..<Int(off2[j + 1]), a: a1, g: g1,
                                             headRows: Int(hoff1[i])..<Int(hoff1[i + 1]), work: scratch.buffer.base)
                        out[i * ldo + j] += scale * Float(e1h2 + e2h1)
                    }
                }
            default:
                preconditionFailure("addDots: factor kinds differ")
            }
        }
    }
}

/// <E, H> of an embedding-table gradient E (row ids[t] receives D[t, :] for t in `rows`) and a linear
/// layer's weight gradient H = G^T A over `headRows` (the output layer tied to that table):
/// sum_t sum_r G[r, ids[t]] (D[t, :] . A[r, :]). `work` holds rows.count * headRows.count floats.
func tiedCross(d: FactorRows, ids: [Int32], rows: Range<Int>, a: FactorRows, g: FactorRows, headRows: Range<Int>,
               work: UnsafeMutablePointer<Float>) -> Double {
    let nt = rows.count, nr = headRows.count
    guard nt > 0, nr > 0 else { return 0 }
    // P = D_rows A_headRows^T [nt, nr]
    ck_gemm(work, Int32(nr), d.ptr + rows.lowerBound * d.ld, Int32(d.ld), a.ptr + headRows.lowerBound * a.ld, Int32(a.ld),
            Int32(nt), Int32(nr), Int32(d.width), Int32(CK_TRANS_N), Int32(CK_TRANS_T), 1, 0)
    var s = 0.0
    let gp = g.ptr
    for (ti, t) in rows.enumerated() {
        let v = Int(ids[t])
        for (ri, r) in headRows.enumerated() { s += Double(gp[r * g.ld + v]) * Double(work[ti * nr + ri]) }
    }
    return s
}

/// Rows [0, rows) of a matrix stored in `storage` from element `offset` with row stride `ld` and
/// `width` columns: a packed tensor, or a view of a workspace activation when the batch has no
/// padding. A view shares the tensor's copy-on-write storage, so the workspace's next pass copies
/// the buffer only if these factors are still alive (TracIn's kept test factors), never corrupting them.
package struct FactorRows {
    let storage: Tensor
    package let offset: Int, ld: Int, width: Int, rows: Int

    init(packed t: Tensor) {
        storage = t
        offset = 0
        rows = t.shape[0]
        width = t.shape.count > 1 ? t.shape[1] : 1
        ld = width
    }

    init(view t: Tensor, offset: Int, ld: Int, width: Int, rows: Int) {
        precondition(rows == 0 || offset + (rows - 1) * ld + width <= t.count, "FactorRows: view beyond its tensor")
        storage = t
        self.offset = offset
        self.ld = ld
        self.width = width
        self.rows = rows
    }

    var ptr: UnsafePointer<Float> { storage.ptr + offset }

    /// The rows as a packed [rows, width] tensor (a copy for views).
    package var dense: Tensor {
        if offset == 0 && ld == width && storage.count == rows * width { return storage }
        let out = Tensor(uninitializedShape: [rows, width])
        for r in 0..<rows { (out.buffer.base + r * width).update(from: ptr + r * ld, count: width) }
        return out
    }
}

/// Packs the real rows of a padded [B*T, d] matrix (row stride ld) into [rows, d], examples split
/// across cores.
package func packRows(_ src: UnsafePointer<Float>, ld: Int, width d: Int, batch: Batch, lengths: [Int]) -> Tensor {
    var starts = [0]
    for l in lengths { starts.append(starts.last! + l) }
    let out = Tensor(uninitializedShape: [starts.last!, d])
    let dst = out.buffer.base, T = batch.length
    Parallel.rows(batch.size, width: T * d) { _, r in
        for b in r {
            for t in 0..<lengths[b] {
                (dst + (starts[b] + t) * d).update(from: src + (b * T + t) * ld, count: d)
            }
        }
    }
    return out
}
