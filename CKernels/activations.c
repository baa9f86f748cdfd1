/*
 * activations.c — elementwise ops on flat float arrays: GELU (erf form, Hugging Face "gelu", with
 * a vectorisable erfc accurate to ~2e-7 relative), tanh (pooler), residual add, scale, and inverted
 * dropout driven by a counter RNG so the backward recomputes the mask instead of storing it.
 * No tanh-approximate GELU, no ReLU/SiLU, no in-kernel threading. Every backward accumulates.
 */
#include <math.h>
#include <string.h>

#include "ckernels.h"
#include "ck_internal.h"

#define CK_INV_SQRT2 0.70710678118654752440f
#define CK_INV_SQRT_2PI 0.39894228040143267794f

/* erfc(a) for a >= 0 with relative error ~2e-7 over the whole range (Numerical Recipes' erfcc,
 * a Chebyshev fit: erfc(a) = t exp(-a^2 + P(t)), t = 1/(1 + a/2)), so both GELU tails are accurate:
 * libm's erff is an opaque ~25 ns call that keeps the loop scalar; this one vectorises. */
static inline float ck_erfc_nonneg(float a) {
    float t = 1.0f / (1.0f + 0.5f * a);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * ck_expf(p - a * a);
}

/* Standard normal cdf Phi(x) = 0.5 (1 + erf(x / sqrt 2)), written with erfc(|x| / sqrt 2) so the
 * negative tail keeps its relative precision (1 + erf would cancel). */
static inline float ck_normal_cdf(float x) {
    float e = ck_erfc_nonneg(fabsf(x) * CK_INV_SQRT2);
    return x >= 0.0f ? 1.0f - 0.5f * e : 0.5f * e;
}

/* out[n] = 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x), x = inp[n]. */
CK_SIMD_CLONES
void ck_gelu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x * ck_normal_cdf(x);
    }
}

/* dinp[n] += dout * gelu'(x), gelu'(x) = Phi(x) + x phi(x) (normal cdf and pdf). */
CK_SIMD_CLONES
void ck_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float pdf = CK_INV_SQRT_2PI * ck_expf(-0.5f * x * x);
        dinp[i] += dout[i] * (ck_normal_cdf(x) + x * pdf);
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
