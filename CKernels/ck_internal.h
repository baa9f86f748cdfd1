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

/* Debug-only asserts: kernels do not validate (Swift checks shapes once), but a build with
 * -DCK_DEBUG can check internal invariants. */
#ifdef CK_DEBUG
#include <assert.h>
#define CK_ASSERT(x) assert(x)
#else
#define CK_ASSERT(x) ((void)0)
#endif

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

#endif /* CK_INTERNAL_H */
