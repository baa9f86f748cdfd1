/*
 * ck_internal.h — private helpers shared by the CKernels .c files (never included by ckernels.h).
 * Compiler portability macros (SIMD clones, float reassociation), the counter RNG used by dropout
 * and attention, and index helpers. Nothing here is public API.
 */
#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* SwiftPM compiles C at -O2 without -march, i.e. plain SSE2. Hot elementwise loops get
 * function multi-versioning: the loader picks the AVX-512 / AVX2 clone at run time via ifunc.
 * Only on x86-64 with GCC or clang; define CK_NO_CLONES to turn it off (e.g. for a debugger). */
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__)) && !defined(CK_NO_CLONES)
#define CK_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CK_SIMD_CLONES
#endif

/* Place at the start of a block holding a float reduction: lets clang reassociate the sum so it
 * vectorises (8-16 partial sums instead of one serial chain) and fuse mul+add. GCC ignores it
 * (GCC has no per-block equivalent), so it expands to nothing there. */
#if defined(__clang__)
#define CK_FP_REASSOC _Pragma("clang fp reassociate(on) contract(fast)")
#else
#define CK_FP_REASSOC
#endif

/* Place right before a loop whose body is one long dependency chain (erfc + exp in GELU, the
 * 64-bit mixer of the counter RNG): the vectoriser then runs two independent vectors per iteration,
 * so one's latency hides behind the other's work. GELU's training form went from 3.1 to 2.1 ns an
 * element on one core here. Clang only; others ignore it. */
#if defined(__clang__)
#define CK_INTERLEAVE2 _Pragma("clang loop interleave_count(2)")
#else
#define CK_INTERLEAVE2
#endif

/* Debug-only asserts: kernels do not validate (Swift checks shapes once), but a build with
 * -DCK_DEBUG can check internal invariants. */
#ifdef CK_DEBUG
#include <assert.h>
#define CK_ASSERT(x) assert(x)
#else
#define CK_ASSERT(x) ((void)0)
#endif

/* sqrt without errno (libm's sqrt may set EDOM for negative input, which keeps the loop scalar:
 * sqrtsd plus a libm call per element). Callers pass non-negative arguments;
 * works for float and double. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_elementwise_sqrt)
#define CK_SQRT_NOERRNO(x) __builtin_elementwise_sqrt(x)
#endif
#endif
#ifndef CK_SQRT_NOERRNO
#define CK_SQRT_NOERRNO(x) sqrt(x)
#endif

/* 8 floats as one vector (clang/GCC vector extensions): one ymm register in the AVX2 clone of a
 * CK_SIMD_CLONES function, two SSE registers in the default one. Unaligned loads and stores. */
typedef float ck_v8 __attribute__((vector_size(32), aligned(4)));

/* max of s[0..n), -inf for n == 0; NaNs are skipped (as fmaxf does). A plain `m = s[j] > m ? s[j] : m`
 * loop stays scalar (clang does not vectorise that select reduction), so: four 8-lane maxima. */
static inline __attribute__((always_inline)) float ck_max_f32(const float *s, int n) {
    float m = -__builtin_inff();
    int j = 0;
#if defined(__clang__) && defined(__has_builtin)
#if __has_builtin(__builtin_elementwise_max)
    if (n >= 32) {
        ck_v8 m0, m1, m2, m3;
        __builtin_memcpy(&m0, s, 32), __builtin_memcpy(&m1, s + 8, 32);
        __builtin_memcpy(&m2, s + 16, 32), __builtin_memcpy(&m3, s + 24, 32);
        for (j = 32; j + 32 <= n; j += 32) {
            ck_v8 x0, x1, x2, x3;
            __builtin_memcpy(&x0, s + j, 32), __builtin_memcpy(&x1, s + j + 8, 32);
            __builtin_memcpy(&x2, s + j + 16, 32), __builtin_memcpy(&x3, s + j + 24, 32);
            m0 = __builtin_elementwise_max(m0, x0), m1 = __builtin_elementwise_max(m1, x1);
            m2 = __builtin_elementwise_max(m2, x2), m3 = __builtin_elementwise_max(m3, x3);
        }
        m0 = __builtin_elementwise_max(__builtin_elementwise_max(m0, m1), __builtin_elementwise_max(m2, m3));
        for (int l = 0; l < 8; l++) m = m0[l] > m ? m0[l] : m;
    }
#endif
#endif
    for (; j < n; j++) m = s[j] > m ? s[j] : m;
    return m;
}

#define CK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CK_MAX(a, b) ((a) > (b) ? (a) : (b))

/* SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mixer. */
static inline uint64_t ck_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Counter RNG: the counter-th output of a SplitMix64 stream whose state starts at mix64(seed),
 * top 24 bits mapped to [0, 1) (exactly representable floats, so u >= p is exact).
 *   u(seed, counter) = (mix64(mix64(seed) + (counter + 1) * 0x9E3779B97F4A7C15) >> 40) * 2^-24
 * The seed is mixed first so that nearby seeds do not give shifted copies of one stream. */
static inline float ck_rng_u24(uint64_t seed_mixed, uint64_t counter) {
    uint64_t z = ck_mix64(seed_mixed + (counter + 1) * 0x9E3779B97F4A7C15ull);
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

/* exp(x) in float that the compiler can vectorise (glibc's expf is an opaque call, ~6 ns each,
 * and softmax/GELU call it for every element). Cephes expf: x = n ln2 + r with |r| <= ln2/2
 * (Cody-Waite split of ln2, exact for |n| <= 127), degree-7 polynomial for e^r, 2^n built in the
 * exponent bits. Max relative error ~2 ulp (checked against double exp in the tests).
 * x < -87 gives 0 (true value < 1.7e-38), x > 88.7 gives +inf, NaN stays NaN. Branch-free. */
static inline float ck_expf(float x) {
    float xc = x > -87.0f ? x : -87.0f; /* also maps NaN to a finite value for the int conversion */
    xc = xc < 88.0f ? xc : 88.0f;
    float fx = xc * 1.44269504088896341f + 0.5f;
    int32_t n = (int32_t)fx;
    n -= (float)n > fx; /* floor */
    float fn = (float)n;
    float r = x - fn * 0.693359375f + fn * 2.12194440e-4f; /* from x, so NaN/overflow propagate */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    union { int32_t i; float f; } scale = { (n + 127) << 23 };
    return x < -87.0f ? 0.0f : p * scale.f;
}

/* ck_gemm_bias on Winnow's AVX-512 kernel (gemm_avx512.c), in F32 or (bf16 != 0) with bf16 operands. */
void ck_gemm_bias_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                         int transB, float alpha, float beta, const float *bias, int bf16);

/* Whether the calling thread is inside a parallel region (gemm.c): its products run single-threaded. */
int ck_in_parallel_region(void);
/* C[M,N] = beta * C (an empty sum over k; beta == 0 never reads C), for the GEMM paths. */
void ck_gemm_scale_only(float *C, int ldc, int M, int N, float beta);

#endif /* CK_INTERNAL_H */
