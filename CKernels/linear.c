/*
 * linear.c — fully connected layer y = x W^T + b with PyTorch's [out, in] weight layout.
 * Forward and backward are cblas_sgemm calls on strided rows (so Q/K/V column slices of a fused
 * buffer work without copies); the bias gradient is a column sum accumulated in double.
 * Leaves out activation fusion and per-example gradients (grad_norms.c).
 */
#include <cblas.h>
#include <string.h>

#include "ckernels.h"
#include "ck_internal.h"

/* Columns per block of the double-precision bias-gradient accumulator (lives on the stack). */
#define CK_LINEAR_DBIAS_BLOCK 256

/* out[N,OC] (ld_out) = inp[N,C] (ld_inp) @ weight[OC,C]^T + bias[OC]  (bias nullable; ck_gemm_bias). */
void ck_linear_forward(float *out, int ld_out, const float *inp, int ld_inp,
                       const float *weight, const float *bias, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (bias) {
        ck_gemm_bias(out, ld_out, inp, ld_inp, weight, C, N, OC, C, CK_TRANS_N, CK_TRANS_T, 1.0f, 0.0f, bias);
    } else {
        ck_gemm(out, ld_out, inp, ld_inp, weight, C, N, OC, C, CK_TRANS_N, CK_TRANS_T, 1.0f, 0.0f);
    }
}

/* dout[N,OC] (ld_dout), inp[N,C] (ld_inp), weight[OC,C] ->
 *   dinp[N,C]   (ld_dinp) += dout @ weight
 *   dweight[OC,C]         += dout^T @ inp
 *   dbias[OC]             += sum_n dout[n, :]
 * All three nullable. The GEMMs accumulate with beta = 1. */
void ck_linear_backward(float *dinp, int ld_dinp, float *dweight, float *dbias,
                        const float *dout, int ld_dout, const float *inp, int ld_inp,
                        const float *weight, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (dinp) { /* [N,OC] @ [OC,C] */
        ck_gemm(dinp, ld_dinp, dout, ld_dout, weight, C, N, C, OC, CK_TRANS_N, CK_TRANS_N, 1.0f, 1.0f);
    }
    if (dweight) { /* [N,OC]^T @ [N,C] */
        ck_gemm(dweight, C, dout, ld_dout, inp, ld_inp, OC, C, N, CK_TRANS_T, CK_TRANS_N, 1.0f, 1.0f);
    }
    if (dbias) ck_column_sums_add(dbias, dout, ld_dout, N, OC);
}

/* N can be B*T (thousands of rows): sum in double, a block of columns at a time so the inner loop
 * runs along a contiguous row and vectorises. */
void ck_column_sums_add(float *dst, const float *G, int ldg, int N, int cols) {
    double acc[CK_LINEAR_DBIAS_BLOCK];
    for (int o0 = 0; o0 < cols; o0 += CK_LINEAR_DBIAS_BLOCK) {
        int nb = CK_MIN(CK_LINEAR_DBIAS_BLOCK, cols - o0);
        for (int o = 0; o < nb; o++) acc[o] = 0.0;
        for (int n = 0; n < N; n++) {
            const float *row = G + (size_t)n * ldg + o0;
            for (int o = 0; o < nb; o++) acc[o] += (double)row[o];
        }
        for (int o = 0; o < nb; o++) dst[o0 + o] += (float)acc[o];
    }
}

/* One fixed block of rows of a column sum: partial[c] = sum_{n < N} G[n, c] in double, rows in order
 * (overwrites). Rows are read whole and contiguous, so this streams; callers cut the rows into blocks
 * of a fixed size whatever the core count and add the blocks' partials in block order
 * (ck_column_partials_add): the result does not depend on how blocks are spread over cores. */
CK_SIMD_CLONES
void ck_column_sums_partial(double *restrict partial, const float *restrict G, int ldg, int N, int cols) {
    for (int c = 0; c < cols; c++) partial[c] = 0.0;
    for (int n = 0; n < N; n++) {
        const float *row = G + (size_t)n * ldg;
        for (int c = 0; c < cols; c++) partial[c] += (double)row[c];
    }
}

/* dst[c] += (float) sum_{b < blocks} partial[b * cols + c], blocks in order from 0.0. */
void ck_column_partials_add(float *dst, const double *partial, int blocks, int cols) {
    for (int c = 0; c < cols; c++) {
        double s = 0.0;
        for (int b = 0; b < blocks; b++) s += partial[(size_t)b * cols + c];
        dst[c] += (float)s;
    }
}
