/*
 * reductions.c — long dot products and squared norms in double precision, the building blocks of
 * VoG accumulation, TracIn dot products, EL2N and gradient norms. Float inputs are widened to
 * double before the multiply-add; CK_FP_REASSOC lets the double sum vectorise.
 * Leaves out compensated (Kahan) summation: double accumulation is enough for float inputs.
 */
#include <math.h>

#include "ckernels.h"
#include "ck_internal.h"

/* x[n] -> sum_i x_i^2 (double). */
double ck_sum_squares(const float *x, size_t n) {
    CK_FP_REASSOC
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = (double)x[i];
        acc += a * a;
    }
    return acc;
}

/* x[n], y[n] -> sum_i x_i y_i (double). */
double ck_dot(const float *x, const float *y, size_t n) {
    CK_FP_REASSOC
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) acc += (double)x[i] * (double)y[i];
    return acc;
}

/* ---------------------------------------------------------------- VoG (scores) */

/* One Welford step over checkpoints, elementwise on n floats: g is the k-th sample (k >= 1),
 *   d = g - mean;  mean += d / k;  m2 += d * (g - mean_new).
 * k = 1 gives mean = g, m2 += 0 exactly. Float state: K is a handful of checkpoints. */
CK_SIMD_CLONES
void ck_vog_accumulate(float *mean, float *m2, const float *g, size_t n, int k) {
    float fk = (float)k;
    for (size_t i = 0; i < n; i++) {
        float d = g[i] - mean[i];
        float mu = mean[i] + d / fk;
        m2[i] += d * (g[i] - mu);
        mean[i] = mu;
    }
}


/* m2[n] after K Welford steps -> sum_i sqrt(max(m2_i, 0) / K) in double (population std per
 * element; the clamp removes rounding negatives, NaN propagates). */
CK_SIMD_CLONES
double ck_vog_sum_std(const float *m2, size_t n, int K) {
    CK_FP_REASSOC
    double inv_k = 1.0 / (double)K, acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = (double)m2[i];
        acc += CK_SQRT_NOERRNO((v < 0.0 ? 0.0 : v) * inv_k);
    }
    return acc;
}
