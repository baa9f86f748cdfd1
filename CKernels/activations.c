/*
 * activations.c — elementwise ops on flat float arrays: GELU (exact erf form, as Hugging Face
 * "gelu"), tanh (pooler), residual add, scale, and inverted dropout driven by a counter RNG so the
 * backward recomputes the mask instead of storing it. No tanh-approximate GELU, no ReLU/SiLU, and
 * no in-kernel threading. Every backward accumulates into d*.
 */
#include <math.h>
#include <string.h>

#include "ckernels.h"
#include "ck_internal.h"

#define CK_INV_SQRT2 0.70710678118654752440f
#define CK_INV_SQRT_2PI 0.39894228040143267794f

/* out[n] = 0.5 x (1 + erf(x / sqrt 2)), x = inp[n]. */
CK_SIMD_CLONES
void ck_gelu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * CK_INV_SQRT2));
    }
}

/* dinp[n] += dout * gelu'(x), gelu'(x) = Phi(x) + x phi(x) (normal cdf and pdf). */
CK_SIMD_CLONES
void ck_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * CK_INV_SQRT2));
        float pdf = CK_INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

/* out[n] = tanh(inp[n]). */
void ck_tanh_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

/* dinp[n] += dout * (1 - out^2), from the saved forward output. */
void ck_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float y = out[i];
        dinp[i] += dout[i] * (1.0f - y * y);
    }
}

/* out[n] = a[n] + b[n]; out may alias a or b (no restrict on purpose). */
void ck_add(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* x[n] *= s. */
void ck_scale(float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

/* Uniform in [0,1) with 24 random bits: see ck_rng_u24 in ck_internal.h for the exact formula. */
float ck_rng_uniform(uint64_t seed, uint64_t counter) {
    return ck_rng_u24(ck_mix64(seed), counter);
}

/* out[n] = keep(i) ? inp / (1-p) : 0, keep(i) = uniform(seed, offset + i) >= p.
 * p == 0 copies (every u >= 0 is kept); p == 1 drops everything. out may alias inp. */
CK_SIMD_CLONES
void ck_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed, uint64_t offset) {
    if (p <= 0.0f) {
        if (out != inp) memmove(out, inp, n * sizeof(float));
        return;
    }
    const uint64_t sm = ck_mix64(seed);
    const float s = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) out[i] = ck_rng_u24(sm, offset + i) >= p ? inp[i] * s : 0.0f;
}

/* dinp[n] += keep(i) ? dout / (1-p) : 0, the forward's mask recomputed from (seed, offset + i). */
CK_SIMD_CLONES
void ck_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed, uint64_t offset) {
    if (p <= 0.0f) {
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    const uint64_t sm = ck_mix64(seed);
    const float s = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) dinp[i] += ck_rng_u24(sm, offset + i) >= p ? dout[i] * s : 0.0f;
}
