/*
 * optim.c — in-place optimizer steps over one flat parameter tensor, following PyTorch's
 * single-tensor (for-loop) CPU code operation by operation, so results agree to float rounding:
 * AdamW (decoupled weight decay, bias correction) and SGD with momentum (dampening 0).
 * Leaves out AMSGrad, Nesterov, maximize, gradient clipping and learning-rate schedules (Swift).
 */
#include <math.h>

#include "ckernels.h"
#include "ck_internal.h"

/* param[n], m[n], v[n] updated in place from grad[n]; step t >= 1. PyTorch's sequence:
 *   p *= 1 - lr*wd
 *   m.lerp_(g, 1-b1)                 (= b1 m + (1-b1) g, evaluated as m + (1-b1)(g - m))
 *   v = v*b2 + (1-b2) g g
 *   p += (-lr/(1-b1^t)) m / (sqrt(v) / sqrt(1-b2^t) + eps)
 * Scalars are formed in double (PyTorch's Python floats) and rounded to float once. */
CK_SIMD_CLONES
void ck_adamw_update(float *param, float *m, float *v, const float *grad, size_t n,
                     float lr, float beta1, float beta2, float eps, float weight_decay, int t) {
    const float decay = (float)(1.0 - (double)lr * (double)weight_decay);
    const float w1 = (float)(1.0 - (double)beta1);
    const float w2 = (float)(1.0 - (double)beta2);
    const double bc1 = 1.0 - pow((double)beta1, (double)t);
    const double bc2 = 1.0 - pow((double)beta2, (double)t);
    const float neg_step = (float)(-(double)lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const int lerp_low = w1 < 0.5f; /* PyTorch's lerp picks the form by weight for accuracy */
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        float p = param[i] * decay;
        float mi = lerp_low ? m[i] + w1 * (g - m[i]) : g - (g - m[i]) * (1.0f - w1);
        float vi = v[i] * beta2 + w2 * g * g;
        float denom = CK_SQRT_NOERRNO(vi) / bc2_sqrt + eps;   /* vi >= 0 */
        param[i] = p + neg_step * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

/* param[n] (and buf[n] when momentum != 0) updated in place from grad[n]. PyTorch's sequence:
 *   g' = g + wd p;  buf = first ? g' : buf*momentum + g';  p += -lr * (momentum ? buf : g').
 * buf is not touched (and may be NULL) when momentum == 0. */
void ck_sgd_update(float *param, float *buf, const float *grad, size_t n,
                   float lr, float momentum, float weight_decay, int first) {
    const float neg_lr = -lr;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i] + weight_decay * param[i];
        if (momentum != 0.0f) {
            float b = first ? g : buf[i] * momentum + g;
            buf[i] = b;
            g = b;
        }
        param[i] = param[i] + neg_lr * g;
    }
}
