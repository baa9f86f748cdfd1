/*
 * reductions.c — long dot products and squared norms in double precision, the building blocks of
 * VoG accumulation, TracIn dot products, EL2N and gradient norms. Float inputs are widened to
 * double before the multiply-add; CK_FP_REASSOC lets the double sum vectorise.
 * Leaves out compensated (Kahan) summation: double accumulation is enough for float inputs.
 */
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
