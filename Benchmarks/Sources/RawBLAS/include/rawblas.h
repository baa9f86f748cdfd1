/* rawblas.h — cblas_sgemm called directly (no ck_gemm wrapper, no lock), for the benchmark that
 * checks the wrapper costs nothing. Benchmarks only. */
#ifndef RAWBLAS_H
#define RAWBLAS_H
/* Row-major C[M,N] = A[M,K] @ B[N,K]^T, beta 0. */
void rawblas_sgemm_nt(float *C, const float *A, const float *B, int M, int N, int K);
#endif
