/*
 * layernorm.c — LayerNorm over the last dimension (PyTorch nn.LayerNorm, biased variance, eps
 * inside the sqrt), forward saving mean/rstd per row and the matching backward.
 * Row statistics (C <= 4096 terms) are float sums made vectorisable with CK_FP_REASSOC and a
 * two-pass variance; the weight/bias gradients sum over all N rows and accumulate in double.
 * Leaves out RMSNorm and non-last-axis normalisation.
 */
#include <math.h>

#include "ckernels.h"
#include "ck_internal.h"

/* Columns per block of the double accumulators for dweight/dbias (on the stack). */
#define CK_LN_BLOCK 256

/* One row: returns mean and writes rstd; x[C]. Two passes (mean, then centred squares) avoid the
 * cancellation of E[x^2] - E[x]^2 when |mean| >> std. */
CK_SIMD_CLONES
static void ln_row_forward(float *restrict out, float *restrict mean_out, float *restrict rstd_out,
                           const float *restrict x, const float *restrict w, const float *restrict b,
                           int C, float eps) {
    CK_FP_REASSOC
    float s = 0.0f;
    for (int c = 0; c < C; c++) s += x[c];
    float m = s / (float)C;
    float v = 0.0f;
    for (int c = 0; c < C; c++) {
        float d = x[c] - m;
        v += d * d;
    }
    float rs = 1.0f / sqrtf(v / (float)C + eps);
    for (int c = 0; c < C; c++) out[c] = (x[c] - m) * rs * w[c] + b[c];
    *mean_out = m;
    *rstd_out = rs;
}

/* inp[N,C], weight[C], bias[C] -> out[N,C] = (x - mean) * rstd * weight + bias; mean[N], rstd[N]
 * saved for the backward. */
void ck_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        ln_row_forward(out + (size_t)n * C, mean + n, rstd + n, inp + (size_t)n * C, weight, bias, C, eps);
    }
}

/* One row of dinp: with xhat = (x - mean) rstd and g = dout * w,
 *   dinp (+)= rstd * (g - mean(g) - xhat * mean(g * xhat))     (llm.c's form),
 * added to dinp when accumulate, written over it otherwise. */
static inline void ln_row_backward_impl(float *restrict dinp, const float *restrict dout, const float *restrict x,
                                        const float *restrict w, float m, float rs, int C, int accumulate) {
    CK_FP_REASSOC
    float g_sum = 0.0f, gx_sum = 0.0f;
    for (int c = 0; c < C; c++) {
        float g = dout[c] * w[c];
        g_sum += g;
        gx_sum += g * (x[c] - m) * rs;
    }
    float g_mean = g_sum / (float)C, gx_mean = gx_sum / (float)C;
    for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * rs;
        float d = rs * (dout[c] * w[c] - g_mean - xhat * gx_mean);
        dinp[c] = accumulate ? dinp[c] + d : d;
    }
}

CK_SIMD_CLONES
static void ln_row_backward(float *restrict dinp, const float *restrict dout, const float *restrict x,
                            const float *restrict w, float m, float rs, int C) {
    ln_row_backward_impl(dinp, dout, x, w, m, rs, C, 1);
}

CK_SIMD_CLONES
static void ln_row_backward_set(float *restrict dinp, const float *restrict dout, const float *restrict x,
                                const float *restrict w, float m, float rs, int C) {
    ln_row_backward_impl(dinp, dout, x, w, m, rs, C, 0);
}

/* dinp[N,C] = d loss / d inp (written, not accumulated): the input part of ck_layernorm_backward. */
void ck_layernorm_backward_input_set(float *dinp, const float *dout, const float *inp, const float *weight,
                                     const float *mean, const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        size_t o = (size_t)n * C;
        ln_row_backward_set(dinp + o, dout + o, inp + o, weight, mean[n], rstd[n], C);
    }
}

/* dout[N,C], inp[N,C], weight[C], mean[N], rstd[N] ->
 *   dinp[N,C] += d loss / d inp;  dweight[C] += sum_n dout * xhat;  dbias[C] += sum_n dout.
 * dweight and dbias nullable (dinp is not). */
void ck_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean, const float *rstd,
                           int N, int C) {
    for (int n = 0; n < N; n++) {
        size_t o = (size_t)n * C;
        ln_row_backward(dinp + o, dout + o, inp + o, weight, mean[n], rstd[n], C);
    }
    if (!dweight && !dbias) return;
    ck_layernorm_param_grads(dweight, dbias, dout, inp, C, mean, rstd, N, C);
}

/* Column sums over N rows (B*T, thousands): double accumulators, a block of columns at a time so
 * the inner loop stays contiguous. */
void ck_layernorm_param_grads(float *dweight, float *dbias, const float *dout, const float *inp, int ld,
                              const float *mean, const float *rstd, int N, int cols) {
    if (!dweight && !dbias) return;
    double aw[CK_LN_BLOCK], ab[CK_LN_BLOCK];
    for (int c0 = 0; c0 < cols; c0 += CK_LN_BLOCK) {
        int nb = CK_MIN(CK_LN_BLOCK, cols - c0);
        for (int c = 0; c < nb; c++) aw[c] = ab[c] = 0.0;
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * ld + c0, *d = dout + (size_t)n * ld + c0;
            float m = mean[n], rs = rstd[n];
            for (int c = 0; c < nb; c++) {
                aw[c] += (double)(d[c] * ((x[c] - m) * rs));
                ab[c] += (double)d[c];
            }
        }
        for (int c = 0; c < nb; c++) {
            if (dweight) dweight[c0 + c] += (float)aw[c];
            if (dbias) dbias[c0 + c] += (float)ab[c];
        }
    }
}

/* ck_layernorm_param_grads for one fixed block of rows, into double partials (overwritten):
 *   pw[c] = sum_n dout[n,c] xhat[n,c];  pb[c] = sum_n dout[n,c]   (rows in order)
 * Contiguous rows (row stride ld), so it streams and can follow the input backward of the same rows
 * while they are in cache; blocks are added in order with ck_column_partials_add. */
CK_SIMD_CLONES
void ck_layernorm_param_partial(double *restrict pw, double *restrict pb, const float *restrict dout, const float *restrict inp,
                                int ld, const float *restrict mean, const float *restrict rstd, int N, int cols) {
    for (int c = 0; c < cols; c++) pw[c] = pb[c] = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * ld, *d = dout + (size_t)n * ld;
        float m = mean[n], rs = rstd[n];
        for (int c = 0; c < cols; c++) {
            pw[c] += (double)(d[c] * ((x[c] - m) * rs));
            pb[c] += (double)d[c];
        }
    }
}
