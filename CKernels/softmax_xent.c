/*
 * softmax_xent.c — row softmax and fused softmax + cross-entropy over logits[N,V] with integer
 * targets (negative target = ignored row, like PyTorch's ignore_index=-100), and its backward
 * with per-row loss weights. The exp-sum runs in double (V can be a 30522-word vocabulary) and the
 * loss is logsumexp - z_y, so a vanishing probability never gives log(0).
 * Leaves out label smoothing, class weights and the reduction over rows (the caller's dlosses).
 */
#include <math.h>

#include "ckernels.h"
#include "ck_internal.h"

/* probs[V] = softmax(x[V]); returns log(sum exp(x - max)) + max = logsumexp(x).
 * probs may alias x: each element is read before it is written. */
CK_SIMD_CLONES
static double softmax_row(float *probs, const float *x, int V) {
    CK_FP_REASSOC
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) { /* every logit is -inf: no finite distribution, give zeros (no NaN) */
        for (int i = 0; i < V; i++) probs[i] = 0.0f;
        return -INFINITY;
    }
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        float e = ck_expf(x[i] - mx);
        probs[i] = e;
        sum += (double)e;
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < V; i++) probs[i] *= inv;
    return log(sum) + (double)mx;
}

/* logits[N,V], targets[N] -> probs[N,V] = softmax(logits), losses[N] = logsumexp - logits[target]
 * (= -log probs[target]); rows with targets[n] < 0 get loss 0 but still get probs. */
void ck_softmax_xent_forward(float *losses, float *probs, const float *logits, const int32_t *targets,
                             int N, int V) {
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        int32_t t = targets[n];
        float zt = t >= 0 ? x[t] : 0.0f; /* read before probs (which may alias) overwrites it */
        double lse = softmax_row(probs + (size_t)n * V, x, V);
        losses[n] = t >= 0 ? (float)(lse - (double)zt) : 0.0f;
    }
}

/* dlosses[N], probs[N,V], targets[N] -> dlogits[n,:] += dlosses[n] * (probs[n,:] - onehot(t_n)).
 * Ignored rows (t_n < 0) get nothing. */
void ck_softmax_xent_backward(float *dlogits, const float *dlosses, const float *probs,
                              const int32_t *targets, int N, int V) {
    for (int n = 0; n < N; n++) {
        int32_t t = targets[n];
        if (t < 0) continue;
        float dl = dlosses[n];
        float *d = dlogits + (size_t)n * V;
        const float *p = probs + (size_t)n * V;
        /* p - 1 is exact for p in [0.5, 1], so the target entry keeps its precision */
        for (int i = 0; i < V; i++) d[i] += dl * (p[i] - (i == t ? 1.0f : 0.0f));
    }
}

/* probs[N,V] = softmax(logits[N,V]) row by row; probs may alias logits. */
void ck_softmax_forward(float *probs, const float *logits, int N, int V) {
    for (int n = 0; n < N; n++) softmax_row(probs + (size_t)n * V, logits + (size_t)n * V, V);
}
