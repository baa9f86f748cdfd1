#include "wmpi.h"
#include <stdlib.h>
#include <string.h>

#ifdef WINNOW_MPI
#include <mpi.h>
#include <limits.h>

int wmpi_available(void) { return 1; }
int wmpi_init(void) {
    int done = 0;
    MPI_Initialized(&done);
    return done ? MPI_SUCCESS : MPI_Init(NULL, NULL);
}
void wmpi_finalize(void) { MPI_Finalize(); }
void wmpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
int wmpi_rank(void) { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
int wmpi_size(void) { int s = 1; MPI_Comm_size(MPI_COMM_WORLD, &s); return s; }
void wmpi_barrier(void) { MPI_Barrier(MPI_COMM_WORLD); }

/* Counts above INT_MAX go in slices. */
void wmpi_allreduce_float(float *x, int64_t n) {
    for (int64_t o = 0; o < n; o += INT_MAX / 2) {
        int c = (int)((n - o) < INT_MAX / 2 ? (n - o) : INT_MAX / 2);
        MPI_Allreduce(MPI_IN_PLACE, x + o, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}
void wmpi_allreduce_double(double *x, int64_t n) {
    for (int64_t o = 0; o < n; o += INT_MAX / 2) {
        int c = (int)((n - o) < INT_MAX / 2 ? (n - o) : INT_MAX / 2);
        MPI_Allreduce(MPI_IN_PLACE, x + o, c, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
}
int wmpi_gather_bytes(const void *data, int64_t n, int64_t *sizes, void **out) {
    int size = wmpi_size(), rank = wmpi_rank();
    MPI_Gather(&n, 1, MPI_INT64_T, sizes, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    /* Point to point, rank by rank, so no count has to fit in an int displacement. */
    if (rank == 0) {
        int64_t total = 0;
        for (int r = 0; r < size; r++) total += sizes[r];
        char *buf = malloc(total > 0 ? (size_t)total : 1);
        if (!buf) return -1;
        memcpy(buf, data, (size_t)n);
        int64_t off = sizes[0];
        for (int r = 1; r < size; r++) {
            for (int64_t o = 0; o < sizes[r]; o += INT_MAX / 2) {
                int c = (int)((sizes[r] - o) < INT_MAX / 2 ? (sizes[r] - o) : INT_MAX / 2);
                MPI_Recv(buf + off + o, c, MPI_BYTE, r, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            }
            off += sizes[r];
        }
        *out = buf;
    } else {
        for (int64_t o = 0; o < n; o += INT_MAX / 2) {
            int c = (int)((n - o) < INT_MAX / 2 ? (n - o) : INT_MAX / 2);
            MPI_Send((const char *)data + o, c, MPI_BYTE, 0, 7, MPI_COMM_WORLD);
        }
    }
    return 0;
}
#else
int wmpi_available(void) { return 0; }
int wmpi_init(void) { return -1; }
void wmpi_finalize(void) {}
void wmpi_abort(int code) { exit(code); }
int wmpi_rank(void) { return 0; }
int wmpi_size(void) { return 1; }
void wmpi_barrier(void) {}
void wmpi_allreduce_float(float *x, int64_t n) { (void)x; (void)n; }
void wmpi_allreduce_double(double *x, int64_t n) { (void)x; (void)n; }
int wmpi_gather_bytes(const void *data, int64_t n, int64_t *sizes, void **out) {
    sizes[0] = n;
    *out = malloc(n > 0 ? (size_t)n : 1);
    if (!*out) return -1;
    memcpy(*out, data, (size_t)n);
    return 0;
}
#endif
