/*
 * gemm.c — single-precision matrix multiply, the one place the transpose flags live.
 * ck_gemm wraps OpenBLAS cblas_sgemm (row-major); ck_gemm_ref is the plain-loop oracle;
 * ck_gemm_strided_batched loops cblas_sgemm over equally spaced operands (OpenBLAS 0.3.21 has no
 * batched sgemm). Also the OpenBLAS thread-count knob. No complex, double or packed formats.
 */
#include <cblas.h>
#include <lapacke.h>
#include <pthread.h>

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

void ck_parallel_worker_exit(void) { ck_region_depth--; }

/* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C (BLAS semantics: beta == 0 never reads C,
 * so C may hold garbage). Degenerate sizes are handled here because cblas would complain through
 * xerbla (which prints) about e.g. lda = 0 when K == 0. */
void ck_gemm(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
             int M, int N, int K, int transA, int transB, float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* empty sum: C = beta * C */
        for (int i = 0; i < M; i++) {
            float *c = C + (size_t)i * ldc;
            for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        }
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
