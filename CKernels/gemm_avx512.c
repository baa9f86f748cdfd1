/*
 * gemm_avx512.c — Winnow's own single-precision GEMM for CPUs with AVX-512, and the run-time choice
 * between it and OpenBLAS (the AVX2 path).
 *
 * Why: an OpenBLAS configured for AVX2 (OPENBLAS_CORETYPE=Haswell, or a build too old to know the CPU)
 * reaches about half of what an AVX-512 core does. This is the GotoBLAS/BLIS scheme: op(B) is packed
 * in KC x NR panels (k-major, zero-padded), op(A) in MR x KC panels, and a 12 x 32 register tile (24
 * zmm accumulators, A broadcast from memory, two B vectors per k) runs over them; edges are masked
 * stores, so the kernel itself has no edge cases. Each C element is one in-order sum over each KC
 * block of k, the blocks added in order, whatever the thread count or the partition: results do not
 * depend on threads (unlike OpenBLAS's, see gemm.c).
 *
 * Threads: outside a parallel region a product is split by rows or columns over the OpenBLAS thread
 * count, each part running the whole blocked algorithm on a pool thread; inside one (Swift's workers)
 * it runs on the calling thread. Packing buffers are per thread, allocated once (the one exception to
 * "kernels never allocate": a BLAS owns its packing space).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ckernels.h"
#include "ck_internal.h"

#define GA_MR 12
#define GA_NR 32
#define GA_KC 1024 /* the most k of one block; K is cut into equal blocks of at most this (1024: 3-7 % faster than 640 on K 1536-2048) */
#define GA_MC 192
#define GA_NC 2048
#define GA_MAX_PARTS 16

/* ------------------------------------------------------------------ ISA choice */

static int ga_active = -1;      /* CK_ISA_*, chosen once */
static int ga_requested = -1;   /* WINNOW_ISA, when set */
static pthread_once_t ga_once = PTHREAD_ONCE_INIT;

int ck_isa_supported(int isa) {
    if (isa == CK_ISA_AVX2) return 1;
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (isa == CK_ISA_AVX512 || isa == CK_ISA_AVX512_BF16) {
        __builtin_cpu_init();
        int f = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512vl");
        return isa == CK_ISA_AVX512 ? f : f && __builtin_cpu_supports("avx512bf16");
    }
#endif
    return 0;
}

static void ga_choose(void) {
    const char *env = getenv("WINNOW_ISA");
    if (env && strcmp(env, "avx2") == 0) ga_requested = CK_ISA_AVX2;
    else if (env && strcmp(env, "avx512") == 0) ga_requested = CK_ISA_AVX512;
    int want = ga_requested >= 0 ? ga_requested : CK_ISA_AVX512;
    ga_active = ck_isa_supported(want) ? want : CK_ISA_AVX2;
}

int ck_isa(void) {
    pthread_once(&ga_once, ga_choose);
    return ga_active;
}

int ck_isa_requested(void) {
    pthread_once(&ga_once, ga_choose);
    return ga_requested;
}

/* Per thread: a program that runs bf16 inference on one thread and F32 work on another gets both.
 * ck_gemm reads it on the calling thread; Parallel.forEach gives its workers the caller's. */
static _Thread_local int ga_precision = CK_PRECISION_F32;

int ck_set_gemm_precision(int precision) {
    if (precision == CK_PRECISION_BF16 && !ck_isa_supported(CK_ISA_AVX512_BF16)) return ga_precision;
    ga_precision = precision;
    return precision;
}

int ck_gemm_precision(void) { return ga_precision; }

/* x rounded to the nearest bf16 (ties to even), returned as a float. */
float ck_round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ck_gemm_bf16's contract with plain loops: each operand rounded to bf16, products summed in double. */
void ck_gemm_bf16_ref(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                      int transB, float alpha, float beta) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int p = 0; p < K; p++) {
                float a = transA ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = transB ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += (double)ck_round_bf16(a) * (double)ck_round_bf16(b);
            }
            float *c = C + (size_t)i * ldc + j;
            *c = (float)(alpha * acc) + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}

int ck_set_isa(int isa) {
    pthread_once(&ga_once, ga_choose);
    if (ck_isa_supported(isa)) __atomic_store_n(&ga_active, isa, __ATOMIC_SEQ_CST);
    return ga_active;
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define GA_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

/* ------------------------------------------------------------------ packing */

/* r[i][j] -> r[j][i] for a 16 x 16 block: unpack pairs, 4 x 4 within 128-bit lanes, then lanes. */
GA_TARGET static inline void ga_transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) { /* u[g + c]: rows g..g+3 of columns 4L + c in lane L */
        u[g] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
        u[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xEE);
        u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        const __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), w = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(v, v2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(w, w2, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v, v2, 0xDD);
        r[12 + c] = _mm512_shuffle_f32x4(w, w2, 0xDD);
    }
}

/* dst[q*lds + i] = src_i[p0 + q] for i < rows (16 lanes; rows past `rows` zero) and q < kc, where row i
 * starts at src + i*ld (contiguous in k): 16 x 16 blocks transposed in registers. The packing of op(A)
 * without transpose (lds 12: lanes 0x0FFF) and of op(B) with one (lds 32, all 16 lanes). Plain loads
 * and stores where they can be (masked ones, and the loads' misses, cost up to half of a product's time
 * in packing here on SmolLM2's shapes; now 5-10 %): the next lines of each row are prefetched, and
 * a 12-lane panel is written by ascending 16-lane stores, each spill overwritten by the next row, the
 * panel's last row masked so that nothing past the panel is written. */
GA_TARGET static void ga_pack_rows_kmajor(float *restrict dst, size_t lds, __mmask16 lanes, const float *restrict src, size_t ld,
                                          int rows, int kc) {
    for (int p = 0; p < kc; p += 16) {
        const int kr = CK_MIN(16, kc - p);
        __m512 r[16];
        if (kr == 16) {
            for (int i = 0; i < 16; i++) {
                if (i < rows) _mm_prefetch((const char *)(src + (size_t)i * ld + p + 64), _MM_HINT_T0);
                r[i] = i < rows ? _mm512_loadu_ps(src + (size_t)i * ld + p) : _mm512_setzero_ps();
            }
        } else {
            const __mmask16 km = (__mmask16)((1u << kr) - 1u);
            for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_maskz_loadu_ps(km, src + (size_t)i * ld + p) : _mm512_setzero_ps();
        }
        ga_transpose16(r);
        if (lanes == 0xFFFF) {
            for (int q = 0; q < kr; q++) _mm512_storeu_ps(dst + (size_t)(p + q) * lds, r[q]);
        } else {
            const int last = p + kr == kc ? kr - 1 : kr;
            for (int q = 0; q < last; q++) _mm512_storeu_ps(dst + (size_t)(p + q) * lds, r[q]);
            if (last < kr) _mm512_mask_storeu_ps(dst + (size_t)(p + last) * lds, lanes, r[last]);
        }
    }
}

/* Rows [i0, i0 + mc) and k [p0, p0 + kc) of op(A) into MR-row panels, k-major: panel r holds
 * ap[r*MR*kc + p*MR + i] = op(A)(i0 + r*MR + i, p0 + p), rows past mc zero. */
GA_TARGET static void ga_pack_a(float *restrict ap, const float *restrict A, int lda, int transA, int i0, int mc, int p0,
                                int kc) {
    for (int r = 0; r < mc; r += GA_MR) {
        const int mr = CK_MIN(GA_MR, mc - r);
        float *dst = ap + (size_t)r * kc;
        if (transA) { /* op(A)(i, p) = A[p*lda + i]: MR contiguous floats per k */
            const float *src = A + (size_t)p0 * lda + i0 + r;
            const __mmask16 m = (__mmask16)((1u << mr) - 1u);
            /* ascending 16-lane stores, each spill overwritten by the next row; the last one masked */
            for (int p = 0; p < kc - 1; p++) _mm512_storeu_ps(dst + (size_t)p * GA_MR, _mm512_maskz_loadu_ps(m, src + (size_t)p * lda));
            _mm512_mask_storeu_ps(dst + (size_t)(kc - 1) * GA_MR, 0x0FFF, _mm512_maskz_loadu_ps(m, src + (size_t)(kc - 1) * lda));
        } else { /* A[i*lda + p]: each row contiguous in k */
            ga_pack_rows_kmajor(dst, GA_MR, 0x0FFF, A + (size_t)(i0 + r) * lda + p0, (size_t)lda, mr, kc);
        }
    }
}

/* Columns [j0, j0 + nc) and k [p0, p0 + kc) of op(B) into NR-column panels, k-major:
 * bp[c*kc + p*NR + j] = op(B)(p0 + p, j0 + c + j) for panel starting at column c, columns past nc zero. */
GA_TARGET static void ga_pack_b(float *restrict bp, const float *restrict B, int ldb, int transB, int j0, int nc, int p0,
                                int kc) {
    for (int c = 0; c < nc; c += GA_NR) {
        const int nr = CK_MIN(GA_NR, nc - c);
        float *dst = bp + (size_t)c * kc;
        if (!transB) { /* B[p*ldb + j]: NR contiguous floats per k */
            const __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
            const __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
            const float *src = B + (size_t)p0 * ldb + j0 + c;
            if (nr == GA_NR) {
                for (int p = 0; p < kc; p++) {
                    const float *s = src + (size_t)p * ldb;
                    _mm512_storeu_ps(dst + (size_t)p * GA_NR, _mm512_loadu_ps(s));
                    _mm512_storeu_ps(dst + (size_t)p * GA_NR + 16, _mm512_loadu_ps(s + 16));
                }
            } else {
                for (int p = 0; p < kc; p++) {
                    const float *s = src + (size_t)p * ldb;
                    _mm512_storeu_ps(dst + (size_t)p * GA_NR, _mm512_maskz_loadu_ps(m0, s));
                    _mm512_storeu_ps(dst + (size_t)p * GA_NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
                }
            }
        } else { /* B[j*ldb + p]: each column of op(B) contiguous in k, 16 columns at a time */
            const float *src = B + (size_t)(j0 + c) * ldb + p0;
            ga_pack_rows_kmajor(dst, GA_NR, 0xFFFF, src, (size_t)ldb, nr, kc);
            ga_pack_rows_kmajor(dst + 16, GA_NR, 0xFFFF, src + (size_t)16 * ldb, (size_t)ldb, nr - 16, kc);
        }
    }
}

/* ------------------------------------------------------------------ storing a tile */

/* Rows i < mr, columns j < nr of a 12 x 32 register tile (acc[i][0] columns 0-15, acc[i][1] 16-31)
 * stored at C: alpha acc + beta C (beta == 0 never reads C), plus bias[j] when bias is given (the
 * last k block of ck_gemm_bias; bias points at the tile's first column). */
GA_TARGET static inline void ga_store_tile(float *restrict C, int ldc, __m512 acc[GA_MR][2], int mr, int nr, float alpha, float beta,
                                           const float *bias) {
    const __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
    const __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        __m512 v0 = _mm512_mul_ps(va, acc[i][0]), v1 = _mm512_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), v0);
            v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), v1);
        }
        if (bias) {
            v0 = _mm512_add_ps(v0, b0);
            v1 = _mm512_add_ps(v1, b1);
        }
        _mm512_mask_storeu_ps(c, m0, v0);
        _mm512_mask_storeu_ps(c + 16, m1, v1);
    }
}

/* ------------------------------------------------------------------ micro-kernel */

/* C[mr x nr] = alpha * (A panel)(B panel) + beta * C over kc (beta == 0 never reads C). */
GA_TARGET static void ga_kernel(int kc, const float *restrict ap, const float *restrict bp, float *restrict C, int ldc, int mr,
                                int nr, float alpha, float beta, const float *bias) {
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
    __m512 c80 = _mm512_setzero_ps(), c81 = _mm512_setzero_ps(), c90 = _mm512_setzero_ps(), c91 = _mm512_setzero_ps();
    __m512 ca0 = _mm512_setzero_ps(), ca1 = _mm512_setzero_ps(), cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps();
    /* C's tile is read (beta != 0) or written only after the k loop: start bringing it in now (about
     * 10 % on 2048^3, whose k runs in blocks that re-read C). */
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(C + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + (size_t)i * ldc + 16), _MM_HINT_T0);
    }
    for (int p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        __m512 a;
#define GA_ROW(i, x0, x1) a = _mm512_set1_ps(ap[i]); x0 = _mm512_fmadd_ps(a, b0, x0); x1 = _mm512_fmadd_ps(a, b1, x1);
        GA_ROW(0, c00, c01) GA_ROW(1, c10, c11) GA_ROW(2, c20, c21) GA_ROW(3, c30, c31)
        GA_ROW(4, c40, c41) GA_ROW(5, c50, c51) GA_ROW(6, c60, c61) GA_ROW(7, c70, c71)
        GA_ROW(8, c80, c81) GA_ROW(9, c90, c91) GA_ROW(10, ca0, ca1) GA_ROW(11, cb0, cb1)
#undef GA_ROW
        ap += GA_MR;
        bp += GA_NR;
    }
    __m512 rows[GA_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                             {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {ca0, ca1}, {cb0, cb1}};
    ga_store_tile(C, ldc, rows, mr, nr, alpha, beta, bias);
}

/* ------------------------------------------------------------------ small products (attention)
 * ck_gemm_small's AVX-512 form: op(B) packed one 32-column panel at a time (ga_pack_b), A read in
 * place by broadcasts (row-major or transposed alike; rows past the tile's repeat its last row, so
 * no edge case reads outside A), a 12 x 32 tile of 24 zmm accumulators. Single-threaded. */
GA_TARGET static void ga_kernel_strided(int K, const float *restrict a, size_t ars, size_t acs, const float *restrict bp,
                                        float *restrict C, int ldc, int mr, int nr, float alpha, float beta) {
    const float *r[GA_MR];
    for (int i = 0; i < GA_MR; i++) r[i] = a + (size_t)CK_MIN(i, mr - 1) * ars;
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
    __m512 c80 = _mm512_setzero_ps(), c81 = _mm512_setzero_ps(), c90 = _mm512_setzero_ps(), c91 = _mm512_setzero_ps();
    __m512 ca0 = _mm512_setzero_ps(), ca1 = _mm512_setzero_ps(), cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps();
    for (int p = 0; p < K; p++) {
        const __m512 b0 = _mm512_loadu_ps(bp + (size_t)p * GA_NR), b1 = _mm512_loadu_ps(bp + (size_t)p * GA_NR + 16);
        const size_t o = (size_t)p * acs;
        __m512 x;
#define GA_SROW(i, x0, x1) x = _mm512_set1_ps(r[i][o]); x0 = _mm512_fmadd_ps(x, b0, x0); x1 = _mm512_fmadd_ps(x, b1, x1);
        GA_SROW(0, c00, c01) GA_SROW(1, c10, c11) GA_SROW(2, c20, c21) GA_SROW(3, c30, c31)
        GA_SROW(4, c40, c41) GA_SROW(5, c50, c51) GA_SROW(6, c60, c61) GA_SROW(7, c70, c71)
        GA_SROW(8, c80, c81) GA_SROW(9, c90, c91) GA_SROW(10, ca0, ca1) GA_SROW(11, cb0, cb1)
#undef GA_SROW
    }
    __m512 rows[GA_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                             {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {ca0, ca1}, {cb0, cb1}};
    ga_store_tile(C, ldc, rows, mr, nr, alpha, beta, NULL);
}

/* ga_kernel_strided over one 16-column half of a packed 32-column panel (bp at the half; rows of the
 * panel still GA_NR apart): 12 accumulators, nr <= 16. */
GA_TARGET static void ga_kernel_strided16(int K, const float *restrict a, size_t ars, const float *restrict bp, float *restrict C,
                                          int ldc, int mr, int nr, float alpha, float beta) {
    const float *r[GA_MR];
    for (int i = 0; i < GA_MR; i++) r[i] = a + (size_t)CK_MIN(i, mr - 1) * ars;
    __m512 acc[GA_MR];
    for (int i = 0; i < GA_MR; i++) acc[i] = _mm512_setzero_ps();
    for (int p = 0; p < K; p++) {
        const __m512 b = _mm512_loadu_ps(bp + (size_t)p * GA_NR);
        for (int i = 0; i < GA_MR; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(r[i][p]), b, acc[i]);
    }
    const __mmask16 m = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < mr; i++) {
        float *row = C + (size_t)i * ldc;
        __m512 v = _mm512_mul_ps(va, acc[i]);
        if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, row), v);
        _mm512_mask_storeu_ps(row, m, v);
    }
}

void ck_gemm_small_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                          int transB, float alpha, float beta, float *pack) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        ck_gemm_scale_only(C, ldc, M, N, beta);
        return;
    }
    const size_t ars = transA ? 1 : (size_t)lda, acs = transA ? (size_t)lda : 1;
    for (int j0 = 0; j0 < N; j0 += GA_NR) {
        const int nr = CK_MIN(GA_NR, N - j0);
        ga_pack_b(pack, B, ldb, transB, j0, nr, 0, K);
        for (int i0 = 0; i0 < M; i0 += GA_MR) {
            ga_kernel_strided(K, A + (size_t)i0 * ars, ars, acs, pack, C + (size_t)i0 * ldc + j0, ldc, CK_MIN(GA_MR, M - i0), nr, alpha,
                              beta);
        }
    }
}

/* ck_syrk_small_upper's AVX-512 form: the 12 x 32 tiles that reach the diagonal or above, A^T packed
 * one 32-column panel at a time; a tile whose rows all start at or past the panel's second half
 * computes that half only (12 x 16: about a tenth of a 128 x 128 Gram's work). Tiles crossing the
 * diagonal also write entries just below it (at most 31 a row, the symmetric product's values), as
 * the AVX2 form's do (at most 15). */
void ck_syrk_small_upper_avx512(float *C, int ldc, const float *A, int lda, int N, int K, float alpha, float beta, float *pack) {
    if (N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < N; i++) {
            for (int j = i; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        }
        return;
    }
    for (int j0 = 0; j0 < N; j0 += GA_NR) {
        const int nr = CK_MIN(GA_NR, N - j0);
        ga_pack_b(pack, A, lda, CK_TRANS_T, j0, nr, 0, K); /* op(B) = A^T */
        for (int i0 = 0; i0 < j0 + nr; i0 += GA_MR) {       /* rows from j0 + nr on are strictly lower */
            const int mr = CK_MIN(GA_MR, j0 + nr - i0);
            if (i0 >= j0 + 16) { /* row i needs columns >= i: the panel's first half is all below */
                ga_kernel_strided16(K, A + (size_t)i0 * lda, (size_t)lda, pack + 16, C + (size_t)i0 * ldc + j0 + 16, ldc, mr, nr - 16,
                                    alpha, beta);
            } else {
                ga_kernel_strided(K, A + (size_t)i0 * lda, (size_t)lda, 1, pack, C + (size_t)i0 * ldc + j0, ldc, mr, nr, alpha, beta);
            }
        }
    }
}

/* ------------------------------------------------------------------ bf16 (opt-in inference)
 * The packed F32 panels are rounded to bf16 (round to nearest even, as vcvtneps2bf16) and paired
 * along k in place: pair q of a panel of width w holds, per lane, bf16(x[2q]) in its low half and
 * bf16(x[2q + 1]) in its high half (zero past k). vdpbf16ps then adds both products of a pair to an
 * F32 accumulator: twice the multiply-adds of an FMA per instruction. */
#define GA_TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")))

/* Per 32-bit lane: bf16(lo) | bf16(hi) << 16, both rounded to nearest even (finite inputs). */
GA_TARGET_BF16 static inline __m512i ga_bf16_pair(__m512 lo, __m512 hi) {
    const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1);
    __m512i u = _mm512_castps_si512(lo), v = _mm512_castps_si512(hi);
    u = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one))), 16);
    v = _mm512_srli_epi32(_mm512_add_epi32(v, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(v, 16), one))), 16);
    return _mm512_or_si512(u, _mm512_slli_epi32(v, 16));
}

/* A k-major F32 panel of width w (12 or 32) and kc rows -> (kc + 1) / 2 rows of w bf16 pairs, in place
 * (pair row q is written after rows 2q and 2q + 1 are read, and q * w <= 2q * w). */
GA_TARGET_BF16 static void ga_pairs_bf16(float *panel, int w, int kc) {
    int32_t *out = (int32_t *)panel;
    const __mmask16 full = 0xFFFF, part = (__mmask16)((1u << (w % 16)) - 1u);
    for (int q = 0; q < (kc + 1) / 2; q++) {
        const float *r0 = panel + (size_t)(2 * q) * w, *r1 = r0 + w;
        const int odd = 2 * q + 1 < kc;
        for (int c = 0; c < w; c += 16) {
            const __mmask16 m = c + 16 <= w ? full : part;
            const __m512 lo = _mm512_maskz_loadu_ps(m, r0 + c);
            const __m512 hi = odd ? _mm512_maskz_loadu_ps(m, r1 + c) : _mm512_setzero_ps();
            _mm512_mask_storeu_epi32(out + (size_t)q * w + c, m, ga_bf16_pair(lo, hi));
        }
    }
}

/* ga_kernel over kc2 pairs of k with vdpbf16ps: the A panel holds 12 pairs a row, the B panel 32. */
GA_TARGET_BF16 static void ga_kernel_bf16(int kc2, const int32_t *restrict ap, const int32_t *restrict bp, float *restrict C, int ldc,
                                          int mr, int nr, float alpha, float beta, const float *bias) {
    __m512 acc[GA_MR][2];
    for (int i = 0; i < GA_MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(C + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + (size_t)i * ldc + 16), _MM_HINT_T0);
    }
    for (int q = 0; q < kc2; q++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp), b1 = (__m512bh)_mm512_loadu_si512(bp + 16);
        for (int i = 0; i < GA_MR; i++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32(ap[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
        }
        ap += GA_MR;
        bp += GA_NR;
    }
    ga_store_tile(C, ldc, acc, mr, nr, alpha, beta, bias);
}

/* ------------------------------------------------------------------ blocked product */

typedef struct {
    float *C;
    const float *A, *B;
    int ldc, lda, ldb, M, N, K, transA, transB;
    float alpha, beta;
    int parts, splitRows;
    int bf16; /* operands rounded to bf16 after packing, products by vdpbf16ps */
    const float *bias; /* nullable [N]: added as the last k block's tiles are stored */
    float *sharedB;    /* non-null: the parts split by rows pack each block of op(B) once, together, here */
} ga_job;

/* A spin barrier for the parts of one product (they run on their own cores, for microseconds). */
static atomic_int ga_arrived = 0, ga_phase = 0;

GA_TARGET static void ga_barrier(int parts) {
    const int phase = atomic_load_explicit(&ga_phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&ga_arrived, 1, memory_order_acq_rel) == parts - 1) {
        atomic_store_explicit(&ga_arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&ga_phase, phase + 1, memory_order_release);
        return;
    }
    for (long spins = 0; atomic_load_explicit(&ga_phase, memory_order_acquire) == phase; spins++) {
        if (spins < 100000) _mm_pause(); else sched_yield();
    }
}

/* The calling thread's packing space: MC x KC of A and KC x NC of B, 64-byte aligned. */
static _Thread_local float *ga_buf = NULL;

static float *ga_buffers(void) {
    if (!ga_buf) ga_buf = aligned_alloc(64, sizeof(float) * ((size_t)GA_MC * GA_KC + (size_t)GA_KC * GA_NC));
    return ga_buf;
}

/* Rows [m0, m1) of C's columns [jc, jc + nc) against one packed block of op(B) (k [pc, pc + kc)):
 * op(A) packed MC rows at a time, then the tiles. */
GA_TARGET static void ga_rows_block(const ga_job *g, float *abuf, const float *bbuf, int m0, int m1, int jc, int nc, int pc, int kc) {
    const float beta = pc == 0 ? g->beta : 1.0f;
    const float *bias = pc + kc >= g->K ? g->bias : NULL;
    for (int ic = m0; ic < m1; ic += GA_MC) {
        const int mc = CK_MIN(GA_MC, m1 - ic);
        ga_pack_a(abuf, g->A, g->lda, g->transA, ic, mc, pc, kc);
        if (g->bf16) {
            for (int ir = 0; ir < mc; ir += GA_MR) ga_pairs_bf16(abuf + (size_t)ir * kc, GA_MR, kc);
        }
        for (int jr = 0; jr < nc; jr += GA_NR) {
            for (int ir = 0; ir < mc; ir += GA_MR) {
                float *c = g->C + (size_t)(ic + ir) * g->ldc + jc + jr;
                const int mr = CK_MIN(GA_MR, mc - ir), nr = CK_MIN(GA_NR, nc - jr);
                if (g->bf16) {
                    ga_kernel_bf16((kc + 1) / 2, (const int32_t *)(abuf + (size_t)ir * kc), (const int32_t *)(bbuf + (size_t)jr * kc),
                                   c, g->ldc, mr, nr, g->alpha, beta, bias ? bias + jc + jr : NULL);
                } else {
                    ga_kernel(kc, abuf + (size_t)ir * kc, bbuf + (size_t)jr * kc, c, g->ldc, mr, nr, g->alpha, beta,
                              bias ? bias + jc + jr : NULL);
                }
            }
        }
    }
}

/* Columns [j0, j0 + w) (j0 a multiple of NR) of the block of op(B) at columns jc.., k [pc, pc + kc)
 * into its panels at bbuf + j0 * kc (bf16 pairs when the product is bf16). */
GA_TARGET static void ga_pack_b_block(const ga_job *g, float *bbuf, int jc, int j0, int w, int pc, int kc) {
    ga_pack_b(bbuf + (size_t)j0 * kc, g->B, g->ldb, g->transB, jc + j0, w, pc, kc);
    if (g->bf16) {
        for (int jr = j0; jr < j0 + w; jr += GA_NR) ga_pairs_bf16(bbuf + (size_t)jr * kc, GA_NR, kc);
    }
}

/* Rows [m0, m1) x columns [n0, n1) of C for part `part`. Each block of op(B) is packed, then every
 * row block runs against it. With g->sharedB (a product split by rows over the pool) the parts pack
 * each block together (each its share of the NR-column panels), wait for one another, run their rows
 * against the whole block, and wait again before the next block is packed: otherwise every part packs
 * all of op(B), about a quarter of the packing on the model's shapes. The arithmetic is the same
 * either way, so are the bits. */
GA_TARGET static void ga_block(const ga_job *g, int part, int m0, int m1, int n0, int n1) {
    float *buf = ga_buffers();
    const int shared = g->sharedB != NULL;
    if (!buf && !shared) return;
    float *abuf = buf, *bbuf = shared ? g->sharedB : buf + (size_t)GA_MC * GA_KC;
    for (int jc = n0; jc < n1; jc += GA_NC) {
        const int nc = CK_MIN(GA_NC, n1 - jc);
        /* Equal k blocks of at most KC (576 stays one block: C is then written once, not re-read). */
        const int blocks = (g->K + GA_KC - 1) / GA_KC, step = (g->K + blocks - 1) / blocks;
        const int panels = (nc + GA_NR - 1) / GA_NR;
        const int q0 = shared ? (int)((long)panels * part / g->parts) : 0;
        const int q1 = shared ? (int)((long)panels * (part + 1) / g->parts) : panels;
        for (int pc = 0; pc < g->K; pc += step) {
            const int kc = CK_MIN(step, g->K - pc);
            if (q1 > q0 && buf) ga_pack_b_block(g, bbuf, jc, q0 * GA_NR, CK_MIN(nc, q1 * GA_NR) - q0 * GA_NR, pc, kc);
            if (shared) ga_barrier(g->parts);
            if (buf && m1 > m0) ga_rows_block(g, abuf, bbuf, m0, m1, jc, nc, pc, kc);
            if (shared) ga_barrier(g->parts); /* nobody packs the next block while another part still reads this one */
        }
    }
}

/* Part `part` of `parts`: a slice of rows (multiples of MR) or columns (multiples of NR). */
static void ga_part(const ga_job *g, int part) {
    if (g->splitRows) {
        const int tiles = (g->M + GA_MR - 1) / GA_MR;
        const int t0 = (int)((long)tiles * part / g->parts), t1 = (int)((long)tiles * (part + 1) / g->parts);
        /* with shared packing every part takes part in the waits, rows or none */
        if (t1 > t0 || g->sharedB) ga_block(g, part, t0 * GA_MR, CK_MIN(g->M, t1 * GA_MR), 0, g->N);
    } else {
        const int tiles = (g->N + GA_NR - 1) / GA_NR;
        const int t0 = (int)((long)tiles * part / g->parts), t1 = (int)((long)tiles * (part + 1) / g->parts);
        if (t1 > t0) ga_block(g, part, 0, g->M, t0 * GA_NR, CK_MIN(g->N, t1 * GA_NR));
    }
}

/* ------------------------------------------------------------------ thread pool
 * Workers 1..parts-1 wait for a generation number; the caller runs part 0 and waits for the rest.
 * One product at a time: a caller that finds the pool busy runs its product alone. */
static pthread_mutex_t ga_pool_busy = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t ga_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ga_go = PTHREAD_COND_INITIALIZER, ga_done = PTHREAD_COND_INITIALIZER;
static int ga_workers = 0, ga_pending = 0;
static unsigned long ga_generation = 0;
static const ga_job *ga_current = NULL;

static void *ga_worker(void *arg) {
    const int part = (int)(intptr_t)arg;
    unsigned long seen = 0;
    ck_parallel_worker_enter(); /* BLAS calls from here take no lock (none are made) */
    for (;;) {
        pthread_mutex_lock(&ga_mu);
        while (ga_generation == seen) pthread_cond_wait(&ga_go, &ga_mu);
        seen = ga_generation;
        const ga_job *g = ga_current;
        pthread_mutex_unlock(&ga_mu);
        if (part < g->parts) ga_part(g, part);
        pthread_mutex_lock(&ga_mu);
        if (--ga_pending == 0) pthread_cond_signal(&ga_done);
        pthread_mutex_unlock(&ga_mu);
    }
    return NULL;
}

static float *ga_shared_b = NULL; /* KC x NC, the pool's (one pooled product at a time) */

static void ga_run(const ga_job *g) {
    if (g->parts <= 1 || pthread_mutex_trylock(&ga_pool_busy) != 0) {
        ga_job one = *g;
        one.parts = 1;
        ga_part(&one, 0);
        return;
    }
    pthread_mutex_lock(&ga_mu);
    while (ga_workers < g->parts - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, ga_worker, (void *)(intptr_t)(ga_workers + 1)) != 0) break;
        pthread_attr_destroy(&attr);
        ga_workers++;
    }
    ga_job job = *g;
    if (job.parts > ga_workers + 1) job.parts = ga_workers + 1;
    if (!ga_shared_b) ga_shared_b = aligned_alloc(64, sizeof(float) * (size_t)GA_KC * GA_NC);
    job.sharedB = job.splitRows && job.parts > 1 ? ga_shared_b : NULL;
    ga_current = &job;
    ga_pending = ga_workers;
    ga_generation++;
    pthread_cond_broadcast(&ga_go);
    pthread_mutex_unlock(&ga_mu);
    ga_part(&job, 0);
    pthread_mutex_lock(&ga_mu);
    while (ga_pending > 0) pthread_cond_wait(&ga_done, &ga_mu);
    pthread_mutex_unlock(&ga_mu);
    pthread_mutex_unlock(&ga_pool_busy);
}

static void ga_gemm(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA, int transB,
                    float alpha, float beta, int bf16, const float *bias) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        ck_gemm_scale_only(C, ldc, M, N, beta);
        if (bias) ck_add_bias_rows(C, ldc, bias, M, N);
        return;
    }
    int parts = ck_in_parallel_region() ? 1 : ck_blas_get_threads();
    /* a part smaller than about a million multiply-adds costs more to hand over than it saves */
    const double work = (double)M * N * K;
    if (work < 2e6 * parts) parts = (int)(work / 2e6);
    parts = CK_MAX(1, CK_MIN(parts, GA_MAX_PARTS));
    ga_job g = {C, A, B, ldc, lda, ldb, M, N, K, transA, transB, alpha, beta, parts, 0, bf16, bias, NULL};
    g.splitRows = (M + GA_MR - 1) / GA_MR >= (N + GA_NR - 1) / GA_NR;
    ga_run(&g);
}

void ck_gemm_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                    int transB, float alpha, float beta) {
    ga_gemm(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta, 0, NULL);
}

void ck_gemm_bias_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                         int transB, float alpha, float beta, const float *bias, int bf16) {
    ga_gemm(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta, bf16, bias);
}

void ck_gemm_bf16(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                  int transB, float alpha, float beta) {
    ga_gemm(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta, 1, NULL);
}

#else /* not x86-64: never selected (ck_isa_supported(CK_ISA_AVX512) is 0) */

void ck_gemm_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                    int transB, float alpha, float beta) {
    ck_gemm_ref(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta);
}

void ck_gemm_bf16(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                  int transB, float alpha, float beta) {
    ck_gemm_bf16_ref(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta);
}

void ck_gemm_bias_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                         int transB, float alpha, float beta, const float *bias, int bf16) {
    ck_gemm_bias_ref(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta, bias);
    (void)bf16;
}

void ck_gemm_small_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, int transA,
                          int transB, float alpha, float beta, float *pack) {
    (void)pack;
    ck_gemm_ref(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta);
}

void ck_syrk_small_upper_avx512(float *C, int ldc, const float *A, int lda, int N, int K, float alpha, float beta, float *pack) {
    (void)pack;
    ck_gemm_ref(C, ldc, A, lda, A, lda, N, N, K, CK_TRANS_N, CK_TRANS_T, alpha, beta);
}

#endif
