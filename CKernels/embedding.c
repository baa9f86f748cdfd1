/*
 * embedding.c — table lookup (gather) and its gradient (scatter-add) for word, position and
 * token-type embeddings. The forward can accumulate so BERT's three embeddings sum into one buffer
 * without a temporary. Ids are trusted (Swift checks them against the vocabulary once); there is no
 * padding_idx special case and no sparse gradient.
 */
#include <string.h>

#include "ckernels.h"
#include "ck_internal.h"

/* table[V,C], ids[N] -> out[N,C] = table[ids[n], :]  (accumulate != 0: out += instead of =). */
void ck_embedding_forward(float *out, const float *table, const int32_t *ids, int N, int C, int accumulate) {
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        const float *row = table + (size_t)ids[n] * C;
        if (accumulate) {
            for (int c = 0; c < C; c++) o[c] += row[c];
        } else {
            memcpy(o, row, (size_t)C * sizeof(float));
        }
    }
}

/* dout[N,C], ids[N] -> dtable[ids[n], :] += dout[n, :]. Sequential, so repeated ids are safe. */
void ck_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C) {
    for (int n = 0; n < N; n++) {
        float *d = dtable + (size_t)ids[n] * C;
        const float *g = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
}
