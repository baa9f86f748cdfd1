/*
 * grad_norms.c — per-example gradient norms and dot products of linear, bias, LayerNorm and
 * embedding parameters without a per-example gradient buffer per parameter: a linear layer's
 * ||G^T A||_F^2 is the Gram form <A A^T, G G^T> (cheap for short examples) or the materialised
 * W = G^T A (cheap for long ones); each call picks the cheaper. Every value is summed in double and
 * added to a float output. Leaves out attention-score and convolution layers and projections.
 */
#include "ckernels.h"
#include "ck_internal.h"

/* Columns per block of the on-stack double column sums (bias and LayerNorm gradients). */
#define CK_GN_BLOCK 256

/* ------------------------------------------------------------------ path choice */

/* One example of T rows: Gram needs K_A, K_G [T,T] (2T^2 floats, O(T^2 (din+dout)) flops), the
 * materialised form W [dout,din] (O(T din dout) flops). design.md section 4: Gram iff
 * 2 T^2 <= din dout. With that rule, an example of T <= maxT rows needs at most
 * min(2 maxT^2, din dout) floats either way (Gram uses 2T^2 <= din dout; materialised happens only
 * when 2T^2 > din dout, so 2 maxT^2 > din dout too). */
static inline int norms_use_gram(long T, long din, long dout) { return 2 * T * T <= din * dout; }

/* Two sides of N1, N2 rows in M1, M2 examples, flop estimates (multiply-adds):
 *   Gram:         P = A1 A2^T, Q = G1 G2^T             N1 N2 (din + dout)
 *   materialised: W1, W2 (one G^T A per example)       (N1 + N2) din dout
 *                 out += W1 W2^T                         M1 M2 din dout
 * Doubles, so BERT-sized products cannot overflow. Ties go to Gram (less scratch when M is large). */
static inline int dots_use_gram(int N1, int M1, int N2, int M2, int din, int dout) {
    double dd = (double)din * (double)dout;
    double gram = (double)N1 * (double)N2 * ((double)din + (double)dout);
    double mat = ((double)N1 + (double)N2) * dd + (double)M1 * (double)M2 * dd;
    return gram <= mat;
}

/* ------------------------------------------------------------------ helpers */

/* sum_{r < rows, c < cols} P[r,c] Q[r,c] over a block of two [.., ld] matrices, in double.
 * The inner loop is contiguous; this is the whole cost of the Gram dots after the two GEMMs. */
CK_SIMD_CLONES
static double block_dot(const float *restrict P, const float *restrict Q, int ld, int rows, int cols) {
    CK_FP_REASSOC
    double acc = 0.0;
    for (int r = 0; r < rows; r++) {
        const float *p = P + (size_t)r * ld, *q = Q + (size_t)r * ld;
        for (int c = 0; c < cols; c++) acc += (double)p[c] * (double)q[c];
    }
    return acc;
}

/* sum_{i,j} P[i,j] Q[i,j] for symmetric P, Q [T,T] of which only the upper triangles are stored:
 * the diagonal once plus twice the strict upper triangle, in double. */
CK_SIMD_CLONES
static double upper_dot_symmetric(const float *restrict P, const float *restrict Q, int T) {
    CK_FP_REASSOC
    double diag = 0.0, off = 0.0;
    for (int i = 0; i < T; i++) {
        const float *p = P + (size_t)i * T, *q = Q + (size_t)i * T;
        diag += (double)p[i] * (double)q[i];
        for (int j = i + 1; j < T; j++) off += (double)p[j] * (double)q[j];
    }
    return diag + 2.0 * off;
}

/* dst[C] = sum_{t in [r0, r1)} G[t, :] (row stride ldg), summed in double a block of columns at a
 * time, stored as float. */
CK_SIMD_CLONES
static void column_sums(float *restrict dst, const float *restrict G, int ldg, int r0, int r1, int C) {
    double acc[CK_GN_BLOCK];
    for (int c0 = 0; c0 < C; c0 += CK_GN_BLOCK) {
        int nb = CK_MIN(CK_GN_BLOCK, C - c0);
        for (int c = 0; c < nb; c++) acc[c] = 0.0;
        for (int t = r0; t < r1; t++) {
            const float *g = G + (size_t)t * ldg + c0;
            for (int c = 0; c < nb; c++) acc[c] += (double)g[c];
        }
        for (int c = 0; c < nb; c++) dst[c0 + c] = (float)acc[c];
    }
}

/* ------------------------------------------------------------------ linear weight: norms */

/* Gram path: K_A then K_G, each [T,T] with ld T, then the small kernel's packing buffer;
 * materialised path: W [dout, din]. By the rule above, min(2 maxT^2, din dout) plus the packing
 * buffer covers both (0 when maxT, din or dout is 0: nothing is touched). */
size_t ck_grad_norms_linear_work_size(int maxT, int din, int dout) {
    if (maxT <= 0 || din <= 0 || dout <= 0) return 0;
    size_t gram = 2 * (size_t)maxT * (size_t)maxT, mat = (size_t)din * (size_t)dout;
    return CK_MIN(gram, mat) + ck_gemm_small_pack_size(maxT, CK_MAX(din, dout));
}

/* A[.., din] (lda), G[.., dout] (ldg), off[M+1] -> out[m] += scale * ||G_m^T A_m||_F^2, where
 * A_m, G_m are rows [off[m], off[m+1]). Per example:
 *   Gram          K_A = A_m A_m^T [T,T], K_G = G_m G_m^T [T,T]; value = sum K_A .* K_G
 *   materialised  W = G_m^T A_m [dout, din];                    value = sum W .* W
 * Both sums in double (ck_dot / ck_sum_squares). An empty example adds 0. */
void ck_grad_norms_linear(float *out, float *work, const float *A, int lda, const float *G, int ldg,
                          const int32_t *off, int M, int din, int dout, float scale) {
    for (int m = 0; m < M; m++) {
        int T = off[m + 1] - off[m];
        if (T <= 0) continue;
        const float *Am = A + (size_t)off[m] * lda, *Gm = G + (size_t)off[m] * ldg;
        double v;
        if (norms_use_gram(T, din, dout)) {
            /* Both Gram matrices are symmetric: their upper triangles (half a GEMM each) with the
             * small kernel, single-threaded like the callers' parts (1.1-1.25x cblas_ssyrk here) */
            float *KA = work, *KG = work + (size_t)T * T, *pack = work + 2 * (size_t)T * T;
            ck_syrk_small_upper(KA, T, Am, lda, T, din, 1.0f, 0.0f, pack);  /* [T,din][din,T] */
            ck_syrk_small_upper(KG, T, Gm, ldg, T, dout, 1.0f, 0.0f, pack); /* [T,dout][dout,T] */
            v = upper_dot_symmetric(KA, KG, T);
        } else {
            ck_gemm(work, din, Gm, ldg, Am, lda, dout, din, T, CK_TRANS_T, CK_TRANS_N, 1.0f, 0.0f); /* [dout,T][T,din] */
            v = ck_sum_squares(work, (size_t)din * dout);
        }
        out[m] += (float)((double)scale * v);
    }
}

/* Plain loops, always materialised, no scratch (work unused): each W[o,i] = sum_t G[t,o] A[t,i]
 * in double, squared and summed in double. */
void ck_grad_norms_linear_ref(float *out, float *work, const float *A, int lda, const float *G, int ldg,
                              const int32_t *off, int M, int din, int dout, float scale) {
    (void)work;
    for (int m = 0; m < M; m++) {
        double v = 0.0;
        for (int o = 0; o < dout; o++) {
            for (int i = 0; i < din; i++) {
                double w = 0.0;
                for (int t = off[m]; t < off[m + 1]; t++) {
                    w += (double)G[(size_t)t * ldg + o] * (double)A[(size_t)t * lda + i];
                }
                v += w * w;
            }
        }
        out[m] += (float)((double)scale * v);
    }
}

/* G[.., dout] (ldg), off[M+1] -> out[m] += scale * ||sum_{t in m} G[t,:]||^2. No scratch: column
 * sums of one block of columns live on the stack in double. */
CK_SIMD_CLONES
void ck_grad_norms_bias(float *out, const float *G, int ldg, const int32_t *off, int M, int dout, float scale) {
    double acc[CK_GN_BLOCK];
    for (int m = 0; m < M; m++) {
        double v = 0.0;
        for (int o0 = 0; o0 < dout; o0 += CK_GN_BLOCK) {
            int nb = CK_MIN(CK_GN_BLOCK, dout - o0);
            for (int o = 0; o < nb; o++) acc[o] = 0.0;
            for (int t = off[m]; t < off[m + 1]; t++) {
                const float *g = G + (size_t)t * ldg + o0;
                for (int o = 0; o < nb; o++) acc[o] += (double)g[o];
            }
            for (int o = 0; o < nb; o++) v += acc[o] * acc[o];
        }
        out[m] += (float)((double)scale * v);
    }
}

/* ------------------------------------------------------------------ linear weight: dots */

/* Floats of scratch for the path ck_grad_dots_linear takes with exactly these sizes (N = off[M] -
 * off[0]): Gram P, Q [N1, N2]; materialised W1 [M1, dout*din], W2 [M2, dout*din]. The choice
 * depends on N1, N2, M1, M2, so query with the sizes of the call, not with upper bounds. */
size_t ck_grad_dots_linear_work_size(int N1, int M1, int N2, int M2, int din, int dout) {
    if (dots_use_gram(N1, M1, N2, M2, din, dout)) return 2 * (size_t)N1 * (size_t)N2;
    return ((size_t)M1 + (size_t)M2) * (size_t)din * (size_t)dout;
}

/* Side 1: A1[.., din] (lda1), G1[.., dout] (ldg1), off1[M1+1]; side 2 likewise ->
 *   out[i, j] (ldo) += scale * <G1_i^T A1_i, G2_j^T A2_j>_F.
 * Gram: P = A1 A2^T, Q = G1 G2^T over all rows [N1, N2] (ld N2), then out[i,j] += scale * the
 * double sum of P .* Q over the block rows off1[i].., columns off2[j].. (shifted by off[0]).
 * Materialised: W1[i] = G1_i^T A1_i, W2[j] likewise (rows of dout*din), then one GEMM
 * out += scale * W1 W2^T with beta = 1 (float sums over dout*din inside OpenBLAS). */
void ck_grad_dots_linear(float *out, int ldo, float *work,
                         const float *A1, int lda1, const float *G1, int ldg1, const int32_t *off1, int M1,
                         const float *A2, int lda2, const float *G2, int ldg2, const int32_t *off2, int M2,
                         int din, int dout, float scale) {
    if (M1 <= 0 || M2 <= 0) return;
    int N1 = off1[M1] - off1[0], N2 = off2[M2] - off2[0];
    if (dots_use_gram(N1, M1, N2, M2, din, dout)) {
        if (N1 <= 0 || N2 <= 0) return; /* every pair has an empty side: adds 0 */
        float *P = work, *Q = work + (size_t)N1 * N2;
        const float *a1 = A1 + (size_t)off1[0] * lda1, *a2 = A2 + (size_t)off2[0] * lda2;
        const float *g1 = G1 + (size_t)off1[0] * ldg1, *g2 = G2 + (size_t)off2[0] * ldg2;
        ck_gemm(P, N2, a1, lda1, a2, lda2, N1, N2, din, CK_TRANS_N, CK_TRANS_T, 1.0f, 0.0f);  /* [N1,din][din,N2] */
        ck_gemm(Q, N2, g1, ldg1, g2, ldg2, N1, N2, dout, CK_TRANS_N, CK_TRANS_T, 1.0f, 0.0f); /* [N1,dout][dout,N2] */
        for (int i = 0; i < M1; i++) {
            int r0 = off1[i] - off1[0], nr = off1[i + 1] - off1[i];
            for (int j = 0; j < M2; j++) {
                int c0 = off2[j] - off2[0], nc = off2[j + 1] - off2[j];
                if (nr <= 0 || nc <= 0) continue;
                size_t at = (size_t)r0 * N2 + c0;
                double v = block_dot(P + at, Q + at, N2, nr, nc);
                out[(size_t)i * ldo + j] += (float)((double)scale * v);
            }
        }
    } else {
        size_t D = (size_t)din * dout;
        if (D == 0) return;
        float *W1 = work, *W2 = work + (size_t)M1 * D;
        for (int i = 0; i < M1; i++) { /* [dout,T][T,din]; T = 0 writes zeros (ck_gemm with K = 0) */
            ck_gemm(W1 + i * D, din, G1 + (size_t)off1[i] * ldg1, ldg1, A1 + (size_t)off1[i] * lda1, lda1,
                    dout, din, off1[i + 1] - off1[i], CK_TRANS_T, CK_TRANS_N, 1.0f, 0.0f);
        }
        for (int j = 0; j < M2; j++) {
            ck_gemm(W2 + j * D, din, G2 + (size_t)off2[j] * ldg2, ldg2, A2 + (size_t)off2[j] * lda2, lda2,
                    dout, din, off2[j + 1] - off2[j], CK_TRANS_T, CK_TRANS_N, 1.0f, 0.0f);
        }
        /* [M1,D][D,M2]; D can exceed INT_MAX only for layers far beyond BERT-large */
        ck_gemm(out, ldo, W1, (int)D, W2, (int)D, M1, M2, (int)D, CK_TRANS_N, CK_TRANS_T, scale, 1.0f);
    }
}

/* Plain loops, always materialised, no scratch (work unused): for every pair (i, j) and every
 * weight (o, k), both per-example gradients are recomputed in double. O(M1 M2 din dout (T1 + T2)):
 * for tests only. */
void ck_grad_dots_linear_ref(float *out, int ldo, float *work,
                             const float *A1, int lda1, const float *G1, int ldg1, const int32_t *off1, int M1,
                             const float *A2, int lda2, const float *G2, int ldg2, const int32_t *off2, int M2,
                             int din, int dout, float scale) {
    (void)work;
    for (int i = 0; i < M1; i++) {
        for (int j = 0; j < M2; j++) {
            double v = 0.0;
            for (int o = 0; o < dout; o++) {
                for (int k = 0; k < din; k++) {
                    double w1 = 0.0, w2 = 0.0;
                    for (int t = off1[i]; t < off1[i + 1]; t++) {
                        w1 += (double)G1[(size_t)t * ldg1 + o] * (double)A1[(size_t)t * lda1 + k];
                    }
                    for (int s = off2[j]; s < off2[j + 1]; s++) {
                        w2 += (double)G2[(size_t)s * ldg2 + o] * (double)A2[(size_t)s * lda2 + k];
                    }
                    v += w1 * w2;
                }
            }
            out[(size_t)i * ldo + j] += (float)((double)scale * v);
        }
    }
}

/* G1[.., dout] (ldg1), off1[M1+1]; G2 likewise; work (M1 + M2) * dout floats ->
 *   out[i, j] (ldo) += scale * S1_i . S2_j,  S_i = sum_{t in i} G[t, :] (work rows, float).
 * Column sums in double; the M1 M2 dot products in double (ck_dot). */
void ck_grad_dots_bias(float *out, int ldo, float *work, const float *G1, int ldg1, const int32_t *off1, int M1,
                       const float *G2, int ldg2, const int32_t *off2, int M2, int dout, float scale) {
    float *S1 = work, *S2 = work + (size_t)M1 * dout;
    for (int i = 0; i < M1; i++) column_sums(S1 + (size_t)i * dout, G1, ldg1, off1[i], off1[i + 1], dout);
    for (int j = 0; j < M2; j++) column_sums(S2 + (size_t)j * dout, G2, ldg2, off2[j], off2[j + 1], dout);
    for (int i = 0; i < M1; i++) {
        for (int j = 0; j < M2; j++) {
            double v = ck_dot(S1 + (size_t)i * dout, S2 + (size_t)j * dout, (size_t)dout);
            out[(size_t)i * ldo + j] += (float)((double)scale * v);
        }
    }
}

/* ------------------------------------------------------------------ LayerNorm parameters */

/* One example, one block of nb columns starting at c0: double sums over its rows of
 * dout * xhat (weight) and dout (bias), xhat = (x - mean[t]) * rstd[t] recomputed in float as in
 * ck_layernorm_backward. */
CK_SIMD_CLONES
static void ln_example_block(float *restrict dw, float *restrict db, const float *restrict dout,
                             const float *restrict inp, const float *restrict mean, const float *restrict rstd,
                             int t0, int t1, int c0, int nb, int C) {
    double aw[CK_GN_BLOCK], ab[CK_GN_BLOCK];
    for (int c = 0; c < nb; c++) aw[c] = ab[c] = 0.0;
    for (int t = t0; t < t1; t++) {
        const float *x = inp + (size_t)t * C + c0, *d = dout + (size_t)t * C + c0;
        float m = mean[t], rs = rstd[t];
        for (int c = 0; c < nb; c++) {
            aw[c] += (double)(d[c] * ((x[c] - m) * rs));
            ab[c] += (double)d[c];
        }
    }
    for (int c = 0; c < nb; c++) {
        dw[c] = (float)aw[c];
        db[c] = (float)ab[c];
    }
}

/* dout[N,C], inp[N,C] (row stride C), mean[N], rstd[N] (saved by the forward), off[M+1] ->
 *   dweight[m, :] = sum_{t in m} dout[t,:] * xhat[t,:],  dbias[m, :] = sum_{t in m} dout[t,:]
 * (both [M, C], overwritten; an empty example gets zeros). */
void ck_layernorm_example_grads(float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *mean, const float *rstd, const int32_t *off, int M, int C) {
    for (int m = 0; m < M; m++) {
        for (int c0 = 0; c0 < C; c0 += CK_GN_BLOCK) {
            int nb = CK_MIN(CK_GN_BLOCK, C - c0);
            ln_example_block(dweight + (size_t)m * C + c0, dbias + (size_t)m * C + c0, dout, inp, mean, rstd,
                             off[m], off[m + 1], c0, nb, C);
        }
    }
}

/* ------------------------------------------------------------------ embedding table */

/* D[.., C] (ldd), ids[..], off[M+1] -> out[m] += scale * sum over distinct ids v in example m of
 * ||sum_{t in m, ids[t] = v} D[t,:]||^2.
 * Each id is handled at its first occurrence t in the example (an O(T^2) scan of int ids, cheap
 * beside the O(T C) row work): a unique id is squared in place, a repeated one summed into work[C]
 * first. Only the first C floats of work are used (the header's maxT * C is an upper bound). */
void ck_grad_norms_embedding(float *out, float *work, const float *D, int ldd, const int32_t *ids,
                             const int32_t *off, int M, int C, float scale) {
    for (int m = 0; m < M; m++) {
        int t0 = off[m], t1 = off[m + 1];
        double v = 0.0;
        for (int t = t0; t < t1; t++) {
            int32_t id = ids[t];
            int seen = 0, repeats = 0;
            for (int s = t0; s < t && !seen; s++) seen = ids[s] == id;
            if (seen) continue; /* counted at its first occurrence */
            for (int s = t + 1; s < t1 && !repeats; s++) repeats = ids[s] == id;
            const float *row = D + (size_t)t * ldd;
            if (!repeats) {
                v += ck_sum_squares(row, (size_t)C);
                continue;
            }
            for (int c = 0; c < C; c++) work[c] = row[c];
            for (int s = t + 1; s < t1; s++) {
                if (ids[s] != id) continue;
                const float *r = D + (size_t)s * ldd;
                for (int c = 0; c < C; c++) work[c] += r[c];
            }
            v += ck_sum_squares(work, (size_t)C);
        }
        out[m] += (float)((double)scale * v);
    }
}

/* Sums the rows of each example per distinct id, in first-occurrence order: example m owns rows
 * k in [soff[m], soff[m+1]) of S [.., C] with ids sid[k] (distinct within the example). O(T U)
 * int compares per example (U distinct ids) plus O(T C) row work. */
static void embedding_rows_per_id(float *S, int32_t *sid, int32_t *soff, const float *D, int ldd, const int32_t *ids,
                                  const int32_t *off, int M, int C) {
    int k = 0;
    soff[0] = 0;
    for (int m = 0; m < M; m++) {
        int kb = k;
        for (int t = off[m]; t < off[m + 1]; t++) {
            const float *row = D + (size_t)t * ldd;
            int j = kb;
            while (j < k && sid[j] != ids[t]) j++;
            float *dst = S + (size_t)j * C;
            if (j == k) {
                sid[k++] = ids[t];
                for (int c = 0; c < C; c++) dst[c] = row[c];
            } else {
                for (int c = 0; c < C; c++) dst[c] += row[c];
            }
        }
        soff[m + 1] = k;
    }
}

size_t ck_grad_dots_embedding_work_size(int N1, int N2, int C) { return ((size_t)N1 + (size_t)N2) * (size_t)C; }

size_t ck_grad_dots_embedding_iwork_size(int N1, int M1, int N2, int M2) {
    return (size_t)N1 + (size_t)N2 + (size_t)M1 + (size_t)M2 + 2;
}

/* D1[.., C] (ldd1), ids1, off1[M1+1]; D2 likewise ->
 *   out[i, j] (ldo) += scale * sum_{t in i, s in j, ids1[t] = ids2[s]} D1[t,:] . D2[s,:]
 * (the Frobenius product of the two examples' sparse table gradients). Each side's rows are first
 * summed per distinct id of each example (work: S1, S2; iwork: their ids and ranges), so a pair
 * costs U1 U2 int compares plus one double dot per shared id: one for the token-type table (every
 * token the same id), T for positions, instead of T1 T2 dots. */
void ck_grad_dots_embedding(float *out, int ldo, float *work, int32_t *iwork,
                            const float *D1, int ldd1, const int32_t *ids1, const int32_t *off1, int M1,
                            const float *D2, int ldd2, const int32_t *ids2, const int32_t *off2, int M2, int C, float scale) {
    if (M1 <= 0 || M2 <= 0) return;
    int N1 = off1[M1] - off1[0], N2 = off2[M2] - off2[0];
    float *S1 = work, *S2 = work + (size_t)N1 * C;
    int32_t *sid1 = iwork, *sid2 = iwork + N1, *soff1 = iwork + N1 + N2, *soff2 = soff1 + M1 + 1;
    embedding_rows_per_id(S1, sid1, soff1, D1, ldd1, ids1, off1, M1, C);
    embedding_rows_per_id(S2, sid2, soff2, D2, ldd2, ids2, off2, M2, C);
    for (int i = 0; i < M1; i++) {
        for (int j = 0; j < M2; j++) {
            double v = 0.0;
            for (int a = soff1[i]; a < soff1[i + 1]; a++) {
                for (int b = soff2[j]; b < soff2[j + 1]; b++) {
                    if (sid1[a] != sid2[b]) continue;
                    v += ck_dot(S1 + (size_t)a * C, S2 + (size_t)b * C, (size_t)C);
                    break; /* ids are distinct within an example */
                }
            }
            out[(size_t)i * ldo + j] += (float)((double)scale * v);
        }
    }
}
