/*
 * attention.c — fused multi-head scaled dot-product attention, forward and backward, per (batch,
 * head): scores by ck_gemm_small (our register-tiled kernel; OpenBLAS runs these 128 x 128 x 64
 * products at about half its large-matrix rate) on strided column slices of Q/K/V, additive
 * key mask, optional causal mask, stable row softmax, attention-probability dropout from the
 * counter RNG (recomputed in the backward, never stored), and the weighted sum of values.
 * Leaves out flash-style tiling (T <= 512 here, the T x T scores fit in cache) and the QKV/output
 * projections (linear.c). The _ref twins are plain loops with identical semantics.
 */
#include <math.h>
#include <string.h>

#include "ckernels.h"
#include "ck_internal.h"

/* Scratch: two T*T blocks (forward: dropped probabilities, and the probabilities themselves when
 * they are not kept; backward: dropped probabilities and dP / dS), then ck_gemm_small's packing
 * buffer for op(B) of every product: [HS, T] (scores, dP) or [T, HS] (the others). */
size_t ck_attention_work_size(int T, int HS) {
    const size_t a = ck_gemm_small_pack_size(T, HS), b = ck_gemm_small_pack_size(HS, T);
    return 2 * (size_t)T * (size_t)T + (a > b ? a : b);
}

/* Dropout counter of score (b, h, i, j): ((b*NH + h)*T + i)*T + j, as documented in the header. */
static inline uint64_t att_counter(int b, int h, int i, int j, int T, int NH) {
    return (((uint64_t)b * (uint64_t)NH + (uint64_t)h) * (uint64_t)T + (uint64_t)i) * (uint64_t)T
           + (uint64_t)j;
}

/* One score row s[T] (already scaled) -> probabilities in place. Keys j >= jend (causal) and j < j0
 * (outside a sliding window) get 0, the others get softmax(s + mask). A row whose every key is -inf gives all zeros instead of NaN;
 * a row masked with a large finite negative (Hugging Face's finfo.min) gives the uniform
 * distribution, as PyTorch does. */
CK_SIMD_CLONES
static void att_softmax_row(float *restrict s, const float *restrict mask, int j0, int jend, int T) {
    CK_FP_REASSOC
    for (int j = 0; j < j0; j++) s[j] = 0.0f;
    s += j0;
    if (mask) {
        mask += j0;
        for (int j = 0; j < jend - j0; j++) s[j] += mask[j];
    }
    const int n = jend - j0;
    const float mx = ck_max_f32(s, n);
    if (mx == -INFINITY) {
        for (int j = 0; j < T - j0; j++) s[j] = 0.0f;
        return;
    }
    float sum = 0.0f; /* at most T (<= a few thousand) terms, each in [0, 1] */
    for (int j = 0; j < n; j++) {
        float e = ck_expf(s[j] - mx);
        s[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < n; j++) s[j] *= inv;
    for (int j = n; j < T - j0; j++) s[j] = 0.0f;
}

/* pd[rows,T] = dropout(p[rows,T]) for the first rows queries of head (b, h): keep = u(seed, counter)
 * >= p_drop, scaled 1/(1-p). pd may alias p (the backward applies the mask to dP in place), hence no
 * restrict. */
CK_SIMD_CLONES
static void att_dropout(float *pd, const float *p, int b, int h, int T, int rows, int NH,
                        float p_drop, uint64_t seed_mixed) {
    const float s = 1.0f / (1.0f - p_drop);
    const uint64_t base = att_counter(b, h, 0, 0, T, NH);
    const size_t TT = (size_t)rows * T;
    CK_INTERLEAVE2
    for (size_t ij = 0; ij < TT; ij++) {
        pd[ij] = ck_rng_u24(seed_mixed, base + ij) >= p_drop ? p[ij] * s : 0.0f;
    }
}

/* d[n] = Pd[n] != 0 ? d[n] * s : 0: the dropout mask read off the saved dropped probabilities. */
CK_SIMD_CLONES
static void att_mask_from(float *restrict d, const float *restrict Pd, size_t n, float s) {
    for (size_t i = 0; i < n; i++) d[i] = Pd[i] != 0.0f ? d[i] * s : 0.0f;
}

/* Causal attention in blocks of query rows: block [i0, i1) needs only keys [k0, i1) (k0 > 0 inside a sliding
 * window), so at long T about half the products of the full square are made (5/8 at T = 256). Every entry
 * of a row outside its keys is written 0, so P is the full computation's. */
#define ATT_BLOCK 64

static inline int att_first_key(int i0, int causal) { return causal > 1 && i0 - causal + 1 > 0 ? i0 - causal + 1 : 0; }

static void att_causal_forward_head(float *out, int ldo, float *P, const float *qh, const float *kh, const float *vh, int ld_qkv,
                                    const float *km, int T, int Q, int HS, int causal, float scale, float *pack) {
    for (int i0 = 0; i0 < Q; i0 += ATT_BLOCK) {
        const int i1 = i0 + ATT_BLOCK < Q ? i0 + ATT_BLOCK : Q, k0 = att_first_key(i0, causal);
        /* S[i0:i1, k0:i1] = scale Q[i0:i1] K[k0:i1]^T */
        ck_gemm_small(P + (size_t)i0 * T + k0, T, qh + (size_t)i0 * ld_qkv, ld_qkv, kh + (size_t)k0 * ld_qkv, ld_qkv,
                      i1 - i0, i1 - k0, HS, CK_TRANS_N, CK_TRANS_T, scale, 0.0f, pack);
        for (int i = i0; i < i1; i++) att_softmax_row(P + (size_t)i * T, km, att_first_key(i, causal), i + 1, T);
        /* out[i0:i1] = P[i0:i1, k0:i1] V[k0:i1] */
        ck_gemm_small(out + (size_t)i0 * ldo, ldo, P + (size_t)i0 * T + k0, T, vh + (size_t)k0 * ld_qkv, ld_qkv,
                      i1 - i0, HS, i1 - k0, CK_TRANS_N, CK_TRANS_N, 1.0f, 0.0f, pack);
    }
}

/* q, k, v: [B*T, ld_qkv], head h at columns [h*HS, (h+1)*HS); key_mask[B,T] nullable ->
 *   att[B,NH,T,T] = softmax(scale * Q_h K_h^T + key_mask + causal)   (before dropout)
 *   out[B*T, C]   = dropout(att) @ V_h per head, C = NH*HS.
 * Heads bh = b*NH + h in [bh0, bh1) only (disjoint ranges touch disjoint memory, so callers may run
 * ranges concurrently, each with its own work). work: ck_attention_work_size(T, HS) floats.
 * att_drop[B,NH,T,T] (nullable): keeps the dropped probabilities for the backward, which then
 * needs no random numbers. */
void ck_attention_forward_heads(int bh0, int bh1, float *out, float *att, float *att_drop, const float *q,
                                const float *k, const float *v, int ld_qkv, const float *key_mask, float *work,
                                int B, int T, int NH, int HS, int causal, float scale,
                                float p_drop, uint64_t seed, int nq) {
    const int C = NH * HS;
    const uint64_t sm = ck_mix64(seed);
    float *pack = work + 2 * (size_t)T * T;
    const int Q = nq > 0 && nq < T ? nq : T;
    if (bh1 > B * NH) bh1 = B * NH;
    for (int bh = bh0 < 0 ? 0 : bh0; bh < bh1; bh++) {
        const int b = bh / NH, h = bh % NH;
        const float *km = key_mask ? key_mask + (size_t)b * T : NULL;
        const size_t qo = (size_t)b * T * ld_qkv + (size_t)h * HS;
        const float *qh = q + qo, *kh = k + qo, *vh = v + qo;
        /* att NULL (inference): the probabilities live in work's second half and are not kept */
        float *P = att ? att + ((size_t)b * NH + h) * T * T : work + (size_t)T * T;
        if (causal && p_drop <= 0.0f) {
            att_causal_forward_head(out + (size_t)b * T * C + (size_t)h * HS, C, P, qh, kh, vh, ld_qkv, km, T, Q, HS, causal, scale, pack);
            continue;
        }
        /* S[Q,T] = scale * Q_h @ K_h^T, written straight into att and normalised in place */
        ck_gemm_small(P, T, qh, ld_qkv, kh, ld_qkv, Q, T, HS, CK_TRANS_N, CK_TRANS_T, scale, 0.0f, pack);
        for (int i = 0; i < Q; i++) {
            /* causal > 1: a sliding window of `causal` keys, (i - causal, i] */
            const int j0 = causal > 1 && i - causal + 1 > 0 ? i - causal + 1 : 0;
            att_softmax_row(P + (size_t)i * T, km, j0, causal ? i + 1 : T, T);
        }
        const float *Pd = P;
        if (p_drop > 0.0f) {
            float *dst = att_drop ? att_drop + ((size_t)b * NH + h) * T * T : work;
            att_dropout(dst, P, b, h, T, Q, NH, p_drop, sm);
            Pd = dst;
        }
        /* out_h[Q,HS] = Pd[Q,T] @ V_h[T,HS] */
        ck_gemm_small(out + (size_t)b * T * C + (size_t)h * HS, C, Pd, T, vh, ld_qkv, Q, HS, T,
                      CK_TRANS_N, CK_TRANS_N, 1.0f, 0.0f, pack);
    }
}

/* Every head, in order (see ck_attention_forward_heads). */
void ck_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                          int ld_qkv, const float *key_mask, float *work,
                          int B, int T, int NH, int HS, int causal, float scale,
                          float p_drop, uint64_t seed) {
    ck_attention_forward_heads(0, B * NH, out, att, NULL, q, k, v, ld_qkv, key_mask, work, B, T, NH, HS, causal,
                               scale, p_drop, seed, 0);
}

/* dS = P * (dP - rowsum(dP * P)), in place over dP[rows,T] (softmax backward, row by row). */
CK_SIMD_CLONES
static void att_softmax_backward(float *restrict dP, const float *restrict P, int T, int rows) {
    for (int i = 0; i < rows; i++) {
        CK_FP_REASSOC
        float *d = dP + (size_t)i * T;
        const float *p = P + (size_t)i * T;
        float dot = 0.0f;
        for (int j = 0; j < T; j++) dot += d[j] * p[j];
        for (int j = 0; j < T; j++) d[j] = p[j] * (d[j] - dot);
    }
}

/* The backward of att_causal_forward_head, block by block (P outside a block's keys is 0, so its products and
 * row sums over those keys are the full ones): dV[k0:i1] += P_b^T dout[i0:i1]; dP_b = dout[i0:i1] V[k0:i1]^T;
 * dS_b = P_b (dP_b - rowsum(dP_b P_b)); dQ[i0:i1] += scale dS_b K[k0:i1]; dK[k0:i1] += scale dS_b^T Q[i0:i1].
 * accumulate == 0 writes the head's T rows of dq, dk and dv (zero where no block reaches). */
static void att_causal_backward_head(float *dq, float *dk, float *dv, int ldg, float *dP, const float *douth, int ldo,
                                     const float *P, const float *qh, const float *kh, const float *vh, int ld_qkv,
                                     int T, int Q, int HS, int causal, float scale, int accumulate, float *pack) {
    if (!accumulate) {
        for (int i = 0; i < T; i++) {
            memset(dq + (size_t)i * ldg, 0, (size_t)HS * sizeof(float));
            memset(dk + (size_t)i * ldg, 0, (size_t)HS * sizeof(float));
            memset(dv + (size_t)i * ldg, 0, (size_t)HS * sizeof(float));
        }
    }
    for (int i0 = 0; i0 < Q; i0 += ATT_BLOCK) {
        const int i1 = i0 + ATT_BLOCK < Q ? i0 + ATT_BLOCK : Q, k0 = att_first_key(i0, causal);
        const int m = i1 - i0, n = i1 - k0;
        const float *Pb = P + (size_t)i0 * T + k0;
        float *dPb = dP + (size_t)i0 * T + k0;
        ck_gemm_small(dv + (size_t)k0 * ldg, ldg, Pb, T, douth + (size_t)i0 * ldo, ldo, n, HS, m, CK_TRANS_T, CK_TRANS_N, 1.0f, 1.0f, pack);
        ck_gemm_small(dPb, T, douth + (size_t)i0 * ldo, ldo, vh + (size_t)k0 * ld_qkv, ld_qkv, m, n, HS, CK_TRANS_N, CK_TRANS_T, 1.0f, 0.0f, pack);
        for (int i = 0; i < m; i++) {
            CK_FP_REASSOC
            float *d = dPb + (size_t)i * T;
            const float *p = Pb + (size_t)i * T;
            float dot = 0.0f;
            for (int j = 0; j < n; j++) dot += d[j] * p[j];
            for (int j = 0; j < n; j++) d[j] = p[j] * (d[j] - dot);
        }
        ck_gemm_small(dq + (size_t)i0 * ldg, ldg, dPb, T, kh + (size_t)k0 * ld_qkv, ld_qkv, m, HS, n, CK_TRANS_N, CK_TRANS_N, scale, 1.0f, pack);
        ck_gemm_small(dk + (size_t)k0 * ldg, ldg, dPb, T, qh + (size_t)i0 * ld_qkv, ld_qkv, n, HS, m, CK_TRANS_T, CK_TRANS_N, scale, 1.0f, pack);
    }
}

/* dout[B*T, C], att[B,NH,T,T] (saved P), q/k/v as in the forward ->
 *   dv_h += Pd^T dout_h;  dPd = dout_h V_h^T;  dP = dPd * keep/(1-p);
 *   dS = P * (dP - rowsum(dP * P));  dq_h += scale dS K_h;  dk_h += scale dS^T Q_h.
 * dq, dk, dv have row stride ld_dqkv and accumulate. Masked keys have P = 0, hence zero gradient,
 * so key_mask is not needed here; causal (the forward's) only lets the products skip keys after each block of queries
 * (att_causal_backward_head, without dropout). Heads bh in [bh0, bh1) only, as in the forward; with
 * accumulate == 0 their dq, dk, dv slices are written instead (each gets exactly one product).
 * att_drop (nullable): the forward's dropped probabilities; the mask is then read off it (keep iff
 * Pd != 0: where a kept P is 0, dS = P * (...) is 0 either way), so no random numbers are drawn.
 * work: ck_attention_work_size(T, HS) floats. */
void ck_attention_backward_heads(int bh0, int bh1, float *dq, float *dk, float *dv, int ld_dqkv, float *work,
                                 const float *dout, const float *att, const float *att_drop, const float *q, const float *k,
                                 const float *v, int ld_qkv, int B, int T, int NH, int HS, int causal, float scale,
                                 float p_drop, uint64_t seed, int accumulate, int nq) {
    const float beta = accumulate ? 1.0f : 0.0f;
    const int C = NH * HS;
    const size_t TT = (size_t)T * T;
    const int Q = nq > 0 && nq < T ? nq : T;
    const size_t QT = (size_t)Q * T;
    const uint64_t sm = ck_mix64(seed);
    float *Pd_buf = work, *dP = work + TT, *pack = work + 2 * TT;
    if (bh1 > B * NH) bh1 = B * NH;
    for (int bh = bh0 < 0 ? 0 : bh0; bh < bh1; bh++) {
        const int b = bh / NH, h = bh % NH;
        const size_t qo = (size_t)b * T * ld_qkv + (size_t)h * HS;
        const size_t go = (size_t)b * T * ld_dqkv + (size_t)h * HS;
        const float *qh = q + qo, *kh = k + qo, *vh = v + qo;
        const float *douth = dout + (size_t)b * T * C + (size_t)h * HS;
        const float *P = att + ((size_t)b * NH + h) * TT;
        if (causal && p_drop <= 0.0f) {
            att_causal_backward_head(dq + go, dk + go, dv + go, ld_dqkv, dP, douth, C, P, qh, kh, vh, ld_qkv, T, Q, HS, causal, scale,
                                     accumulate, pack);
            continue;
        }
        const float *Pd = P;
        if (p_drop > 0.0f) {
            if (att_drop) {
                Pd = att_drop + ((size_t)b * NH + h) * TT;
            } else {
                att_dropout(Pd_buf, P, b, h, T, Q, NH, p_drop, sm);
                Pd = Pd_buf;
            }
        }
        /* dV_h[T,HS] += Pd^T[T,Q] @ dout_h[Q,HS] */
        ck_gemm_small(dv + go, ld_dqkv, Pd, T, douth, C, T, HS, Q, CK_TRANS_T, CK_TRANS_N, 1.0f, beta, pack);
        /* dPd[Q,T] = dout_h[Q,HS] @ V_h^T */
        ck_gemm_small(dP, T, douth, C, vh, ld_qkv, Q, T, HS, CK_TRANS_N, CK_TRANS_T, 1.0f, 0.0f, pack);
        /* dP = dPd * keep / (1-p): the same mask and scale as Pd, applied in place */
        if (p_drop > 0.0f) {
            if (att_drop) att_mask_from(dP, Pd, QT, 1.0f / (1.0f - p_drop));
            else att_dropout(dP, dP, b, h, T, Q, NH, p_drop, sm);
        }
        att_softmax_backward(dP, P, T, Q);
        /* dQ_h[Q,HS] += scale * dS[Q,T] @ K_h[T,HS];  dK_h[T,HS] += scale * dS^T @ Q_h[Q,HS] */
        ck_gemm_small(dq + go, ld_dqkv, dP, T, kh, ld_qkv, Q, HS, T, CK_TRANS_N, CK_TRANS_N, scale, beta, pack);
        ck_gemm_small(dk + go, ld_dqkv, dP, T, qh, ld_qkv, T, HS, Q, CK_TRANS_T, CK_TRANS_N, scale, beta, pack);
        if (Q < T && !accumulate) {
            for (int i = Q; i < T; i++) memset(dq + go + (size_t)i * ld_dqkv, 0, (size_t)HS * sizeof(float));
        }
    }
}

/* Every head, in order (see ck_attention_backward_heads). */
void ck_attention_backward(float *dq, float *dk, float *dv, int ld_dqkv, float *work,
                           const float *dout, const float *att, const float *q, const float *k,
                           const float *v, int ld_qkv, int B, int T, int NH, int HS, int causal, float scale,
                           float p_drop, uint64_t seed) {
    ck_attention_backward_heads(0, B * NH, dq, dk, dv, ld_dqkv, work, dout, att, NULL, q, k, v, ld_qkv, B, T, NH, HS,
                                causal, scale, p_drop, seed, 1, 0);
}

/* ------------------------------------------------------------------ plain-loop references */

/* Dropout factor of score (b, h, i, j): 0 if dropped, 1/(1-p) if kept, 1 without dropout. */
static float ref_drop_factor(uint64_t seed, uint64_t counter, float p_drop) {
    if (p_drop <= 0.0f) return 1.0f;
    return ck_rng_uniform(seed, counter) >= p_drop ? 1.0f / (1.0f - p_drop) : 0.0f;
}

/* Same contract as ck_attention_forward: one query row at a time, dot products in double, libm
 * expf, masked keys left out of the softmax. work holds one row of dropped probabilities. */
void ck_attention_forward_ref(float *out, float *att, const float *q, const float *k, const float *v,
                              int ld_qkv, const float *key_mask, float *work,
                              int B, int T, int NH, int HS, int causal, float scale,
                              float p_drop, uint64_t seed) {
    const int C = NH * HS;
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            /* head (b, h): row t of Q_h is qh[t*ld_qkv .. + HS) */
            const size_t ho = (size_t)b * T * ld_qkv + (size_t)h * HS;
            const float *qh = q + ho, *kh = k + ho, *vh = v + ho;
            for (int i = 0; i < T; i++) {
                float *row = att + (((size_t)b * NH + h) * T + i) * T;
                float mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    if ((causal && j > i) || (causal > 1 && j <= i - causal)) {
                        row[j] = -INFINITY;
                        continue;
                    }
                    double d = 0.0;
                    for (int c = 0; c < HS; c++) d += (double)qh[(size_t)i * ld_qkv + c] * kh[(size_t)j * ld_qkv + c];
                    row[j] = scale * (float)d + (key_mask ? key_mask[(size_t)b * T + j] : 0.0f);
                    if (row[j] > mx) mx = row[j];
                }
                double sum = 0.0;
                for (int j = 0; j < T; j++) {
                    row[j] = (mx == -INFINITY || row[j] == -INFINITY) ? 0.0f : expf(row[j] - mx);
                    sum += row[j];
                }
                for (int j = 0; j < T; j++) row[j] = sum > 0.0 ? (float)(row[j] / sum) : 0.0f;
                /* out[b*T + i, h*HS + c] = sum_j dropout(P)[i,j] v[j,c] */
                for (int j = 0; j < T; j++) {
                    work[j] = row[j] * ref_drop_factor(seed, att_counter(b, h, i, j, T, NH), p_drop);
                }
                float *o = out + ((size_t)b * T + i) * C + (size_t)h * HS;
                for (int c = 0; c < HS; c++) {
                    double acc = 0.0;
                    for (int j = 0; j < T; j++) acc += (double)work[j] * vh[(size_t)j * ld_qkv + c];
                    o[c] = (float)acc;
                }
            }
        }
    }
}

/* Same contract as ck_attention_backward; loops in the order of the math, sums in double.
 * work: Pd[T,T] (dropped probabilities) and dS[T,T]. */
void ck_attention_backward_ref(float *dq, float *dk, float *dv, int ld_dqkv, float *work,
                               const float *dout, const float *att, const float *q, const float *k,
                               const float *v, int ld_qkv, int B, int T, int NH, int HS, float scale,
                               float p_drop, uint64_t seed) {
    const int C = NH * HS;
    const size_t TT = (size_t)T * T;
    float *Pd = work, *dS = work + TT;
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const size_t ho = (size_t)b * T * ld_qkv + (size_t)h * HS;
            const size_t go = (size_t)b * T * ld_dqkv + (size_t)h * HS;
            const float *qh = q + ho, *kh = k + ho, *vh = v + ho;
            float *dqh = dq + go, *dkh = dk + go, *dvh = dv + go;
            const float *douth = dout + (size_t)b * T * C + (size_t)h * HS;
            const float *P = att + ((size_t)b * NH + h) * TT;
            /* Pd = P * m and dP = m * (dout_h V_h^T), m the dropout factor */
            for (int i = 0; i < T; i++) {
                for (int j = 0; j < T; j++) {
                    float m = ref_drop_factor(seed, att_counter(b, h, i, j, T, NH), p_drop);
                    double d = 0.0;
                    for (int c = 0; c < HS; c++) d += (double)douth[(size_t)i * C + c] * vh[(size_t)j * ld_qkv + c];
                    Pd[(size_t)i * T + j] = P[(size_t)i * T + j] * m;
                    dS[(size_t)i * T + j] = (float)d * m;
                }
            }
            /* dv[j,c] += sum_i Pd[i,j] dout[i,c] */
            for (int j = 0; j < T; j++) {
                for (int c = 0; c < HS; c++) {
                    double acc = 0.0;
                    for (int i = 0; i < T; i++) acc += (double)Pd[(size_t)i * T + j] * douth[(size_t)i * C + c];
                    dvh[(size_t)j * ld_dqkv + c] += (float)acc;
                }
            }
            /* dS = P * (dP - rowsum(dP * P)) */
            for (int i = 0; i < T; i++) {
                const float *p = P + (size_t)i * T;
                float *d = dS + (size_t)i * T;
                double dot = 0.0;
                for (int j = 0; j < T; j++) dot += (double)d[j] * p[j];
                for (int j = 0; j < T; j++) d[j] = (float)((double)p[j] * ((double)d[j] - dot));
            }
            /* dq[i,c] += scale sum_j dS[i,j] k[j,c];  dk[i,c] += scale sum_j dS[j,i] q[j,c] */
            for (int i = 0; i < T; i++) {
                for (int c = 0; c < HS; c++) {
                    double aq = 0.0, ak = 0.0;
                    for (int j = 0; j < T; j++) {
                        aq += (double)dS[(size_t)i * T + j] * kh[(size_t)j * ld_qkv + c];
                        ak += (double)dS[(size_t)j * T + i] * qh[(size_t)j * ld_qkv + c];
                    }
                    dqh[(size_t)i * ld_dqkv + c] += (float)(scale * aq);
                    dkh[(size_t)i * ld_dqkv + c] += (float)(scale * ak);
                }
            }
        }
    }
}
