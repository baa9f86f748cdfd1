/*
 * activations.c — elementwise ops on flat float arrays: GELU (erf form, Hugging Face "gelu", with
 * a vectorisable erfc accurate to ~2e-7 relative), tanh (pooler), residual add, scale, and inverted
 * dropout driven by a counter RNG so the backward recomputes the mask instead of storing it.
 * SwiGLU (Llama) and GeGLU (Gemma's tanh-form GELU) gated products, whose backwards write. No ReLU, no
 * in-kernel threading. Every other backward accumulates.
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
    CK_INTERLEAVE2
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x * ck_normal_cdf(x);
    }
}

/* dinp[n] += dout * gelu'(x), gelu'(x) = Phi(x) + x phi(x) (normal cdf and pdf). */
CK_SIMD_CLONES
void ck_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    CK_INTERLEAVE2
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float pdf = CK_INV_SQRT_2PI * ck_expf(-0.5f * x * x);
        dinp[i] += dout[i] * (ck_normal_cdf(x) + x * pdf);
    }
}

/* dinp[n] = dout * gelu'(x): ck_gelu_backward writing instead of accumulating (no zeroing pass). */
CK_SIMD_CLONES
void ck_gelu_backward_set(float *dinp, const float *dout, const float *inp, size_t n) {
    CK_INTERLEAVE2
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float pdf = CK_INV_SQRT_2PI * ck_expf(-0.5f * x * x);
        dinp[i] = dout[i] * (ck_normal_cdf(x) + x * pdf);
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
    CK_INTERLEAVE2
    for (size_t i = 0; i < n; i++) out[i] = ck_rng_u24(sm, offset + i) >= p ? inp[i] * s : 0.0f;
}

/* dinp[i] (+)= keep(i) ? dout / (1-p) : 0, the forward's mask recomputed from (seed, offset + i):
 * added when accumulate, written otherwise (p == 0 then copies). */
static inline void dropout_backward_impl(float *dinp, const float *dout, size_t n, float p, uint64_t seed,
                                         uint64_t offset, int accumulate) {
    if (p <= 0.0f) {
        if (accumulate) {
            for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        } else if (dinp != dout) {
            memmove(dinp, dout, n * sizeof(float));
        }
        return;
    }
    const uint64_t sm = ck_mix64(seed);
    const float s = 1.0f / (1.0f - p);
    CK_INTERLEAVE2
    for (size_t i = 0; i < n; i++) {
        float d = ck_rng_u24(sm, offset + i) >= p ? dout[i] * s : 0.0f;
        dinp[i] = accumulate ? dinp[i] + d : d;
    }
}

CK_SIMD_CLONES
void ck_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed, uint64_t offset) {
    dropout_backward_impl(dinp, dout, n, p, seed, offset, 1);
}

CK_SIMD_CLONES
void ck_dropout_backward_set(float *dinp, const float *dout, size_t n, float p, uint64_t seed, uint64_t offset) {
    dropout_backward_impl(dinp, dout, n, p, seed, offset, 0);
}

/* ------------------------------------------------------------------ GEMM epilogues
 * The linear layers' GEMMs run with beta = 0 and these add the bias in the same pass as the next
 * elementwise op, so a [rows, cols] activation is read and written once instead of three times. */

/* x[r, c] (row stride ld) += bias[c] for rows r < rows. */
CK_SIMD_CLONES
void ck_add_bias_rows(float *x, int ld, const float *bias, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * ld;
        for (int c = 0; c < cols; c++) row[c] += bias[c];
    }
}

/* pre[r, c] += bias[c]; out[r, c] = gelu(pre[r, c]) (both [rows, cols], contiguous). */
CK_SIMD_CLONES
void ck_bias_gelu_forward(float *restrict pre, float *restrict out, const float *restrict bias, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *p = pre + (size_t)r * cols, *o = out + (size_t)r * cols;
        CK_INTERLEAVE2
        for (int c = 0; c < cols; c++) {
            float x = p[c] + bias[c];
            p[c] = x;
            o[c] = x * ck_normal_cdf(x);
        }
    }
}

/* out[r, c] = gelu(pre[r, c] + bias[c]); pre is only read (inference keeps nothing for a backward). */
CK_SIMD_CLONES
void ck_bias_gelu_forward_infer(const float *restrict pre, float *restrict out, const float *restrict bias, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *p = pre + (size_t)r * cols;
        float *o = out + (size_t)r * cols;
        CK_INTERLEAVE2
        for (int c = 0; c < cols; c++) {
            float x = p[c] + bias[c];
            o[c] = x * ck_normal_cdf(x);
        }
    }
}

/* Training form of ck_bias_gelu_forward: x = pre + bias; out = gelu(x); pre = gelu'(x) (the
 * derivative Phi(x) + x phi(x), kept in place of x so the backward is one multiply). */
CK_SIMD_CLONES
void ck_bias_gelu_forward_train(float *restrict pre, float *restrict out, const float *restrict bias, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *p = pre + (size_t)r * cols, *o = out + (size_t)r * cols;
        CK_INTERLEAVE2
        for (int c = 0; c < cols; c++) {
            float x = p[c] + bias[c];
            float cdf = ck_normal_cdf(x);
            o[c] = x * cdf;
            p[c] = cdf + x * (CK_INV_SQRT_2PI * ck_expf(-0.5f * x * x));
        }
    }
}

/* dinp[n] = dout[n] * deriv[n] (the GELU backward from ck_bias_gelu_forward_train's derivative). */
CK_SIMD_CLONES
void ck_mul(float *dinp, const float *dout, const float *deriv, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * deriv[i];
}

/* out[r, c] = res[r, c] + dropout(y[r, c] + bias[c]) over [rows, cols] contiguous, the dropout
 * counter of element (r, c) being offset + r*cols + c (as ck_dropout_forward over the flat array).
 * y is only read. out may alias res. */
CK_SIMD_CLONES
void ck_bias_dropout_residual(float *out, const float *res, const float *y, const float *bias,
                              int rows, int cols, float p, uint64_t seed, uint64_t offset) {
    if (p <= 0.0f) {
        for (int r = 0; r < rows; r++) {
            const size_t o = (size_t)r * cols;
            for (int c = 0; c < cols; c++) out[o + c] = res[o + c] + (y[o + c] + bias[c]);
        }
        return;
    }
    const uint64_t sm = ck_mix64(seed);
    const float s = 1.0f / (1.0f - p);
    for (int r = 0; r < rows; r++) {
        const size_t o = (size_t)r * cols;
        CK_INTERLEAVE2
        for (int c = 0; c < cols; c++) {
            float v = (y[o + c] + bias[c]) * s;
            out[o + c] = res[o + c] + (ck_rng_u24(sm, offset + o + c) >= p ? v : 0.0f);
        }
    }
}


/* ---- SwiGLU (Llama's MLP): out = silu(gate) * up, silu(g) = g * sigmoid(g). */

/* gate, up [n] -> out [n]. ck_expf vectorises (libm's expf keeps the loop scalar); exp(-g) overflowing to
 * inf for g < -88 gives silu = -0, as it should. */
CK_SIMD_CLONES
void ck_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
    CK_INTERLEAVE2
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + ck_expf(-g)) * up[i];
    }
}

/* dgate = dout * up * silu'(gate), dup = dout * silu(gate), written (not accumulated);
 * silu'(g) = s (1 + g (1 - s)) with s = sigmoid(g). */
CK_SIMD_CLONES
void ck_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
    CK_INTERLEAVE2
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], s = 1.0f / (1.0f + ck_expf(-g));
        dup[i] = dout[i] * g * s;
        dgate[i] = dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
    }
}

void ck_swiglu_forward_ref(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)((double)gate[i] / (1.0 + exp(-(double)gate[i])) * up[i]);
}

/* ---------------------------------------------------------------- GeGLU (Gemma's gated MLP) */

/* gelu_tanh(x) = 0.5 x (1 + tanh(u)), u = k (x + 0.044715 x^3), k = sqrt(2 / pi) (PyTorch's
 * gelu(approximate="tanh"), transformers' "gelu_pytorch_tanh"), computed as x sigmoid(2u) (0.5 (1 + tanh u) =
 * sigmoid(2u)): no cancellation in either tail, and ck_expf vectorises. */
#define CK_GELU_TANH_K 0.7978845608028654f

/* gate, up [n] -> out [n] = gelu_tanh(gate) * up. */
CK_SIMD_CLONES
void ck_geglu_forward(float *out, const float *gate, const float *up, size_t n) {
    CK_INTERLEAVE2
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        float s = 1.0f / (1.0f + ck_expf(-2.0f * CK_GELU_TANH_K * (g + 0.044715f * g * g * g)));
        out[i] = g * s * up[i];
    }
}

/* dgate = dout * up * gelu_tanh'(gate), dup = dout * gelu_tanh(gate), written (not accumulated);
 * with s = sigmoid(2u): gelu_tanh'(g) = s + 2 g s (1 - s) k (1 + 3 * 0.044715 g^2). */
CK_SIMD_CLONES
void ck_geglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
    CK_INTERLEAVE2
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], g2 = g * g;
        float s = 1.0f / (1.0f + ck_expf(-2.0f * CK_GELU_TANH_K * (g + 0.044715f * g2 * g)));
        dup[i] = dout[i] * g * s;
        float d = s + 2.0f * g * s * (1.0f - s) * CK_GELU_TANH_K * (1.0f + 3.0f * 0.044715f * g2);
        dgate[i] = dout[i] * up[i] * d;
    }
}

void ck_geglu_forward_ref(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double g = gate[i];
        out[i] = (float)(0.5 * g * (1.0 + tanh(0.7978845608028654 * (g + 0.044715 * g * g * g))) * up[i]);
    }
}

void ck_geglu_backward_ref(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double g = gate[i], k = 0.7978845608028654;
        double t = tanh(k * (g + 0.044715 * g * g * g));
        dup[i] = (float)(dout[i] * 0.5 * g * (1.0 + t));
        dgate[i] = (float)(dout[i] * up[i] * (0.5 * (1.0 + t) + 0.5 * g * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * g * g)));
    }
}
