/*
 * ckernels.h — the numeric core of Winnow.
 *
 * Conventions (see shared/style.md):
 *  - Float32 everywhere; sums over more than a few thousand terms accumulate in double.
 *  - Every 2-D operand is row-major; `ld*` arguments are leading dimensions (row strides, in floats).
 *  - Argument order: outputs, saved-for-backward buffers, inputs, sizes, scalars.
 *  - Backward functions ACCUMULATE (+=) into their d* outputs; the caller zeroes them first.
 *    Any d* pointer documented as "nullable" may be NULL to skip that gradient.
 *  - Kernels never allocate, print, exit or validate. Scratch memory is passed in.
 *  - Shape letters: B batch, T tokens, C channels, OC output channels, NH heads, HS head size, V vocab.
 *  - Every optimised kernel has a plain-loop `_ref` twin with the same signature.
 */
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- gemm.c */

/* Transpose flags for ck_gemm*: CK_TRANS_N uses the operand as stored, CK_TRANS_T its transpose. */
enum { CK_TRANS_N = 0, CK_TRANS_T = 1 };

/* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C.  op(A) is A[M,K] (lda >= K) or, with
 * transA, A stored as [K,M] (lda >= M); likewise B.  Row-major: Winnow's AVX-512 kernel when
 * ck_isa() is CK_ISA_AVX512, else cblas_sgemm. */
void ck_gemm(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
             int M, int N, int K, int transA, int transB, float alpha, float beta);
/* Upper triangle of C[N,N] = alpha * A[N,K] A^T + beta * C (cblas_ssyrk); the strict lower triangle
 * is left untouched. */
void ck_syrk_upper(float *C, int ldc, const float *A, int lda, int N, int K, float alpha, float beta);
void ck_gemm_ref(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
                 int M, int N, int K, int transA, int transB, float alpha, float beta);

/* The instruction set of ck_gemm's products: CK_ISA_AVX2 is OpenBLAS as configured (its preset
 * kernel), CK_ISA_AVX512 Winnow's own AVX-512 GEMM (gemm_avx512.c). Chosen once from the CPU
 * (AVX-512 F/BW/DQ/VL when present) unless WINNOW_ISA=avx2|avx512 asks; a request the CPU cannot
 * honour falls back to AVX2. ck_isa_requested: the WINNOW_ISA value, -1 when unset. ck_set_isa
 * switches (tests and benchmarks, while no product runs) and returns the ISA in use. */
enum { CK_ISA_AVX2 = 0, CK_ISA_AVX512 = 1, CK_ISA_AVX512_BF16 = 2 /* ck_isa_supported only */ };
int ck_isa(void);
int ck_isa_supported(int isa);
int ck_isa_requested(void);
int ck_set_isa(int isa);
/* Opt-in bf16 products for inference (`--precision bf16`): with CK_PRECISION_BF16, ck_gemm rounds
 * both operands to bf16 (nearest even) and accumulates their products in F32 (vdpbf16ps). Needs
 * AVX512_BF16: ck_set_gemm_precision returns the precision in effect (F32 where the CPU lacks it).
 * Per thread (Parallel.forEach hands the caller's to its workers); never around a backward pass. */
enum { CK_PRECISION_F32 = 0, CK_PRECISION_BF16 = 1 };
int ck_set_gemm_precision(int precision);
int ck_gemm_precision(void);
/* ck_gemm's contract with bf16 operands (whatever the precision setting says); _ref: plain loops on
 * the rounded operands, products summed in double. */
void ck_gemm_bf16(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
                  int M, int N, int K, int transA, int transB, float alpha, float beta);
void ck_gemm_bf16_ref(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
                      int M, int N, int K, int transA, int transB, float alpha, float beta);
/* x rounded to the nearest bf16 (ties to even), as a float. */
float ck_round_bf16(float x);

/* ck_gemm's contract with OpenBLAS's cblas_sgemm, whatever ck_isa() says. */
void ck_gemm_openblas(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
                      int M, int N, int K, int transA, int transB, float alpha, float beta);
/* ck_gemm's contract with Winnow's AVX-512 kernel, whatever ck_isa() says (call only when
 * ck_isa_supported(CK_ISA_AVX512)). Results do not depend on the thread count. */
void ck_gemm_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb,
                    int M, int N, int K, int transA, int transB, float alpha, float beta);

/* C[M,N] = alpha * op(A) op(B) + beta * C + bias[N] on every row: ck_gemm with the bias added as each
 * register tile of Winnow's AVX-512 kernel is stored (no pass over C to fill or add it); OpenBLAS adds
 * onto rows filled with the bias. _ref: ck_gemm_ref, then the bias. */
void ck_gemm_bias(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                  int transA, int transB, float alpha, float beta, const float *bias);
void ck_gemm_bias_ref(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                      int transA, int transB, float alpha, float beta, const float *bias);

/* Same contract as ck_gemm for small, cache-resident operands (attention's per-head products):
 * a register-tiled kernel of our own, single-threaded, no BLAS call and no lock. pack: scratch of
 * ck_gemm_small_pack_size(N, K) floats (op(B) is packed into it). */
size_t ck_gemm_small_pack_size(int N, int K);
void ck_gemm_small(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                   int transA, int transB, float alpha, float beta, float *pack);

/* ck_gemm_small's contract with the AVX-512 12 x 32 tile (what ck_gemm_small runs when ck_isa() is
 * CK_ISA_AVX512; call only where the CPU has AVX-512). */
void ck_gemm_small_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                          int transA, int transB, float alpha, float beta, float *pack);

/* Upper triangle of C[N,N] = alpha * A[N,K] A^T + beta * C with ck_gemm_small's kernel (the
 * T x T Gram matrices of per-example gradient norms). Tiles crossing the diagonal also write up to
 * 15 entries below it in each row (31 on AVX-512; values of the symmetric product); read the upper
 * triangle only.
 * pack: ck_gemm_small_pack_size(N, K) floats. */
void ck_syrk_small_upper(float *C, int ldc, const float *A, int lda, int N, int K, float alpha, float beta,
                         float *pack);
/* Its AVX-512 form (what it runs when ck_isa() is CK_ISA_AVX512): 12 x 32 tiles, so tiles crossing the
 * diagonal write up to 31 entries below it in a row. */
void ck_syrk_small_upper_avx512(float *C, int ldc, const float *A, int lda, int N, int K, float alpha, float beta,
                                float *pack);

/* `batch` independent GEMMs; operand i starts at X + i * strideX (strides in floats). */
void ck_gemm_strided_batched(float *C, int ldc, long strideC, const float *A, int lda, long strideA,
                             const float *B, int ldb, long strideB, int batch,
                             int M, int N, int K, int transA, int transB, float alpha, float beta);

/* Orthonormalises the n columns of A[m, n] (row-major, lda >= n, m >= n) in place by a QR
 * factorisation (LAPACKE sgeqrf + sorgqr): on return A holds Q's first n columns. tau: n floats.
 * Returns LAPACK's info (0 on success). Used for seeded random projections (TracIn --project). */
int ck_qr_orthonormalize(float *A, int lda, float *tau, int m, int n);

/* The threading policy (OpenBLAS's results depend on its thread count, so it never changes under a
 * running call): ck_gemm, ck_syrk_upper and the LAPACK calls hold a read lock outside parallel
 * regions. ck_parallel_region_begin (calling thread) takes the write lock and sets OpenBLAS to one
 * thread until ck_parallel_region_end; worker threads bracket each task with
 * ck_parallel_worker_enter/exit so their calls inside the region take no lock. Regions nest. */
int ck_parallel_region_begin(void);
void ck_parallel_region_end(void);
void ck_parallel_worker_enter(void);
void ck_parallel_worker_exit(void);
/* OpenBLAS thread count (the only threading knob of the C core). */
void ck_blas_set_threads(int n);
/* Cores this process may run on: its CPU affinity mask (taskset, mpirun's binding), else the online count. */
int ck_cpu_count(void);
int ck_blas_get_threads(void);
/* The core OpenBLAS chose its kernels for (what OPENBLAS_CORETYPE selected, or the detected CPU). */
const char *ck_blas_corename(void);

/* ---------------------------------------------------------------- linear.c */

/* out[N,OC] (ld_out) = inp[N,C] (ld_inp) @ weight[OC,C]^T + bias[OC]; weight is PyTorch's [out,in].
 * bias is nullable. */
void ck_linear_forward(float *out, int ld_out, const float *inp, int ld_inp,
                       const float *weight, const float *bias, int N, int C, int OC);
/* dinp[N,C] += dout @ weight;  dweight[OC,C] += dout^T @ inp;  dbias[OC] += sum_n dout[n].
 * dinp, dweight, dbias nullable. */
void ck_linear_backward(float *dinp, int ld_dinp, float *dweight, float *dbias,
                        const float *dout, int ld_dout, const float *inp, int ld_inp,
                        const float *weight, int N, int C, int OC);

/* ---------------------------------------------------------------- activations.c */

/* GELU, erf form (Hugging Face "gelu"): 0.5 x (1 + erf(x / sqrt 2)). */
void ck_gelu_forward(float *out, const float *inp, size_t n);
void ck_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
/* The same, writing dinp instead of accumulating (saves a zeroing pass). */
void ck_gelu_backward_set(float *dinp, const float *dout, const float *inp, size_t n);
/* out = tanh(inp); the backward uses the forward OUTPUT: dinp += dout * (1 - out^2). */
void ck_tanh_forward(float *out, const float *inp, size_t n);
void ck_tanh_backward(float *dinp, const float *dout, const float *out, size_t n);
/* out = a + b (residual). out may alias a or b. */
void ck_add(float *out, const float *a, const float *b, size_t n);
/* x *= s */
void ck_scale(float *x, size_t n, float s);

/* Counter-based RNG (SplitMix64 of seed and counter): the same (seed, counter) always gives the same
 * number, so dropout masks are recomputed in the backward pass instead of stored.  Exactly:
 * u = (mix(mix(seed) + (counter + 1) * 0x9E3779B97F4A7C15) >> 40) * 2^-24, mix = SplitMix64's
 * finaliser; 24 bits, so u is in [0, 1) and exactly representable. */
float ck_rng_uniform(uint64_t seed, uint64_t counter);
/* Inverted dropout: out[i] = keep(i) ? inp[i] / (1-p) : 0, keep(i) = uniform(seed, offset+i) >= p.
 * p == 0 copies.  out may alias inp. */
void ck_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed, uint64_t offset);
/* dinp[i] += keep(i) ? dout[i] / (1-p) : 0 with the same mask as the forward. */
void ck_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed, uint64_t offset);
/* The same, writing dinp instead of accumulating (p == 0 copies). */
void ck_dropout_backward_set(float *dinp, const float *dout, size_t n, float p, uint64_t seed, uint64_t offset);

/* GEMM epilogues (the GEMM ran with beta = 0):
 *   ck_add_bias_rows          x[r, :] (row stride ld) += bias
 *   ck_bias_gelu_forward      pre += bias (row broadcast); out = gelu(pre)
 *   ck_bias_dropout_residual  out = res + dropout(y + bias), counter offset + r*cols + c; out may alias res
 * Rows are independent, so Swift splits them across cores. */
void ck_add_bias_rows(float *x, int ld, const float *bias, int rows, int cols);
void ck_bias_gelu_forward(float *pre, float *out, const float *bias, int rows, int cols);
/* Inference form: out = gelu(pre + bias), pre only read (nothing kept for a backward). */
void ck_bias_gelu_forward_infer(const float *pre, float *out, const float *bias, int rows, int cols);
/* Training form: x = pre + bias; out = gelu(x); pre = gelu'(x) (kept instead of x, for the backward:
 * ck_mul(dinp, dout, pre, n) is then the whole GELU backward). */
void ck_bias_gelu_forward_train(float *pre, float *out, const float *bias, int rows, int cols);
/* dinp[n] = dout[n] * deriv[n]. */
void ck_mul(float *dinp, const float *dout, const float *deriv, size_t n);
void ck_bias_dropout_residual(float *out, const float *res, const float *y, const float *bias,
                              int rows, int cols, float p, uint64_t seed, uint64_t offset);

/* ---------------------------------------------------------------- layernorm.c */

/* Per row n of inp[N,C]: out = (x - mean) * rstd * weight + bias; saves mean[N], rstd[N]. */
void ck_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps);
/* dinp, dweight, dbias accumulate; dweight/dbias nullable. */
void ck_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean, const float *rstd,
                           int N, int C);

/* The input part of ck_layernorm_backward, writing dinp instead of accumulating. */
void ck_layernorm_backward_input_set(float *dinp, const float *dout, const float *inp, const float *weight,
                                     const float *mean, const float *rstd, int N, int C);
/* The weight/bias gradient part of ck_layernorm_backward over columns [0, cols) of row stride ld
 * (pass column-offset pointers for a column block; blocks are independent):
 *   dweight[c] += sum_n dout[n,c] xhat[n,c];  dbias[c] += sum_n dout[n,c]   (double sums). */
void ck_layernorm_param_grads(float *dweight, float *dbias, const float *dout, const float *inp, int ld,
                              const float *mean, const float *rstd, int N, int cols);
/* dst[c] += sum_{n < N} G[n, c] over columns [0, cols) of row stride ldg, summed in double (the
 * bias gradient of a linear layer; column blocks are independent). */
void ck_column_sums_add(float *dst, const float *G, int ldg, int N, int cols);
/* The same sum cut into fixed blocks of rows (contiguous reads): partial[c] = sum_{n < N} G[n, c] in
 * double over one block (overwritten); then dst[c] += (float) sum_b partial[b * cols + c], blocks in
 * order. Split-independent as long as the block size is fixed. */
void ck_column_sums_partial(double *partial, const float *G, int ldg, int N, int cols);
void ck_column_partials_add(float *dst, const double *partial, int blocks, int cols);
/* ck_layernorm_param_grads over one block of rows into double partials (overwritten), added with
 * ck_column_partials_add (once for the weight, once for the bias). */
void ck_layernorm_param_partial(double *pw, double *pb, const float *dout, const float *inp, int ld,
                                const float *mean, const float *rstd, int N, int cols);

/* ---------------------------------------------------------------- softmax_xent.c */

/* probs[N,V] = softmax(logits[N,V]) (ld = V); losses[n] = -log probs[n, targets[n]].
 * A row with targets[n] < 0 is ignored: loss 0 (its probs are still computed). */
void ck_softmax_xent_forward(float *losses, float *probs, const float *logits, const int32_t *targets,
                             int N, int V);
/* dlogits[n,:] += dlosses[n] * (probs[n,:] - onehot(targets[n])); ignored rows get nothing.
 * dlosses carries the loss weights (1/N for a mean, w_j for PRESENCE). */
void ck_softmax_xent_backward(float *dlogits, const float *dlosses, const float *probs,
                              const int32_t *targets, int N, int V);
/* Row softmax in place-safe form: probs[N,V] = softmax(logits). */
void ck_softmax_forward(float *probs, const float *logits, int N, int V);

/* ---------------------------------------------------------------- attention.c */

/* Multi-head scaled dot-product attention, fused: scores, mask, softmax, dropout, weighted sum.
 * q, k, v: rows of B*T tokens with row stride ld_qkv (so they may be column slices of one fused
 * [B*T, 3C] QKV buffer); head h reads columns [h*HS, (h+1)*HS).  C = NH*HS.
 * out[B*T, C] (row stride C): head h writes columns [h*HS, (h+1)*HS).
 * att[B, NH, T, T]: saved softmax probabilities (before dropout), for the backward; nullable in
 * ck_attention_forward_heads (inference: each head's probabilities stay in work, nothing is kept).
 * key_mask[B, T]: additive mask on keys (0 keep, large negative drop; Hugging Face's
 * (1 - attention_mask) * finfo.min), nullable.  causal != 0 also masks keys after the query;
 * causal > 1 is a sliding window of that many keys as well (Mistral's and Gemma's: key j of query i is kept iff
 * i - causal < j <= i).
 * scale: usually 1/sqrt(HS).  Attention-probability dropout with p_drop and the counter RNG
 * (seed; counter = ((b*NH + h)*T + i)*T + j), so the backward recomputes the mask.
 * work: ck_attention_work_size(T, HS) floats. */
size_t ck_attention_work_size(int T, int HS);
void ck_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                          int ld_qkv, const float *key_mask, float *work,
                          int B, int T, int NH, int HS, int causal, float scale,
                          float p_drop, uint64_t seed);
/* dout[B*T, C] (row stride C); dq, dk, dv (row stride ld_dqkv) accumulate.  Same scale, p_drop and
 * seed as the forward.  No key_mask: masked keys have att = 0, so they get zero gradient.  causal: the forward's;
 * the products then skip the keys after each block of 64 queries (without dropout), as the forward does. */
void ck_attention_backward(float *dq, float *dk, float *dv, int ld_dqkv, float *work,
                           const float *dout, const float *att, const float *q, const float *k,
                           const float *v, int ld_qkv, int B, int T, int NH, int HS, int causal, float scale,
                           float p_drop, uint64_t seed);
/* The same over heads bh = b*NH + h in [bh0, bh1) only: disjoint ranges write disjoint memory, so
 * Swift runs ranges concurrently, each with its own work (ck_attention_work_size(T, HS) floats).
 * att_drop[B,NH,T,T] (nullable) keeps the forward's dropped probabilities; given to the backward,
 * it replaces the recomputed mask (same result, no random numbers).
 * accumulate == 0 writes the heads' dq, dk, dv slices instead of adding to them.
 * nq in [1, T) computes the first nq queries of each sequence only (a classifier's last layer needs
 * the [CLS] row alone): the forward writes those rows of out and att (its others are left as they
 * are); the backward reads dout's first nq rows, and gives dk, dv from them and dq on those rows
 * (with accumulate == 0 the heads' other dq rows are written zero). Rows < nq equal the full
 * computation's (dropout counters included). nq <= 0 or >= T: every query. */
void ck_attention_forward_heads(int bh0, int bh1, float *out, float *att, float *att_drop, const float *q,
                                const float *k, const float *v, int ld_qkv, const float *key_mask, float *work,
                                int B, int T, int NH, int HS, int causal, float scale,
                                float p_drop, uint64_t seed, int nq);
void ck_attention_backward_heads(int bh0, int bh1, float *dq, float *dk, float *dv, int ld_dqkv, float *work,
                                 const float *dout, const float *att, const float *att_drop, const float *q,
                                 const float *k, const float *v, int ld_qkv, int B, int T, int NH, int HS, int causal, float scale,
                                 float p_drop, uint64_t seed, int accumulate, int nq);
void ck_attention_forward_ref(float *out, float *att, const float *q, const float *k, const float *v,
                              int ld_qkv, const float *key_mask, float *work,
                              int B, int T, int NH, int HS, int causal, float scale,
                              float p_drop, uint64_t seed);
void ck_attention_backward_ref(float *dq, float *dk, float *dv, int ld_dqkv, float *work,
                               const float *dout, const float *att, const float *q, const float *k,
                               const float *v, int ld_qkv, int B, int T, int NH, int HS, float scale,
                               float p_drop, uint64_t seed);

/* ---------------------------------------------------------------- embedding.c */

/* out[n,:] (=, or += when accumulate) table[ids[n], :] for n < N; rows of width C. */
void ck_embedding_forward(float *out, const float *table, const int32_t *ids, int N, int C, int accumulate);
/* dtable[ids[n], :] += dout[n, :]  (scatter-add). */
void ck_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C);

/* ---------------------------------------------------------------- optim.c */

/* PyTorch AdamW, one step t >= 1 (1-based): p *= 1 - lr*wd; m = b1 m + (1-b1) g;
 * v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). */
void ck_adamw_update(float *param, float *m, float *v, const float *grad, size_t n,
                     float lr, float beta1, float beta2, float eps, float weight_decay, int t);
/* PyTorch SGD (dampening 0, no Nesterov): g' = g + wd p; buf = first ? g' : momentum buf + g';
 * p -= lr buf.  buf nullable when momentum == 0. */
void ck_sgd_update(float *param, float *buf, const float *grad, size_t n,
                   float lr, float momentum, float weight_decay, int first);

/* ---------------------------------------------------------------- grad_norms.c */

/* Per-example gradient norms and dot products without materialising per-example gradients.
 * A linear layer applied over the T real tokens of one example, with inputs A[T, din] and output
 * gradients G[T, dout], has weight gradient W = G^T A [dout, din] and
 *   ||W||_F^2 = sum_{t,s} (A A^T)_{ts} (G G^T)_{ts}                       (Gram / "ghost" form)
 *   <W1, W2>_F = sum_{t,s} (A1 A2^T)_{ts} (G1 G2^T)_{ts}
 * costing O(T^2 (din + dout)) instead of O(T din dout). The kernels pick the cheaper of the Gram form
 * and the materialised form per call. Examples are given as row ranges of one token matrix:
 * example m owns rows [off[m], off[m+1]) (off has M+1 entries, off[0] may be > 0).
 * Results ACCUMULATE into out (+= scale * value) in float, each value summed in double. */

/* Floats of scratch for ck_grad_norms_linear over examples of at most maxT rows. */
size_t ck_grad_norms_linear_work_size(int maxT, int din, int dout);
/* out[m] += scale * ||G_m^T A_m||_F^2 for m < M. */
void ck_grad_norms_linear(float *out, float *work, const float *A, int lda, const float *G, int ldg,
                          const int32_t *off, int M, int din, int dout, float scale);
void ck_grad_norms_linear_ref(float *out, float *work, const float *A, int lda, const float *G, int ldg,
                              const int32_t *off, int M, int din, int dout, float scale);
/* out[m] += scale * ||sum_{t in m} G[t,:]||^2  (the bias gradient). */
void ck_grad_norms_bias(float *out, const float *G, int ldg, const int32_t *off, int M, int dout, float scale);

/* Floats of scratch for ck_grad_dots_linear between M1 and M2 examples with N1 and N2 rows in all.
 * Pass exactly the counts of the call (N = off[M] - off[0]), not bounds: the path is chosen from them. */
size_t ck_grad_dots_linear_work_size(int N1, int M1, int N2, int M2, int din, int dout);
/* out[i, j] (row stride ldo) += scale * <G1_i^T A1_i, G2_j^T A2_j>_F for i < M1, j < M2.
 * Gram form: two GEMMs give A1 A2^T and G1 G2^T over all token pairs [N1, N2]; their product is summed
 * over each example pair's block. Materialised form: per-example W (dout x din) for both sides, then
 * one GEMM of [M1, din*dout] x [din*dout, M2]. */
void ck_grad_dots_linear(float *out, int ldo, float *work,
                         const float *A1, int lda1, const float *G1, int ldg1, const int32_t *off1, int M1,
                         const float *A2, int lda2, const float *G2, int ldg2, const int32_t *off2, int M2,
                         int din, int dout, float scale);
void ck_grad_dots_linear_ref(float *out, int ldo, float *work,
                             const float *A1, int lda1, const float *G1, int ldg1, const int32_t *off1, int M1,
                             const float *A2, int lda2, const float *G2, int ldg2, const int32_t *off2, int M2,
                             int din, int dout, float scale);
/* out[i, j] += scale * (sum_{t in i} G1[t,:]) . (sum_{s in j} G2[s,:]). work: (M1 + M2) * dout floats. */
void ck_grad_dots_bias(float *out, int ldo, float *work, const float *G1, int ldg1, const int32_t *off1, int M1,
                       const float *G2, int ldg2, const int32_t *off2, int M2, int dout, float scale);

/* Per-example LayerNorm parameter gradients, materialised (they are only 2C long):
 * dweight[m, :] = sum_{t in m} dout[t,:] * xhat[t,:], dbias[m, :] = sum_{t in m} dout[t,:],
 * xhat = (inp - mean) * rstd recomputed. dweight, dbias: [M, C], overwritten. */
void ck_layernorm_example_grads(float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *mean, const float *rstd, const int32_t *off, int M, int C);

/* Per-example embedding-table gradient: rows ids[t] receive D[t,:]; for example m,
 * out[m] += scale * sum over distinct ids v of ||sum_{t in m, ids[t] = v} D[t,:]||^2.
 * work: maxT * C floats (maxT = the longest example). */
void ck_grad_norms_embedding(float *out, float *work, const float *D, int ldd, const int32_t *ids,
                             const int32_t *off, int M, int C, float scale);
/* out[i, j] += scale * <E1_i, E2_j> of the two examples' embedding-table gradients:
 * sum_{t in i, s in j, ids1[t] = ids2[s]} D1[t,:] . D2[s,:].
 * work: ck_grad_dots_embedding_work_size(N1, N2, C) floats, iwork: ck_grad_dots_embedding_iwork_size
 * int32s, with N = off[M] - off[0] the rows of each side. */
size_t ck_grad_dots_embedding_work_size(int N1, int N2, int C);
size_t ck_grad_dots_embedding_iwork_size(int N1, int M1, int N2, int M2);
void ck_grad_dots_embedding(float *out, int ldo, float *work, int32_t *iwork, const float *D1, int ldd1, const int32_t *ids1, const int32_t *off1, int M1,
                            const float *D2, int ldd2, const int32_t *ids2, const int32_t *off2, int M2, int C, float scale);

/* ---------------------------------------------------------------- reductions.c (scores) */

/* Welford update over checkpoints: after adding g as the k-th sample (k >= 1),
 * mean += (g - mean) / k; m2 += (g - mean_old) * (g - mean_new).  mean, m2: n floats. */
void ck_vog_accumulate(float *mean, float *m2, const float *g, size_t n, int k);
/* sum_i sqrt(m2[i] / K) in double (the caller divides by the element count). */
double ck_vog_sum_std(const float *m2, size_t n, int K);

/* ---------------------------------------------------------------- reductions.c */

/* sum_i x_i^2 in double. */
double ck_sum_squares(const float *x, size_t n);
/* sum_i x_i y_i in double. */
double ck_dot(const float *x, const float *y, size_t n);

/* ---------------------------------------------------------------- dequant.c */

/* GGUF tensor data (little-endian, any alignment) to float32: n elements, a multiple of 32 for the block
 * types. Q8_0: blocks of 34 bytes (f16 d, 32 x int8), x = q d. Q4_0: 18 bytes (f16 d, 16 bytes; element j
 * the low nibble of byte j, element j+16 its high nibble), x = (q - 8) d. Q4_1: 20 bytes (f16 d, f16 m,
 * nibbles as Q4_0), x = q d + m. */
float ck_half_to_float(uint16_t h);
void ck_dequant_f16(float *out, const void *src, size_t n);
void ck_dequant_bf16(float *out, const void *src, size_t n);
void ck_dequant_q8_0(float *out, const void *src, size_t n);
void ck_dequant_q4_0(float *out, const void *src, size_t n);
void ck_dequant_q4_1(float *out, const void *src, size_t n);

/* ---------------------------------------------------------------- rmsnorm.c */

/* RMSNorm (LlamaRMSNorm): out[N,C] = inp * rstd * weight, rstd[N] = 1/sqrt(mean(inp^2) + eps) (nullable).
 * Backward: dinp (+)= rstd (dout w - xhat mean(dout w xhat)), xhat = inp rstd, added when accumulate and
 * written otherwise; dweight (nullable) += sum_rows dout * xhat. */
void ck_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps);
void ck_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         const float *rstd, int N, int C, int accumulate);
/* The weight half alone: dweight[C] += sum_rows dout * inp * rstd (double accumulation). */
void ck_rmsnorm_backward_weight(float *dweight, const float *dout, const float *inp, const float *rstd, int N, int C);
void ck_rmsnorm_forward_ref(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps);
void ck_rmsnorm_backward_ref(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                             const float *rstd, int N, int C, int accumulate);

/* ---------------------------------------------------------------- rope.c */

/* Rotary embeddings, rotate-half convention. ck_rope_table fills cos, sin [T, HS/2] for base theta;
 * ck_rope_apply rotates NH heads of HS dims in each of `rows` rows of x (row stride ld; row r at position
 * r % T) in place, or with backward != 0 applies the inverse rotation (the backward pass). HS <= 1024. */
void ck_rope_table(float *cosv, float *sinv, int T, int HS, float theta);
void ck_rope_apply(float *x, int ld, const float *cosv, const float *sinv, int rows, int T, int NH, int HS, int backward);
void ck_rope_apply_ref(float *x, int ld, const float *cosv, const float *sinv, int rows, int T, int NH, int HS, int backward);

/* ---------------------------------------------------------------- activations.c: SwiGLU */

/* out = silu(gate) * up over n elements; the backward writes dgate and dup. */
void ck_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
void ck_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n);
void ck_swiglu_forward_ref(float *out, const float *gate, const float *up, size_t n);

/* ---------------------------------------------------------------- activations.c: GeGLU */

/* out = gelu_tanh(gate) * up over n elements (Gemma's MLP, transformers' "gelu_pytorch_tanh"); the backward
 * writes dgate and dup. */
void ck_geglu_forward(float *out, const float *gate, const float *up, size_t n);
void ck_geglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n);
void ck_geglu_forward_ref(float *out, const float *gate, const float *up, size_t n);
void ck_geglu_backward_ref(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* CKERNELS_H */
