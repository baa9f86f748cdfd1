/*
 * rope.c — rotary position embeddings, Hugging Face's rotate-half convention (Llama, Qwen2): within each
 * head of HS dims, dims j and j + HS/2 form a pair rotated by the angle pos * theta^(-2j/HS):
 *   out_j = x_j cos - x_{j+H} sin,  out_{j+H} = x_{j+H} cos + x_j sin   (H = HS/2).
 * The angles come from a table built once per length (ck_rope_table); the backward is the inverse
 * rotation. No other scaling (linear, NTK, YaRN) or interleaved convention.
 */
#include <math.h>

#include "ckernels.h"
#include "ck_internal.h"

/* cos, sin [T, HS/2]: for position p and pair j, the float32 angle p * inv_freq_j with inv_freq_j =
 * 1 / theta^(2j/HS), as transformers computes them (inv_freq and the product in float32). */
void ck_rope_table(float *cosv, float *sinv, int T, int HS, float theta) {
    int H = HS / 2;
    for (int j = 0; j < H; j++) {
        float inv = (float)(1.0 / pow((double)theta, (double)(2 * j) / (double)HS));
        for (int p = 0; p < T; p++) {
            float a = (float)p * inv;
            cosv[p * H + j] = (float)cos((double)a);
            sinv[p * H + j] = (float)sin((double)a);
        }
    }
}

/* x[B*T rows, ld] holds NH heads of HS dims from column 0; rotated in place. Row r is at position
 * r % T. backward != 0 applies the inverse rotation (the gradient of the forward). */
void ck_rope_apply(float *x, int ld, const float *cosv, const float *sinv, int rows, int T, int NH, int HS, int backward) {
    int H = HS / 2;
    float sgn = backward ? -1.0f : 1.0f;
    for (int r = 0; r < rows; r++) {
        const float *c = cosv + (size_t)(r % T) * H, *s = sinv + (size_t)(r % T) * H;
        for (int h = 0; h < NH; h++) {
            float *restrict a = x + (size_t)r * ld + h * HS, *restrict b = a + H;
            for (int j = 0; j < H; j++) {
                float xa = a[j], xb = b[j], sn = sgn * s[j];
                a[j] = xa * c[j] - xb * sn;
                b[j] = xb * c[j] + xa * sn;
            }
        }
    }
}

/* Plain twin: rotate-half written literally (out = x * cos + rotate_half(x) * sin over HS dims). */
void ck_rope_apply_ref(float *x, int ld, const float *cosv, const float *sinv, int rows, int T, int NH, int HS, int backward) {
    int H = HS / 2;
    float tmp[1024];
    for (int r = 0; r < rows; r++) {
        for (int h = 0; h < NH; h++) {
            float *v = x + (size_t)r * ld + h * HS;
            for (int d = 0; d < HS; d++) {
                int j = d % H;
                double cs = cosv[(r % T) * H + j], sn = (backward ? -1.0 : 1.0) * sinv[(r % T) * H + j];
                double rot = d < H ? -v[d + H] : v[d - H];
                tmp[d] = (float)(v[d] * cs + rot * sn);
            }
            for (int d = 0; d < HS; d++) v[d] = tmp[d];
        }
    }
}
