/* rawblas.c — see rawblas.h. */
#include <cblas.h>

#include "rawblas.h"

void rawblas_sgemm_nt(float *C, const float *A, const float *B, int M, int N, int K) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
}
