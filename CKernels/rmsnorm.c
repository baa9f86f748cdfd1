/*
 * rmsnorm.c — RMSNorm over the last dimension (Hugging Face LlamaRMSNorm): y = w * x / sqrt(mean(x^2) + eps),
 * the forward saving rstd per row, and the backward. Row sums (C <= 8192 terms) are float sums made
 * vectorisable with CK_FP_REASSOC; the weight gradient sums over all N rows in double. No bias, no
 * mean subtraction (that is LayerNorm, layernorm.c).
 */
#include <math.h>

#include "ckernels.h"
#include "ck_internal.h"

/* inp[N,C], weight[C] -> out[N,C] = inp * rstd * weight, rstd[N] = 1 / sqrt(mean(inp^2) + eps). */
void ck_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        CK_FP_REASSOC
        const float *restrict x = inp + (size_t)n * C;
        float *restrict y = out + (size_t)n * C;
        float s = 0.0f;
        for (int c = 0; c < C; c++) s += x[c] * x[c];
        float rs = 1.0f / sqrtf(s / (float)C + eps);
        for (int c = 0; c < C; c++) y[c] = weight[c] * (x[c] * rs);
        if (rstd) rstd[n] = rs;
    }
}

/* With xhat = x rstd and g = dout * w:  dinp (+)= rstd * (g - xhat * mean(g * xhat));
 * dweight (nullable) += sum over rows of dout * xhat (double).  dinp is added to when accumulate,
 * written otherwise. */
void ck_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         const float *rstd, int N, int C, int accumulate) {
    for (int n = 0; n < N; n++) {
        CK_FP_REASSOC
        const float *restrict x = inp + (size_t)n * C, *restrict dy = dout + (size_t)n * C;
        float *restrict dx = dinp + (size_t)n * C;
        float rs = rstd[n];
        float gx = 0.0f;
        for (int c = 0; c < C; c++) gx += dy[c] * weight[c] * x[c] * rs;
        float m = gx / (float)C;
        if (accumulate) {
            for (int c = 0; c < C; c++) dx[c] += rs * (dy[c] * weight[c] - x[c] * rs * m);
        } else {
            for (int c = 0; c < C; c++) dx[c] = rs * (dy[c] * weight[c] - x[c] * rs * m);
        }
    }
    if (dweight) ck_rmsnorm_backward_weight(dweight, dout, inp, rstd, N, C);
}

/* dweight[C] += sum over the N rows of dout * inp * rstd, in double (the weight half of the backward). */
void ck_rmsnorm_backward_weight(float *dweight, const float *dout, const float *inp, const float *rstd, int N, int C) {
    for (int c0 = 0; c0 < C; c0 += 256) {
        int cw = C - c0 < 256 ? C - c0 : 256;
        double acc[256] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C + c0, *dy = dout + (size_t)n * C + c0;
            for (int c = 0; c < cw; c++) acc[c] += (double)(dy[c] * x[c] * rstd[n]);
        }
        for (int c = 0; c < cw; c++) dweight[c0 + c] += (float)acc[c];
    }
}

/* Plain double-precision twins of the two above (same contracts). */
void ck_rmsnorm_forward_ref(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += (double)inp[n * C + c] * inp[n * C + c];
        double rs = 1.0 / sqrt(s / C + eps);
        for (int c = 0; c < C; c++) out[n * C + c] = (float)(weight[c] * (inp[n * C + c] * rs));
        if (rstd) rstd[n] = (float)rs;
    }
}

void ck_rmsnorm_backward_ref(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                             const float *rstd, int N, int C, int accumulate) {
    for (int n = 0; n < N; n++) {
        double rs = rstd[n], gx = 0;
        for (int c = 0; c < C; c++) gx += (double)dout[n * C + c] * weight[c] * inp[n * C + c] * rs;
        for (int c = 0; c < C; c++) {
            double v = rs * ((double)dout[n * C + c] * weight[c] - inp[n * C + c] * rs * gx / C);
            dinp[n * C + c] = (float)((accumulate ? dinp[n * C + c] : 0) + v);
            if (dweight) dweight[c] += (float)((double)dout[n * C + c] * inp[n * C + c] * rs);
        }
    }
}
