/*
 * gemm.c — single-precision matrix multiply, the one place the transpose flags live.
 * ck_gemm wraps OpenBLAS cblas_sgemm (row-major); ck_gemm_ref is the plain-loop oracle;
 * ck_gemm_strided_batched loops cblas_sgemm over equally spaced operands (OpenBLAS 0.3.21 has no
 * batched sgemm). Also the OpenBLAS thread-count knob. No complex, double or packed formats.
 */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#include <cblas.h>
#include <lapacke.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "ckernels.h"
#include "ck_internal.h"

/* ------------------------------------------------------------------ threading policy
 * OpenBLAS's results depend on its thread count (the partition changes which micro-kernel edge
 * path an element takes), so the count must never change under a running call. Calls outside a
 * parallel region hold a read lock; a region (Swift's Parallel: OpenBLAS at one thread while
 * kernels run on the cores) holds the write lock from begin to end, and its worker threads mark
 * themselves as inside it so their own calls take no lock. */
static pthread_rwlock_t ck_blas_lock = PTHREAD_RWLOCK_INITIALIZER;
static _Thread_local int ck_region_depth = 0;
static int ck_region_saved_threads = 1;

static inline void blas_enter(void) { if (ck_region_depth == 0) pthread_rwlock_rdlock(&ck_blas_lock); }
static inline void blas_exit(void) { if (ck_region_depth == 0) pthread_rwlock_unlock(&ck_blas_lock); }

int ck_parallel_region_begin(void) {
    if (ck_region_depth > 0) { /* nested: already at one OpenBLAS thread */
        ck_region_depth++;
        return 0;
    }
    pthread_rwlock_wrlock(&ck_blas_lock);
    ck_region_saved_threads = openblas_get_num_threads();
    if (ck_region_saved_threads != 1) openblas_set_num_threads(1);
    ck_region_depth = 1;
    return 1;
}

void ck_parallel_region_end(void) {
    if (--ck_region_depth > 0) return;
    if (ck_region_saved_threads != 1) openblas_set_num_threads(ck_region_saved_threads);
    pthread_rwlock_unlock(&ck_blas_lock);
}

void ck_parallel_worker_enter(void) { ck_region_depth++; }

int ck_in_parallel_region(void) { return ck_region_depth > 0; }

void ck_parallel_worker_exit(void) { ck_region_depth--; }

/* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C (BLAS semantics: beta == 0 never reads C,
 * so C may hold garbage). Degenerate sizes are handled here because cblas would complain through
 * xerbla (which prints) about e.g. lda = 0 when K == 0. */
void ck_gemm(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
             int M, int N, int K, int transA, int transB, float alpha, float beta) {
    if (ck_gemm_precision() == CK_PRECISION_BF16) {
        ck_gemm_bf16(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta);
        return;
    }
    if (ck_isa() == CK_ISA_AVX512) {
        ck_gemm_avx512(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta);
        return;
    }
    ck_gemm_openblas(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta);
}

/* ck_gemm plus bias[j] on every row. Winnow's AVX-512 kernel (F32 or bf16) adds it to each register
 * tile as it is stored; OpenBLAS gets the bias rows first and adds onto them (beta = 1), or, when
 * beta != 0, a pass after the product. */
void ck_gemm_bias(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                  int transA, int transB, float alpha, float beta, const float *bias) {
    const int bf16 = ck_gemm_precision() == CK_PRECISION_BF16;
    if (bf16 || ck_isa() == CK_ISA_AVX512) {
        ck_gemm_bias_avx512(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta, bias, bf16);
        return;
    }
    if (M <= 0 || N <= 0) return;
    if (beta == 0.0f) {
        for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, (size_t)N * sizeof(float));
        ck_gemm_openblas(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, 1.0f);
    } else {
        ck_gemm_openblas(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta);
        ck_add_bias_rows(C, ldc, bias, M, N);
    }
}

/* C = beta * C (an empty sum over k); beta == 0 never reads C. */
void ck_gemm_scale_only(float *C, int ldc, int M, int N, float beta) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
    }
}

void ck_gemm_openblas(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
                      int M, int N, int K, int transA, int transB, float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        ck_gemm_scale_only(C, ldc, M, N, beta);
        return;
    }
    blas_enter();
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    blas_exit();
}

/* C[N,N] upper triangle (row-major, ldc) = alpha * A[N,K] @ A^T + beta * C: half the work of the
 * GEMM for a Gram matrix. The strict lower triangle is not touched. */
void ck_syrk_upper(float *C, int ldc, const float *A, int lda, int N, int K, float alpha, float beta) {
    if (N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < N; i++) {
            for (int j = i; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        }
        return;
    }
    blas_enter();
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, N, K, alpha, A, lda, beta, C, ldc);
    blas_exit();
}

/* Same contract as ck_gemm with plain loops and a double accumulator per output element.
 * op(A)[i,p] = transA ? A[p*lda + i] : A[i*lda + p]; likewise op(B)[p,j]. */
void ck_gemm_ref(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
                 int M, int N, int K, int transA, int transB, float alpha, float beta) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int p = 0; p < K; p++) {
                float a = transA ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = transB ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += (double)a * (double)b;
            }
            float *c = C + (size_t)i * ldc + j;
            *c = (float)(alpha * acc) + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}

/* ck_gemm_ref, then bias[j] added to every row. */
void ck_gemm_bias_ref(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                      int transA, int transB, float alpha, float beta, const float *bias) {
    ck_gemm_ref(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] += bias[j];
    }
}

/* For i < batch: C_i[M,N] = alpha * op(A_i) @ op(B_i) + beta * C_i, X_i = X + i * strideX.
 * Used e.g. for per-head products when the heads are equally spaced in memory. */
void ck_gemm_strided_batched(float *C, int ldc, long strideC, const float *A, int lda, long strideA,
                             const float *B, int ldb, long strideB, int batch,
                             int M, int N, int K, int transA, int transB, float alpha, float beta) {
    for (int i = 0; i < batch; i++) {
        ck_gemm(C + (ptrdiff_t)i * strideC, ldc, A + (ptrdiff_t)i * strideA, lda,
                B + (ptrdiff_t)i * strideB, ldb, M, N, K, transA, transB, alpha, beta);
    }
}

/* OpenBLAS worker threads for subsequent calls (process-wide), changed only while no call runs.
 * Inside a parallel region the count is 1 and is restored at its end; setting it there is ignored. */
void ck_blas_set_threads(int n) {
    if (ck_region_depth > 0) return;
    pthread_rwlock_wrlock(&ck_blas_lock);
    openblas_set_num_threads(n < 1 ? 1 : n);
    pthread_rwlock_unlock(&ck_blas_lock);
}

int ck_blas_get_threads(void) { return openblas_get_num_threads(); }

int ck_cpu_count(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

const char *ck_blas_corename(void) { return openblas_get_corename(); }

/* ------------------------------------------------------------------ LAPACK */

// A[m, n] row-major -> Q[m, n] with orthonormal columns (the thin Q of A = QR). A random Gaussian A
// gives a uniformly random orthonormal frame, the projection of TracIn-CP-Fast-RandProj.
int ck_qr_orthonormalize(float *A, int lda, float *tau, int m, int n) {
    if (m <= 0 || n <= 0) return 0;
    blas_enter();
    lapack_int info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, m, n, A, lda, tau);
    if (info == 0) info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, m, n, n, A, lda, tau);
    blas_exit();
    return (int)info;
}

/* ------------------------------------------------------------------ small products (attention)
 * Attention's per-head products are tiny (T x T x HS, e.g. 128 x 128 x 64) and called thousands of
 * times per step from single-threaded workers; OpenBLAS runs them well below its large-matrix
 * rate (call overhead, packing both operands, edge kernels). Here A is read in place by broadcasts,
 * row-major or transposed alike; op(B) is packed one 16-column panel at a time (k-major,
 * zero-padded), which stays in L1 while every row tile of C uses it.
 * The 6 x 16 register tile is written with clang/GCC vector extensions: 12 accumulators of 8
 * floats, which the AVX2 clone keeps in ymm registers (the default clone splits them into SSE
 * halves). Each output is one sum over k in order, so results do not depend on M, N or strides. */

#define CK_SG_MR 6
#define CK_SG_NR 16

size_t ck_gemm_small_pack_size(int N, int K) {
    (void)N; /* one panel at a time: 16 columns here, 32 in the AVX-512 form */
    return K <= 0 ? 1 : (size_t)32 * (size_t)K;
}

/* dst[p*ldd + c] = src[c*lds + p] for p, c < 8: unpack, 64-bit shuffle, 128-bit swap (the AVX2
 * 8 x 8 transpose, written with vector shuffles so the default clone gets SSE). */
static inline __attribute__((always_inline)) void sg_transpose8(float *restrict dst, size_t ldd,
                                                                const float *restrict src, size_t lds) {
    ck_v8 r[8], t[8], u[8];
    for (int c = 0; c < 8; c++) memcpy(&r[c], src + (size_t)c * lds, sizeof(ck_v8));
    for (int c = 0; c < 8; c += 2) {
        t[c] = __builtin_shufflevector(r[c], r[c + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[c + 1] = __builtin_shufflevector(r[c], r[c + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int c = 0; c < 8; c += 4) {
        u[c] = __builtin_shufflevector(t[c], t[c + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[c + 1] = __builtin_shufflevector(t[c], t[c + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[c + 2] = __builtin_shufflevector(t[c + 1], t[c + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[c + 3] = __builtin_shufflevector(t[c + 1], t[c + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int q = 0; q < 4; q++) {
        ck_v8 lo = __builtin_shufflevector(u[q], u[q + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        ck_v8 hi = __builtin_shufflevector(u[q], u[q + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(dst + (size_t)q * ldd, &lo, sizeof lo);
        memcpy(dst + (size_t)(q + 4) * ldd, &hi, sizeof hi);
    }
}

/* Columns [j0, j0 + nr) of op(B)[K,N] -> panel bp[p][0..16), columns past nr zero. */
static inline __attribute__((always_inline)) void sg_pack_panel(float *restrict bp, const float *restrict B, int ldb,
                                                                int j0, int nr, int K, int transB) {
    if (!transB) { /* B[p*ldb + j]: up to 16 contiguous floats per k */
        for (int p = 0; p < K; p++) {
            const float *src = B + (size_t)p * ldb + j0;
            float *d = bp + (size_t)p * CK_SG_NR;
            for (int c = 0; c < CK_SG_NR; c++) d[c] = c < nr ? src[c] : 0.0f;
        }
        return;
    }
    /* B[j*ldb + p]: transpose up to 16 rows of B, 8 x 8 blocks in registers */
    for (int c0 = 0; c0 < CK_SG_NR; c0 += 8) {
        int p = 0;
        if (c0 + 8 <= nr) {
            for (; p + 8 <= K; p += 8) {
                sg_transpose8(bp + (size_t)p * CK_SG_NR + c0, CK_SG_NR, B + (size_t)(j0 + c0) * ldb + p, ldb);
            }
        }
        for (int c = c0; c < c0 + 8; c++) {
            const float *src = B + (size_t)(j0 + c) * ldb;
            for (int q = p; q < K; q++) bp[(size_t)q * CK_SG_NR + c] = c < nr ? src[q] : 0.0f;
        }
    }
}

/* c[0..nr) = alpha * (lo, hi)[0..nr) + beta * c (beta == 0 never reads c). Vectors by pointer: as
 * by-value arguments their ABI would differ between the clones (-Wpsabi). */
static inline __attribute__((always_inline)) void sg_store_row(float *restrict c, float alpha, float beta,
                                                               const ck_v8 *lo, const ck_v8 *hi, int nr) {
    ck_v8 v0 = *lo * alpha, v1 = *hi * alpha;
    if (nr == CK_SG_NR) {
        if (beta != 0.0f) {
            v0 += *(const ck_v8 *)c * beta;
            v1 += *(const ck_v8 *)(c + 8) * beta;
        }
        *(ck_v8 *)c = v0;
        *(ck_v8 *)(c + 8) = v1;
    } else {
        float t[CK_SG_NR];
        memcpy(t, &v0, sizeof v0);
        memcpy(t + 8, &v1, sizeof v1);
        for (int j = 0; j < nr; j++) c[j] = t[j] + (beta != 0.0f ? beta * c[j] : 0.0f);
    }
}

/* C[mr x nr] tile = alpha * sum_p A(i, p) b[p*bs .. + 16) + beta * C, A(i, p) = a[i*ars + p*acs].
 * Rows past mr repeat row mr-1 (computed, not stored), so the loop has no edge cases. */
static inline __attribute__((always_inline)) void sg_tile(float *restrict C, int ldc, const float *restrict a,
                                                          size_t ars, size_t acs, const float *restrict b,
                                                          size_t bs, int mr, int nr, int K, float alpha, float beta) {
    const float *a0 = a, *a1 = a + (size_t)CK_MIN(1, mr - 1) * ars, *a2 = a + (size_t)CK_MIN(2, mr - 1) * ars,
                *a3 = a + (size_t)CK_MIN(3, mr - 1) * ars, *a4 = a + (size_t)CK_MIN(4, mr - 1) * ars,
                *a5 = a + (size_t)CK_MIN(5, mr - 1) * ars;
    ck_v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    ck_v8 c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    for (int p = 0; p < K; p++) {
        const ck_v8 b0 = *(const ck_v8 *)(b + (size_t)p * bs);
        const ck_v8 b1 = *(const ck_v8 *)(b + (size_t)p * bs + 8);
        const size_t o = (size_t)p * acs;
        float x; /* scalar * vector splats the scalar (a broadcast load) */
        x = a0[o]; c00 += x * b0; c01 += x * b1;
        x = a1[o]; c10 += x * b0; c11 += x * b1;
        x = a2[o]; c20 += x * b0; c21 += x * b1;
        x = a3[o]; c30 += x * b0; c31 += x * b1;
        x = a4[o]; c40 += x * b0; c41 += x * b1;
        x = a5[o]; c50 += x * b0; c51 += x * b1;
    }
    sg_store_row(C, alpha, beta, &c00, &c01, nr);
    if (mr > 1) sg_store_row(C + (size_t)ldc, alpha, beta, &c10, &c11, nr);
    if (mr > 2) sg_store_row(C + 2 * (size_t)ldc, alpha, beta, &c20, &c21, nr);
    if (mr > 3) sg_store_row(C + 3 * (size_t)ldc, alpha, beta, &c30, &c31, nr);
    if (mr > 4) sg_store_row(C + 4 * (size_t)ldc, alpha, beta, &c40, &c41, nr);
    if (mr > 5) sg_store_row(C + 5 * (size_t)ldc, alpha, beta, &c50, &c51, nr);
}

/* Same contract as ck_gemm, for operands that fit in cache; pack: ck_gemm_small_pack_size(N, K)
 * floats. Single-threaded and reentrant (no BLAS call, no lock). */
CK_SIMD_CLONES
void ck_gemm_small(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                   int transA, int transB, float alpha, float beta, float *pack) {
    if (ck_isa() == CK_ISA_AVX512) {
        ck_gemm_small_avx512(C, ldc, A, lda, B, ldb, M, N, K, transA, transB, alpha, beta, pack);
        return;
    }
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++) {
            float *c = C + (size_t)i * ldc;
            for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        }
        return;
    }
    const size_t ars = transA ? 1 : (size_t)lda, acs = transA ? (size_t)lda : 1;
    for (int j0 = 0; j0 < N; j0 += CK_SG_NR) {
        const int nr = CK_MIN(CK_SG_NR, N - j0);
        /* packed even when untransposed: read in place, a panel of V (row stride 3C) touches a new
         * page every k, and the kernel ran at two thirds of its packed rate */
        sg_pack_panel(pack, B, ldb, j0, nr, K, transB);
        for (int i0 = 0; i0 < M; i0 += CK_SG_MR) {
            sg_tile(C + (size_t)i0 * ldc + j0, ldc, A + i0 * ars, ars, acs, pack, CK_SG_NR, CK_MIN(CK_SG_MR, M - i0), nr,
                    K, alpha, beta);
        }
    }
}

/* Upper triangle of C[N,N] (ldc) = alpha * A[N,K] A^T + beta * C with the small kernel: only the
 * 6 x 16 tiles that reach the diagonal or above are computed, about half the products of a GEMM.
 * Unlike ck_syrk_upper, tiles that straddle the diagonal also write their entries just below it
 * (the values of the symmetric product): at most 15 per row, entry (i, j) only if j >= i - 15. pack: ck_gemm_small_pack_size(N, K) floats. The Gram matrices of per-example gradient
 * norms (T x T, K = din or dout) are this shape; cblas_ssyrk runs them at about a third of its
 * large-matrix rate on one core. */
CK_SIMD_CLONES
void ck_syrk_small_upper(float *C, int ldc, const float *A, int lda, int N, int K, float alpha, float beta,
                         float *pack) {
    if (ck_isa() == CK_ISA_AVX512) {
        ck_syrk_small_upper_avx512(C, ldc, A, lda, N, K, alpha, beta, pack);
        return;
    }
    if (N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < N; i++) {
            for (int j = i; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        }
        return;
    }
    for (int j0 = 0; j0 < N; j0 += CK_SG_NR) {
        const int nr = CK_MIN(CK_SG_NR, N - j0);
        sg_pack_panel(pack, A, lda, j0, nr, K, CK_TRANS_T); /* op(B) = A^T */
        for (int i0 = 0; i0 < j0 + nr; i0 += CK_SG_MR) { /* rows below j0 + nr: strictly lower */
            sg_tile(C + (size_t)i0 * ldc + j0, ldc, A + (size_t)i0 * lda, (size_t)lda, 1, pack, CK_SG_NR,
                    CK_MIN(CK_SG_MR, j0 + nr - i0), nr, K, alpha, beta);
        }
    }
}
