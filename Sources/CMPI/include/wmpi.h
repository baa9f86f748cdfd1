#pragma once
#include <stddef.h>
#include <stdint.h>

/* A thin C layer over the MPI calls winnow-mpi needs (Open MPI's handles are macros Swift cannot
 * import). Built with WINNOW_MPI (swift build --traits MPI) it calls MPI; without, every function
 * reports that MPI is absent (wmpi_available() == 0). */
int wmpi_available(void);
int wmpi_init(void);
void wmpi_finalize(void);
void wmpi_abort(int code);
int wmpi_rank(void);
int wmpi_size(void);
void wmpi_barrier(void);
/* In-place sum over all ranks. */
void wmpi_allreduce_float(float *x, int64_t n);
void wmpi_allreduce_double(double *x, int64_t n);
/* Gathers each rank's bytes at rank 0: sizes (one int64 per rank) and the concatenation (rank order).
 * On rank 0 *out is malloc'ed (caller frees) and sizes has wmpi_size() entries; elsewhere untouched. */
int wmpi_gather_bytes(const void *data, int64_t n, int64_t *sizes, void **out);
