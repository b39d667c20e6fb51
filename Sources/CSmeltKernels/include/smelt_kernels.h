// CSmeltKernels: the few inner loops Swift cannot express at full speed on x86-64
// (AVX-512 BF16 dot products, F16C conversions, the quantizers' scale searches), each with
// a run-time CPU check.
// Smelt's own code, not a third-party library; wrapped once by SmeltEval
// (Sources/SmeltEval/Kernels.swift). See docs/ARCHITECTURE.md, "Native kernels".
#ifndef SMELT_KERNELS_H
#define SMELT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the CPU has AVX-512 F/BW/VL and AVX-512 BF16 (vdpbf16ps).
int smelt_cpu_has_bf16_dot(void);
/// 1 when the CPU has F16C (hardware float16 conversion).
int smelt_cpu_has_f16c(void);

/// bfloat16 → float32 (exact), `n` values from `src` (any alignment).
void smelt_bf16_to_f32(const void *src, float *dst, size_t n);
/// IEEE half → float32 (exact; the bits of ggml's `GGML_FP16_TO_FP32`), `n` values from `src`
/// (any alignment), F16C/AVX-512 where the CPU has them.
void smelt_f16_to_f32(const void *src, float *dst, size_t n);
/// float32 → IEEE half as ggml's `GGML_FP32_TO_FP16` (round to nearest even, subnormals kept,
/// NaN → sign | 0x7E00), F16C/AVX-512 where the CPU has them.
void smelt_f32_to_f16(const float *x, uint16_t *y, size_t n);
/// The level the conversions above use: 0 portable, 1 AVX2+F16C, 2 AVX-512.
int smelt_convert_level(void);
/// Forces a lower level (tests); a negative value restores the CPU's.
void smelt_convert_force_level(int level);

/// The `O_DIRECT` flag of open(2) on this platform (not exported to Swift).
int smelt_o_direct_flag(void);

/// Index of the first of `n` 16-bit floats whose exponent bits (`mask`: 0x7C00 for f16,
/// 0x7F80 for bf16) are all ones (NaN or infinity), or `n` when there is none.
size_t smelt_first_exponent_all_ones_u16(const uint16_t *u, size_t n, uint16_t mask);
/// Index of the first NaN or infinity among `n` floats, or `n` when there is none.
size_t smelt_first_nonfinite_f32(const float *x, size_t n);

/// Rows of 16 output features interleaved by pairs of inputs (the panel layout of the
/// bf16 and integer products): the number of 16-bit values a matrix of `rows` × `cols`
/// takes once packed.
size_t smelt_bf16_packed_count(int rows, int cols);

/// Packs `rows` × `cols` 16-bit values (row-major, row stride `ld`) in that panel
/// layout: panel p (rows 16p…16p+15), input pair kp, lane l holds
/// (w[16p+l][2kp], w[16p+l][2kp+1]); missing rows and the odd last column are 0.
void smelt_bf16_pack(const uint16_t *w, int ld, int rows, int cols, uint16_t *packed);

/// Float32 → bfloat16, round to nearest even (the AVX-512 BF16 conversion when
/// present, as ggml's CPU backend). `out` gets `2·⌈n/2⌉` values (a 0 pad).
void smelt_f32_to_bf16(const float *x, uint16_t *out, int n);

/// C[m × n] = A[m × k] · Wᵀ with A bfloat16 rows (stride `lda`, even, ≥ k rounded up
/// to even, padded with 0), W packed by `smelt_bf16_pack` (`n` rows, `k` columns),
/// float32 accumulation (one sum per output, pair by pair); C row stride `ldc`.
/// The AVX-512 BF16 kernel when the CPU has it, else the portable one.
void smelt_gemm_bf16_packed(int m, int n, int k, const uint16_t *a, int lda,
                            const uint16_t *packed, float *c, int ldc);

/// `smelt_gemm_bf16_packed` in plain C (one float32 sum per output, pair by pair): the
/// reference the tests hold the AVX-512 kernel to.
void smelt_gemm_bf16_portable(int m, int n, int k, const uint16_t *a, int lda,
                              const uint16_t *packed, float *c, int ldc);

/// Weight rows `smelt_gemm_bf16` packs at a time.
#define SMELT_BF16_BLOCK_ROWS 64
/// The 16-bit values of scratch `smelt_gemm_bf16` needs for `k` columns.
size_t smelt_gemm_bf16_scratch_count(int k);

/// C[m × n] = A[m × k] · Wᵀ as `smelt_gemm_bf16_packed`, with W the `n` bfloat16 rows as
/// stored (stride `ldw`, e.g. mapped from a GGUF file): each block of
/// `SMELT_BF16_BLOCK_ROWS` rows is packed into `scratch` (`smelt_gemm_bf16_scratch_count(k)`
/// values) and used by all `m` rows of A, so no packed copy of the matrix is ever kept.
void smelt_gemm_bf16(int m, int n, int k, const uint16_t *a, int lda,
                     const uint16_t *w, int ldw, float *c, int ldc, uint16_t *scratch);

/// 1 when the CPU has AVX-512 F/BW/VL, F16C and FMA (`smelt_gemm_f16`'s fast path).
int smelt_cpu_has_f16_dot(void);
/// C[m × n] = X[m × k] · Wᵀ for `n` float16 rows W as stored (stride `ldw`) and float32
/// activations X (stride `ldx`; llama.cpp rounds them to float16 first), `k` even: each block
/// of `SMELT_BF16_BLOCK_ROWS` rows is packed into `scratch` (`smelt_gemm_bf16_scratch_count(k)`
/// values) as `smelt_bf16_pack` packs bf16 rows, then every row of X uses it. Per output, the
/// products of the even inputs and those of the odd inputs are summed apart (one FMA each, in
/// order) and added at the end; AVX-512 with F16C when the CPU has it, else the portable loop.
void smelt_gemm_f16(int m, int n, int k, const float *x, int ldx,
                    const uint16_t *w, int ldw, float *c, int ldc, uint16_t *scratch);
/// The same sums on one packed block in plain C (`fmaf`): the tests' reference, bit for bit.
void smelt_gemm_f16_portable(int m, int n, int k, const float *x, int ldx,
                             const uint16_t *packed, float *c, int ldc);

/// x rounded to float16 and back (round to nearest even), n values, in place allowed.
void smelt_round_f16(const float *x, float *out, int n);
/// x rounded to bfloat16 and back (round to nearest even), n values, in place allowed.
void smelt_round_bf16(const float *x, float *out, int n);

/// x rounded as ggml-cpu's x86 `quantize_row_q8_0` makes it (blocks of 32: scale
/// fp16(amax/127), values rint(x·127/amax)), dequantized; a tail of n % 32 is copied.
void smelt_round_q8_0(const float *x, float *out, int n);
/// x rounded as ggml's `quantize_row_q8_K_ref` makes it (blocks of 256: iscale −127/max
/// of the signed extreme, values min(127, nearest(iscale·x)), scale 1/iscale), dequantized.
void smelt_round_q8_K(const float *x, float *out, int n);

/// 1 when the CPU has AVX-512 F/BW/VL and AVX-512 VNNI (vpdpbusd).
int smelt_cpu_has_int_dot(void);

/// Activations quantized as ggml's vec_dot_type does before an integer dot product:
/// `block` 32 (q8_0 / q8_1: scale fp16(amax/127), values rint(x·127/amax)) or 256
/// (q8_K: iscale −127/max of the signed extreme, values min(127, nearest(iscale·x)),
/// scale 1/iscale). Writes n int16 values, n/block float scales, and when `sums`
/// is not NULL, per group of `group` values: scale × Σ values (float).
void smelt_quantize_activations(const float *x, int n, int block, int16_t *q, float *scales,
                                int group, float *sums);

/// C[m × n] = Σ over sub-blocks of (weight scale × activation scale) × integer dot
/// product (+ weight min × activation group sum), in AVX-512 VNNI `vpdpbusd` (64
/// multiply-adds per instruction): a quantized matrix decoded to int8 values `wq` packed by
/// `smelt_int8_pack` (panels of 16 rows, 4 consecutive inputs per row and lane) with its
/// corrections `wc`, per panel and sub-block of `sub` inputs 16 float scales `ws` and
/// optionally 16 mins `wm` (layout [panel][sub-block][16]); activations from
/// `smelt_quantize_activations` moved to unsigned by `smelt_activations_u8` (`xu` stride
/// `ldx`, `xd` `k/block` scales per token, `xs` `k/sub` group sums per token or NULL).
/// Each sub-block's integer sum is exact (Σ (x+128)·w − 128·Σw), so the result does not
/// depend on the instruction set; falls back to `smelt_gemm_int8_portable`.
void smelt_gemm_int8(int m, int n, int k, int sub, int block,
                     const uint8_t *xu, int ldx, const float *xd, const float *xs,
                     const int8_t *wq, const int32_t *wc, const float *ws, const float *wm,
                     float *c, int ldc);
/// `smelt_gemm_int8` in plain C (the same integer sums and float operations, fmaf for
/// each fused step): the tests' reference, bit for bit.
void smelt_gemm_int8_portable(int m, int n, int k, int sub, int block,
                              const uint8_t *xu, int ldx, const float *xd, const float *xs,
                              const int8_t *wq, const int32_t *wc, const float *ws, const float *wm,
                              float *c, int ldc);
/// Packs `rows` ≤ 16 rows of `cols` decoded values (int8 range, row stride `ld`) into one
/// panel for `smelt_gemm_int8`: `cols/4` groups of 64 bytes (row l's 4 consecutive values
/// at bytes 4l…4l+3; missing rows 0), and per sub-block of `sub` values 16 corrections
/// −128 × Σ values (0 for missing rows).
void smelt_int8_pack(const int16_t *w, int ld, int rows, int cols, int sub, int8_t *packed, int32_t *corrections);
/// One row of `cols` values of ggml type `type` decoded as SmeltQuant's `IntegerDecoding.decodeRow`
/// does (`q[cols]`, `scale` and `min` per sub-block, `scale × q + min` = ggml's dequantized value),
/// for the types of the common mixes: q4_0 (2), q8_0 (8), q4_K (12), q5_K (13), q6_K (14). Returns 0
/// (and writes nothing) for other types.
int smelt_decode_row_int(int type, const void *src, int cols, int16_t *q, float *scale, float *min);
/// u[i] = q[i] + 128: activations from `smelt_quantize_activations` (−127…127) as the
/// unsigned operand of `smelt_gemm_int8`.
void smelt_activations_u8(const int16_t *q, int n, uint8_t *u);

/// One attention score row of `n` values: scores in [lo, hi] soft-capped (`cap` > 0:
/// cap·tanh(x/cap)), then softmax over [lo, hi] (exp as ggml's AVX-512 `ggml_v_expf`
/// when the CPU has AVX-512, sums in double), the rest set to 0.
void smelt_softmax_row(float *row, int n, int lo, int hi, float cap);
/// out = silu(g)·u = g/(1+exp(−g))·u over n values (ggml's `ggml_vec_swiglu_f32` on AVX-512).
void smelt_swiglu(const float *g, const float *u, float *out, int n);

/// RMSNorm of one row as ggml computes it: float squares summed in double, mean
/// rounded to float, scale 1/sqrtf(mean + eps), out = (x·scale)·w.
void smelt_rms_norm(const float *x, const float *w, float *out, int n, float eps);

/// 1 when the attention kernels below run with AVX-512 (F, DQ) and FMA.
int smelt_cpu_has_avx512(void);
/// Keys of one head transposed for `smelt_attention_scores`: kt[dd][j] = k[j][dd] for
/// n keys of head size d; columns n…ldkt−1 set to 0 (ldkt ≥ n + 64).
void smelt_transpose_keys(const float *k, int ldk, int n, int d, float *kt, int ldkt);
/// Causal attention scores of `nq` query rows against `nk` keys given transposed (`kt`,
/// row stride `ldkt`, at least 64 readable columns past the last key), head size `d`:
/// s[r][j] = scale · q[r]·k[j] for j ≤ r + diag (other entries of a row may hold anything).
void smelt_attention_scores(const float *q, int ldq, const float *kt, int ldkt, int nq, int nk, int d, float scale,
                            int diag, float *s, int lds);
/// out[r] = Σ_{j ≤ r + diag} p[r][j] · v[j] for `nq` rows of head size `d` (a multiple of 16).
/// Needs `smelt_cpu_has_avx512()`.
void smelt_attention_values(const float *p, int ldp, const float *v, int ldv, int nq, int nk, int d, int diag,
                            float *out, int ldo);

/// Row quantizers, byte for byte as ggml's (Sources/CSmeltKernels/quant_kernels.c; wrapped
/// by SmeltQuant's FastKernels.swift). `n` is a multiple of the block size (256 for the
/// k-quants and iq4_xs, 32 otherwise); `y` gets the row's blocks; `qw`, where taken, holds
/// n importance weights (ggml's quant_weights) or is NULL for ggml's path without them.
/// q4_K / q5_K: quantize_row_q4_K_ref / q5_K_ref; with weights quantize_row_q4_K_impl / q5_K_impl.
void smelt_quantize_row_q4_K(const float *x, void *y, int64_t n);
void smelt_quantize_row_q5_K(const float *x, void *y, int64_t n);
void smelt_quantize_row_q4_K_weighted(const float *x, const float *qw, void *y, int64_t n);
void smelt_quantize_row_q5_K_weighted(const float *x, const float *qw, void *y, int64_t n);
/// quantize_row_q6_K_ref (qw NULL) / quantize_row_q6_K_impl.
void smelt_quantize_row_q6_K(const float *x, const float *qw, void *y, int64_t n);
/// quantize_iq4_nl / quantize_iq4_xs (qw may be NULL).
void smelt_quantize_row_iq4_nl(const float *x, const float *qw, void *y, int64_t n);
void smelt_quantize_row_iq4_xs(const float *x, const float *qw, void *y, int64_t n);
/// These two return 1, the row unfinished, when it holds a NaN or an infinity (ggml's
/// bytes then depend on its evaluation order: the caller takes its scalar kernel); q4_0
/// also when a block's inverse scale overflows (x86's out-of-range conversions decide).
int smelt_quantize_row_q8_0(const float *x, void *y, int64_t n);
int smelt_quantize_row_q4_0(const float *x, void *y, int64_t n);
/// The same two on bf16 input (`rows` rows of `n` values, `n` a multiple of 32), without a
/// float32 copy: returns the first row left unfinished (rows after it not done), or `rows`.
int64_t smelt_quantize_rows_bf16_q8_0(const uint16_t *x, void *y, int64_t rows, int64_t n);
int64_t smelt_quantize_rows_bf16_q4_0(const uint16_t *x, void *y, int64_t rows, int64_t n);
/// quantize_row_q2_K_ref / q3_K_ref (qw NULL) / quantize_row_q2_K_impl / q3_K_impl.
void smelt_quantize_row_q2_K(const float *x, const float *qw, void *y, int64_t n);
void smelt_quantize_row_q3_K(const float *x, const float *qw, void *y, int64_t n);
/// quantize_row_q4_1_ref / q5_0_ref / q5_1_ref (qw NULL; these return 1, the row
/// unfinished, when it holds a NaN or an infinity or a block's scale overflows) and
/// quantize_row_q4_1_impl / q5_0_impl / q5_1_impl (always 0).
int smelt_quantize_row_q4_1(const float *x, const float *qw, void *y, int64_t n);
int smelt_quantize_row_q5_0(const float *x, const float *qw, void *y, int64_t n);
int smelt_quantize_row_q5_1(const float *x, const float *qw, void *y, int64_t n);
/// quantize_row_q4_0_impl (qw not NULL).
void smelt_quantize_row_q4_0_weighted(const float *x, const float *qw, void *y, int64_t n);
/// A grid iq type's codebook as ggml's quantizers see it (SmeltQuant's IQGridTables, built
/// as iq2xs_init_impl / iq3xs_init_impl do): `grid` holds grid_size × dim coordinates 2l+1,
/// `map` the grid index of each packed level vector or −(offset+1) into `neighbours`, which
/// holds at each offset a count and that many grid indices; `points` holds at dim × j the
/// coordinates of grid point neighbours[j] (anything at the count entries), with 16 points
/// of readable slack after the last.
typedef struct { const int8_t *grid; const int32_t *map; const uint16_t *neighbours; const int8_t *points; } smelt_iq_grid;
/// quantize_row_iq2_xxs_impl / iq2_xs_impl (qw not NULL), quantize_row_iq2_s_impl,
/// iq3_xxs_impl (grid 256) and iq3_s_impl (block 32) with or without weights (qw may be NULL),
/// on the grid of the type.
void smelt_quantize_row_iq2_xxs(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g);
void smelt_quantize_row_iq2_xs(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g);
void smelt_quantize_row_iq2_s(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g);
void smelt_quantize_row_iq3_xxs(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g);
void smelt_quantize_row_iq3_s(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g);
/// quantize_row_iq1_s_impl (qw not NULL) and quantize_row_iq1_m_impl (qw may be NULL).
void smelt_quantize_row_iq1_s(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g);
void smelt_quantize_row_iq1_m(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g);
/// The instruction-set level the row quantizers run at: 0 portable, 1 AVX2, 2 AVX-512
/// (F, BW, VL, DQ); `smelt_quant_cpu_level` is what the CPU allows.
int smelt_quant_level(void);
int smelt_quant_cpu_level(void);
/// Tests and benchmarks: at most this level (−1: what the CPU allows).
void smelt_quant_force_level(int level);

/// Incremental SHA-256 (FIPS 180-4); the x86 SHA extensions when present.
typedef struct { uint32_t h[8]; uint64_t length; uint8_t buf[64]; size_t nbuf; } smelt_sha256_ctx;
void smelt_sha256_init(smelt_sha256_ctx *c);
void smelt_sha256_update(smelt_sha256_ctx *c, const void *data, size_t n);
/// Writes the 32-byte digest; the context must be initialised again before reuse.
void smelt_sha256_final(smelt_sha256_ctx *c, uint8_t out[32]);
/// 1 when the CPU has the SHA extensions (sha256rnds2).
int smelt_cpu_has_sha(void);
/// Tests: 1 forces the portable SHA-256 blocks, 0 returns to the run-time choice.
void smelt_sha256_force_portable(int portable);

#ifdef __cplusplus
}
#endif
#endif
