// Smelt's native inner loops; see include/smelt_kernels.h.
#include "smelt_kernels.h"
#include "ggml_half.h"
#pragma STDC FP_CONTRACT OFF
#include <string.h>
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define SMELT_X86 1
#else
#define SMELT_X86 0
#endif

// AVX-512 F, BW and VL: the base both 512-bit kernels need.
static int cpu_has_avx512_base(void) {
#if SMELT_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

int smelt_cpu_has_bf16_dot(void) {
#if SMELT_X86
    return cpu_has_avx512_base() && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

int smelt_cpu_has_f16c(void) {
#if SMELT_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

// ---------------------------------------------------------------- scalar helpers

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// ggml_compute_fp32_to_bf16: round to nearest even, NaN kept quiet.
static inline uint16_t bf16_scalar(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

size_t smelt_bf16_packed_count(int rows, int cols) {
    size_t panels = (size_t)(rows + 15) / 16, pairs = (size_t)(cols + 1) / 2;
    return panels * pairs * 32;
}

#if SMELT_X86
// 16 rows × 16 pairs (32-bit words) transposed in registers: out[j] = word j of every row.
__attribute__((target("avx512f")))
static inline void transpose16_epi32(__m512i r[16]) {
    __m512i t[16], v[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // v[4b + c], 128-bit lane L: rows 4b…4b+3 of word 4L + c
    for (int b = 0; b < 4; b++) {
        v[4 * b] = _mm512_unpacklo_epi64(t[4 * b], t[4 * b + 2]);
        v[4 * b + 1] = _mm512_unpackhi_epi64(t[4 * b], t[4 * b + 2]);
        v[4 * b + 2] = _mm512_unpacklo_epi64(t[4 * b + 1], t[4 * b + 3]);
        v[4 * b + 3] = _mm512_unpackhi_epi64(t[4 * b + 1], t[4 * b + 3]);
    }
    for (int c = 0; c < 4; c++) {
        __m512i x0 = _mm512_shuffle_i32x4(v[c], v[4 + c], 0x44), x1 = _mm512_shuffle_i32x4(v[c], v[4 + c], 0xEE);
        __m512i x2 = _mm512_shuffle_i32x4(v[8 + c], v[12 + c], 0x44), x3 = _mm512_shuffle_i32x4(v[8 + c], v[12 + c], 0xEE);
        r[c] = _mm512_shuffle_i32x4(x0, x2, 0x88);
        r[4 + c] = _mm512_shuffle_i32x4(x0, x2, 0xDD);
        r[8 + c] = _mm512_shuffle_i32x4(x1, x3, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(x1, x3, 0xDD);
    }
}

// A full panel's first `n16` pairs (a multiple of 16), 16 at a time.
__attribute__((target("avx512f")))
static void bf16_pack_panel_avx512(const uint16_t *w, int ld, int n16, uint16_t *panel) {
    for (int kp = 0; kp < n16; kp += 16) {
        __m512i r[16];
        for (int l = 0; l < 16; l++) r[l] = _mm512_loadu_si512((const void *)(w + (size_t)l * ld + 2 * kp));
        transpose16_epi32(r);
        for (int j = 0; j < 16; j++) _mm512_storeu_si512((void *)(panel + (size_t)(kp + j) * 32), r[j]);
    }
}
#endif

void smelt_bf16_pack(const uint16_t *w, int ld, int rows, int cols, uint16_t *packed) {
    int panels = (rows + 15) / 16, pairs = (cols + 1) / 2, whole = cols / 2;
    static int base = -1;
    if (base < 0) base = cpu_has_avx512_base();
    for (int p = 0; p < panels; p++) {
        uint16_t *panel = packed + (size_t)p * pairs * 32;
        int done = 0;   // pairs already packed for every row of the panel
#if SMELT_X86
        if (base && rows - p * 16 >= 16 && whole >= 16) {
            done = whole / 16 * 16;
            bf16_pack_panel_avx512(w + (size_t)p * 16 * ld, ld, done, panel);
        }
#endif
        for (int l = 0; l < 16; l++) {
            int r = p * 16 + l;
            // lane l of pair kp is the 32-bit word 16·kp + l of the panel: (w[r][2kp], w[r][2kp+1])
            uint16_t *dst = panel + 2 * l;
            if (r >= rows) {
                for (int kp = 0; kp < pairs; kp++) { dst[(size_t)kp * 32] = 0; dst[(size_t)kp * 32 + 1] = 0; }
                continue;
            }
            const uint16_t *src = w + (size_t)r * ld;
            for (int kp = done; kp < whole; kp++) memcpy(dst + (size_t)kp * 32, src + 2 * kp, 4);
            if (whole < pairs) { dst[(size_t)whole * 32] = src[cols - 1]; dst[(size_t)whole * 32 + 1] = 0; }
        }
    }
}

// ---------------------------------------------------------------- f16 product

// Panels packed by smelt_bf16_pack (16-bit values, pairs interleaved); per output row two float
// sums, over the even and over the odd inputs, added at the end.
void smelt_gemm_f16_portable(int m, int n, int k, const float *x, int ldx,
                             const uint16_t *packed, float *c, int ldc) {
    int pairs = k / 2;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            const uint16_t *w = packed + ((size_t)(j / 16) * pairs) * 32 + 2 * (j % 16);
            float e = 0, o = 0;
            for (int kp = 0; kp < pairs; kp++) {
                e = fmaf(ggml_fp16_to_fp32(w[(size_t)kp * 32]), x[(size_t)i * ldx + 2 * kp], e);
                o = fmaf(ggml_fp16_to_fp32(w[(size_t)kp * 32 + 1]), x[(size_t)i * ldx + 2 * kp + 1], o);
            }
            c[(size_t)i * ldc + j] = e + o;
        }
    }
}

#if SMELT_X86
#define F16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

// M tokens × R panels: the 32 halves of a panel's pair kp convert to rows 0–7 and 8–15 as
// (even, odd) lanes; the token's two inputs are broadcast as one 64-bit pair; the even and odd
// sums of each row are added when the tile is stored.
F16_TARGET __attribute__((always_inline))
static inline void tile_f16(int M, int R, int pairs, const float *x, int ldx,
                            const uint16_t *packed, int p0, int rows, float *c, int ldc) {
    __m512 lo[4][3], hi[4][3];
    for (int m = 0; m < M; m++) for (int r = 0; r < R; r++) { lo[m][r] = _mm512_setzero_ps(); hi[m][r] = _mm512_setzero_ps(); }
    const uint16_t *b[3];
    for (int r = 0; r < R; r++) b[r] = packed + (size_t)(p0 + r) * pairs * 32;
    for (int kp = 0; kp < pairs; kp++) {
        __m512 wl[3], wh[3];
        for (int r = 0; r < R; r++) {
            __m512i w = _mm512_loadu_si512((const void *)(b[r] + (size_t)kp * 32));
            wl[r] = _mm512_cvtph_ps(_mm512_castsi512_si256(w));
            wh[r] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(w, 1));
        }
        for (int m = 0; m < M; m++) {
            double pair; memcpy(&pair, x + (size_t)m * ldx + 2 * kp, 8);
            __m512 xb = _mm512_castpd_ps(_mm512_set1_pd(pair));
            for (int r = 0; r < R; r++) {
                lo[m][r] = _mm512_fmadd_ps(wl[r], xb, lo[m][r]);
                hi[m][r] = _mm512_fmadd_ps(wh[r], xb, hi[m][r]);
            }
        }
    }
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int r = 0; r < R; r++) {
        int row0 = (p0 + r) * 16, valid = rows - row0;
        __mmask16 km = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1);
        for (int m = 0; m < M; m++) {
            __m512 s = _mm512_add_ps(_mm512_permutex2var_ps(lo[m][r], even, hi[m][r]),
                                     _mm512_permutex2var_ps(lo[m][r], odd, hi[m][r]));
            _mm512_mask_storeu_ps(c + (size_t)m * ldc + row0, km, s);
        }
    }
}

#define FTILE_R(MM) \
    switch (R) { \
    case 3: tile_f16(MM, 3, pairs, x, ldx, packed, p, n, c, ldc); break; \
    case 2: tile_f16(MM, 2, pairs, x, ldx, packed, p, n, c, ldc); break; \
    default: tile_f16(MM, 1, pairs, x, ldx, packed, p, n, c, ldc); break; \
    }

F16_TARGET
static void gemm_f16_avx512(int m, int n, int k, const float *x0, int ldx, const uint16_t *packed, float *c0, int ldc) {
    int pairs = k / 2, panels = (n + 15) / 16;
    for (int p = 0; p < panels; p += 3) {
        int R = panels - p < 3 ? panels - p : 3;
        for (int i = 0; i < m; i += 4) {
            int M = m - i < 4 ? m - i : 4;
            const float *x = x0 + (size_t)i * ldx;
            float *c = c0 + (size_t)i * ldc;
            switch (M) {
            case 4: FTILE_R(4); break;
            case 3: FTILE_R(3); break;
            case 2: FTILE_R(2); break;
            default: FTILE_R(1); break;
            }
        }
    }
}
#endif

int smelt_cpu_has_f16_dot(void) {
#if SMELT_X86
    return cpu_has_avx512_base() && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
static int has_f16_dot = -1;

void smelt_gemm_f16(int m, int n, int k, const float *x, int ldx,
                    const uint16_t *w, int ldw, float *c, int ldc, uint16_t *scratch) {
    if (has_f16_dot < 0) has_f16_dot = smelt_cpu_has_f16_dot();
    for (int j = 0; j < n; j += SMELT_BF16_BLOCK_ROWS) {
        int rows = n - j < SMELT_BF16_BLOCK_ROWS ? n - j : SMELT_BF16_BLOCK_ROWS;
        smelt_bf16_pack(w + (size_t)j * ldw, ldw, rows, k, scratch);
#if SMELT_X86
        if (has_f16_dot) { gemm_f16_avx512(m, rows, k, x, ldx, scratch, c + j, ldc); continue; }
#endif
        smelt_gemm_f16_portable(m, rows, k, x, ldx, scratch, c + j, ldc);
    }
}

// ---------------------------------------------------------------- conversions

#if SMELT_X86
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void f32_to_bf16_avx512(const float *x, uint16_t *out, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        _mm256_storeu_si256((__m256i *)(out + i), (__m256i)h);
    }
    for (; i < n; i++) {
        // the same instruction for the tail (denormals flush to zero, as ggml on this CPU)
        __m128bh h = _mm_cvtneps_pbh(_mm_set1_ps(x[i]));
        uint16_t v; memcpy(&v, &h, 2); out[i] = v;
    }
}
#endif

static int has_bf16_dot = -1, has_f16c = -1;
static inline int bf16_dot(void) { if (has_bf16_dot < 0) has_bf16_dot = smelt_cpu_has_bf16_dot(); return has_bf16_dot; }
static inline int f16c(void) { if (has_f16c < 0) has_f16c = smelt_cpu_has_f16c(); return has_f16c; }

void smelt_f32_to_bf16(const float *x, uint16_t *out, int n) {
#if SMELT_X86
    if (bf16_dot()) { f32_to_bf16_avx512(x, out, n); }
    else
#endif
    { for (int i = 0; i < n; i++) out[i] = bf16_scalar(x[i]); }
    if (n & 1) out[n] = 0;
}

void smelt_round_bf16(const float *x, float *out, int n) {
#if SMELT_X86
    if (bf16_dot()) {
        // same instruction as the conversion ggml's CPU backend uses here
        uint16_t tmp[256];
        for (int i = 0; i < n; i += 256) {
            int c = n - i < 256 ? n - i : 256;
            f32_to_bf16_avx512(x + i, tmp, c);
            for (int j = 0; j < c; j++) out[i + j] = bits_f32((uint32_t)tmp[j] << 16);
        }
        return;
    }
#endif
    for (int i = 0; i < n; i++) out[i] = bits_f32((uint32_t)bf16_scalar(x[i]) << 16);
}

#if SMELT_X86
__attribute__((target("avx2,f16c")))
static void round_f16_f16c(const float *x, float *out, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) {
        __m128i h = _mm_cvtps_ph(_mm_set1_ps(x[i]), _MM_FROUND_TO_NEAREST_INT);
        out[i] = _mm_cvtss_f32(_mm_cvtph_ps(h));
    }
}
#endif

// IEEE half round trip in software (round to nearest even), for CPUs without F16C.
static float round_f16_scalar(float f) {
    uint32_t u = f32_bits(f), sign = u & 0x80000000u, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return f;                       // inf, nan
    if (a >= 0x477ff000u) return bits_f32(sign | 0x7f800000u); // rounds to inf (≥ 65520)
    if (a < 0x33000001u) return bits_f32(sign);            // below half the smallest subnormal
    float af = bits_f32(a);
    int e; frexpf(af, &e);                                  // af = m·2^e, m in [0.5,1)
    int q = e - 11;                                         // ulp exponent for 11 significant bits
    if (q < -24) q = -24;                                   // subnormal half spacing 2^-24
    float ulp = ldexpf(1.0f, q);
    float r = nearbyintf(af / ulp) * ulp;                   // exact division by a power of two
    return bits_f32(sign | f32_bits(r));
}

void smelt_round_f16(const float *x, float *out, int n) {
#if SMELT_X86
    if (f16c()) { round_f16_f16c(x, out, n); return; }
#endif
    for (int i = 0; i < n; i++) out[i] = round_f16_scalar(x[i]);
}

// ---------------------------------------------------------------- bf16 GEMM

#if SMELT_X86
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// M tokens × R panels of 16 rows: acc[m][r] lanes are C[m][16(p0+r) + lane].
BF16_TARGET __attribute__((always_inline))
static inline void tile_bf16(int M, int R, int pairs, const uint16_t *a, int lda,
                             const uint16_t *packed, int p0, int rows, float *c, int ldc) {
    __m512 acc[6][4];
    for (int m = 0; m < M; m++) for (int r = 0; r < R; r++) acc[m][r] = _mm512_setzero_ps();
    const uint16_t *b[4];
    for (int r = 0; r < R; r++) b[r] = packed + (size_t)(p0 + r) * pairs * 32;
    for (int kp = 0; kp < pairs; kp++) {
        __m512bh w[4];
        for (int r = 0; r < R; r++) w[r] = (__m512bh)_mm512_loadu_si512((const void *)(b[r] + (size_t)kp * 32));
        for (int m = 0; m < M; m++) {
            int32_t pair; memcpy(&pair, a + (size_t)m * lda + 2 * kp, 4);
            __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
            for (int r = 0; r < R; r++) acc[m][r] = _mm512_dpbf16_ps(acc[m][r], x, w[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        int row0 = (p0 + r) * 16, valid = rows - row0;
        if (valid >= 16) {
            for (int m = 0; m < M; m++) _mm512_storeu_ps(c + (size_t)m * ldc + row0, acc[m][r]);
        } else {
            __mmask16 k = (__mmask16)((1u << valid) - 1);
            for (int m = 0; m < M; m++) _mm512_mask_storeu_ps(c + (size_t)m * ldc + row0, k, acc[m][r]);
        }
    }
}

#define TILE_CASE(MM) \
    switch (R) { \
    case 4: tile_bf16(MM, 4, pairs, a, lda, packed, p, n, c, ldc); break; \
    case 3: tile_bf16(MM, 3, pairs, a, lda, packed, p, n, c, ldc); break; \
    case 2: tile_bf16(MM, 2, pairs, a, lda, packed, p, n, c, ldc); break; \
    default: tile_bf16(MM, 1, pairs, a, lda, packed, p, n, c, ldc); break; \
    }

BF16_TARGET
static void gemm_bf16_avx512(int m, int n, int k, const uint16_t *a0, int lda,
                             const uint16_t *packed, float *c0, int ldc) {
    int pairs = (k + 1) / 2, panels = (n + 15) / 16;
    for (int p = 0; p < panels; p += 4) {
        int R = panels - p < 4 ? panels - p : 4;
        for (int i = 0; i < m; i += 6) {
            int M = m - i < 6 ? m - i : 6;
            const uint16_t *a = a0 + (size_t)i * lda;
            float *c = c0 + (size_t)i * ldc;
            switch (M) {
            case 6: TILE_CASE(6); break;
            case 5: TILE_CASE(5); break;
            case 4: TILE_CASE(4); break;
            case 3: TILE_CASE(3); break;
            case 2: TILE_CASE(2); break;
            default: TILE_CASE(1); break;
            }
        }
    }
}
#endif

void smelt_gemm_bf16_packed(int m, int n, int k, const uint16_t *a, int lda,
                            const uint16_t *packed, float *c, int ldc) {
#if SMELT_X86
    if (bf16_dot()) { gemm_bf16_avx512(m, n, k, a, lda, packed, c, ldc); return; }
#endif
    smelt_gemm_bf16_portable(m, n, k, a, lda, packed, c, ldc);
}

size_t smelt_gemm_bf16_scratch_count(int k) { return smelt_bf16_packed_count(SMELT_BF16_BLOCK_ROWS, k); }

void smelt_gemm_bf16(int m, int n, int k, const uint16_t *a, int lda,
                     const uint16_t *w, int ldw, float *c, int ldc, uint16_t *scratch) {
    // one block of weight rows at a time, packed into the caller's scratch (it stays in L2)
    // and used by every token before the next block
    for (int j = 0; j < n; j += SMELT_BF16_BLOCK_ROWS) {
        int rows = n - j < SMELT_BF16_BLOCK_ROWS ? n - j : SMELT_BF16_BLOCK_ROWS;
        smelt_bf16_pack(w + (size_t)j * ldw, ldw, rows, k, scratch);
        smelt_gemm_bf16_packed(m, rows, k, a, lda, scratch, c + j, ldc);
    }
}

void smelt_gemm_bf16_portable(int m, int n, int k, const uint16_t *a, int lda,
                              const uint16_t *packed, float *c, int ldc) {
    int pairs = (k + 1) / 2;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            const uint16_t *w = packed + ((size_t)(j / 16) * pairs) * 32 + 2 * (j % 16);
            float s = 0;
            for (int kp = 0; kp < pairs; kp++) {
                s += bits_f32((uint32_t)a[(size_t)i * lda + 2 * kp + 1] << 16) * bits_f32((uint32_t)w[(size_t)kp * 32 + 1] << 16);
                s += bits_f32((uint32_t)a[(size_t)i * lda + 2 * kp] << 16) * bits_f32((uint32_t)w[(size_t)kp * 32] << 16);
            }
            c[(size_t)i * ldc + j] = s;
        }
    }
}

// ---------------------------------------------------------------- q8 activation rounding

// ggml's nearest_int: round half to even through the float trick.
static inline int nearest_int(float f) {
    float v = f + 12582912.0f;
    int32_t i; memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline float half_round_trip(float f) {
#if SMELT_X86
    if (f16c()) { float o; smelt_round_f16(&f, &o, 1); return o; }
#endif
    return round_f16_scalar(f);
}

// ---------------------------------------------------------------- integer products

int smelt_cpu_has_int_dot(void) {
#if SMELT_X86
    return cpu_has_avx512_base() && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}
static int has_int_dot = -1;
static inline int int_dot(void) { if (has_int_dot < 0) has_int_dot = smelt_cpu_has_int_dot(); return has_int_dot; }

#if SMELT_X86
// 16 full rows: per group of 4 inputs, two 8-row gathers of 4 int16 values narrowed to int8;
// each sub-block's corrections from the packed bytes (vpdpbusd of 128 with the values).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static void int8_pack_avx512(const int16_t *w, int ld, int quads, int per, int8_t *packed, int32_t *corrections) {
    const __m512i rows8 = _mm512_set_epi64(7LL * ld, 6LL * ld, 5LL * ld, 4LL * ld, 3LL * ld, 2LL * ld, 1LL * ld, 0);
    const __m512i u128 = _mm512_set1_epi8((char)0x80);
    __m512i sum = _mm512_setzero_si512();
    for (int kq = 0; kq < quads; kq++) {
        const int16_t *b = w + 4 * (size_t)kq;
        __m512i lo = _mm512_i64gather_epi64(rows8, (const void *)b, 2);
        __m512i hi = _mm512_i64gather_epi64(rows8, (const void *)(b + 8 * (size_t)ld), 2);
        __m256i l8 = _mm512_cvtepi16_epi8(lo), h8 = _mm512_cvtepi16_epi8(hi);
        __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(l8), h8, 1);
        _mm512_storeu_si512((void *)(packed + (size_t)kq * 64), v);
        sum = _mm512_dpbusd_epi32(sum, u128, v);
        if ((kq + 1) % per == 0) {
            _mm512_storeu_si512((void *)(corrections + (size_t)(kq / per) * 16), _mm512_sub_epi32(_mm512_setzero_si512(), sum));
            sum = _mm512_setzero_si512();
        }
    }
}
#endif

void smelt_int8_pack(const int16_t *w, int ld, int rows, int cols, int sub, int8_t *packed, int32_t *corrections) {
    int quads = cols / 4, nsub = cols / sub;
#if SMELT_X86
    if (rows == 16 && int_dot()) { int8_pack_avx512(w, ld, quads, sub / 4, packed, corrections); return; }
#endif
    for (int kq = 0; kq < quads; kq++)
        for (int l = 0; l < 16; l++)
            for (int j = 0; j < 4; j++)
                packed[(size_t)kq * 64 + 4 * l + j] = l < rows ? (int8_t)w[(size_t)l * ld + 4 * kq + j] : 0;
    for (int sb = 0; sb < nsub; sb++)
        for (int l = 0; l < 16; l++) {
            int32_t s = 0;
            if (l < rows) for (int j = sb * sub; j < (sb + 1) * sub; j++) s += w[(size_t)l * ld + j];
            corrections[sb * 16 + l] = -128 * s;
        }
}

// ---------------------------------------------------------------- integer decoding (hot types)

static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) { *d = q[j] & 63; *m = q[j + 4] & 63; }
    else { *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

int smelt_decode_row_int(int type, const void *src, int cols, int16_t *q, float *scale, float *min) {
    const uint8_t *x = (const uint8_t *)src;
    int blocks;
    switch (type) {
    case 12: case 13:  // q4_K, q5_K: 8 sub-blocks of 32 per 256
        blocks = cols / 256;
        for (int i = 0; i < blocks; i++) {
            const uint8_t *b = x + (size_t)i * (type == 12 ? 144 : 176);
            uint16_t dh, mh; memcpy(&dh, b, 2); memcpy(&mh, b + 2, 2);
            float d = ggml_fp16_to_fp32(dh), dmin = ggml_fp16_to_fp32(mh);
            const uint8_t *qh = b + 16, *ql = b + (type == 12 ? 16 : 48);
            int16_t *y = q + (size_t)i * 256;
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m; scale_min_k4(j, b + 4, &sc, &m);
                scale[i * 8 + j] = d * (float)sc;
                min[i * 8 + j] = -(dmin * (float)m);
                const uint8_t *s = ql + (j / 2) * 32;
                int shift = (j % 2) * 4;
                int16_t *yj = y + j * 32;
                if (type == 12) { for (int l = 0; l < 32; l++) yj[l] = (int16_t)((s[l] >> shift) & 0xF); }
                else { for (int l = 0; l < 32; l++) yj[l] = (int16_t)(((s[l] >> shift) & 0xF) | (((qh[l] >> j) & 1) << 4)); }
            }
        }
        return 1;
    case 14:  // q6_K: 16 sub-blocks of 16 per 256, values −32…31
        blocks = cols / 256;
        for (int i = 0; i < blocks; i++) {
            const uint8_t *b = x + (size_t)i * 210;
            const uint8_t *ql = b, *qh = b + 128;
            const int8_t *sc = (const int8_t *)(b + 192);
            uint16_t dh; memcpy(&dh, b + 208, 2);
            float d = ggml_fp16_to_fp32(dh);
            for (int s = 0; s < 16; s++) scale[i * 16 + s] = d * (float)sc[s];
            for (int s = 0; s < 16; s++) min[i * 16 + s] = 0;
            int16_t *y = q + (size_t)i * 256;
            for (int n = 0; n < 2; n++) {
                int16_t *yy = y + n * 128;
                const uint8_t *l0 = ql + n * 64, *h0 = qh + n * 32;
                for (int l = 0; l < 32; l++) {
                    yy[l] = (int16_t)((l0[l] & 0xF) | ((h0[l] & 3) << 4)) - 32;
                    yy[l + 32] = (int16_t)((l0[l + 32] & 0xF) | (((h0[l] >> 2) & 3) << 4)) - 32;
                    yy[l + 64] = (int16_t)((l0[l] >> 4) | (((h0[l] >> 4) & 3) << 4)) - 32;
                    yy[l + 96] = (int16_t)((l0[l + 32] >> 4) | (((h0[l] >> 6) & 3) << 4)) - 32;
                }
            }
        }
        return 1;
    case 2: case 8:  // q4_0 (nibbles − 8), q8_0 (signed bytes): blocks of 32
        blocks = cols / 32;
        for (int i = 0; i < blocks; i++) {
            const uint8_t *b = x + (size_t)i * (type == 2 ? 18 : 34);
            uint16_t dh; memcpy(&dh, b, 2);
            scale[i] = ggml_fp16_to_fp32(dh); min[i] = 0;
            int16_t *y = q + (size_t)i * 32;
            if (type == 8) { for (int j = 0; j < 32; j++) y[j] = (int8_t)b[2 + j]; }
            else { for (int j = 0; j < 16; j++) { y[j] = (int16_t)(b[2 + j] & 0xF) - 8; y[j + 16] = (int16_t)(b[2 + j] >> 4) - 8; } }
        }
        return 1;
    default:
        return 0;
    }
}

void smelt_activations_u8(const int16_t *q, int n, uint8_t *u) {
    for (int i = 0; i < n; i++) u[i] = (uint8_t)(q[i] + 128);
}

#define QACT_BODY(ROUND) \
    for (int b = 0; b < n; b += block) { \
        const float *xb = x + b; int16_t *qb = q + b; \
        if (block == 32) { \
            float amax = 0; \
            for (int j = 0; j < 32; j++) { float a = fabsf(xb[j]); amax = a > amax ? a : amax; } \
            float d = half_round_trip(amax / 127.0f); \
            float id = amax != 0 ? 127.0f / amax : 0.0f; \
            for (int j = 0; j < 32; j++) qb[j] = (int16_t)ROUND(xb[j] * id); \
            scales[b / 32] = d; \
        } else { \
            float amax = 0, mx = 0; \
            for (int j = 0; j < 256; j++) { float a = fabsf(xb[j]); if (a > amax) { amax = a; mx = xb[j]; } } \
            if (amax == 0) { for (int j = 0; j < 256; j++) qb[j] = 0; scales[b / 256] = 0; } \
            else { \
                float iscale = -127.0f / mx; \
                for (int j = 0; j < 256; j++) { int v = nearest_int(iscale * xb[j]); qb[j] = (int16_t)(v < 127 ? v : 127); } \
                scales[b / 256] = 1 / iscale; \
            } \
        } \
    } \
    if (sums) { \
        for (int g = 0; g < n; g += group) { \
            int s = 0; for (int j = 0; j < group; j++) s += q[g + j]; \
            sums[g / group] = scales[g / block] * (float)s; \
        } \
    }

#if SMELT_X86
__attribute__((target("avx2,fma,f16c,sse4.1")))
static void quantize_act_avx2(const float *x, int n, int block, int16_t *q, float *scales, int group, float *sums) {
    QACT_BODY(__builtin_rintf)
}
#endif

void smelt_quantize_activations(const float *x, int n, int block, int16_t *q, float *scales,
                                int group, float *sums) {
#if SMELT_X86
    if (f16c()) { quantize_act_avx2(x, n, block, q, scales, group, sums); return; }
#endif
    QACT_BODY(rintf)
}

// x quantized as above and dequantized (scale × value), in chunks of 256; a tail that
// is not a whole block is copied.
static void round_q8(const float *x, float *out, int n, int block) {
    int16_t q[256];
    float d[8];
    int whole = n / block * block;
    for (int i = 0; i < whole; i += 256) {
        int c = whole - i < 256 ? whole - i : 256;
        smelt_quantize_activations(x + i, c, block, q, d, block, NULL);
        for (int j = 0; j < c; j++) out[i + j] = d[j / block] * (float)q[j];
    }
    for (int j = whole; j < n; j++) out[j] = x[j];
}

void smelt_round_q8_0(const float *x, float *out, int n) { round_q8(x, out, n, 32); }
void smelt_round_q8_K(const float *x, float *out, int n) { round_q8(x, out, n, 256); }

void smelt_gemm_int8_portable(int m, int n, int k, int sub, int block,
                              const uint8_t *xu, int ldx, const float *xd, const float *xs,
                              const int8_t *wq, const int32_t *wc, const float *ws, const float *wm,
                              float *c, int ldc) {
    int quads = k / 4, nsub = k / sub, nblk = k / block;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            int p = j / 16, l = j % 16;
            const int8_t *w = wq + (size_t)p * quads * 64 + 4 * l;
            float acc = 0;
            for (int sb = 0; sb < nsub; sb++) {
                int32_t isum = wc[((size_t)p * nsub + sb) * 16 + l];
                for (int kk = sb * sub; kk < (sb + 1) * sub; kk++)
                    isum += (int32_t)xu[(size_t)i * ldx + kk] * w[(size_t)(kk / 4) * 64 + (kk & 3)];
                float scale = ws[((size_t)p * nsub + sb) * 16 + l] * xd[(size_t)i * nblk + sb * sub / block];
                acc = fmaf((float)isum, scale, acc);
                if (wm) acc = fmaf(wm[((size_t)p * nsub + sb) * 16 + l], xs[(size_t)i * nsub + sb], acc);
            }
            c[(size_t)i * ldc + j] = acc;
        }
    }
}

#if SMELT_X86
#define INT_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

// M tokens × R panels of 16 rows: per sub-block, R·M int32 sums started at the panels'
// corrections (−128 Σw) and fed 4 inputs at a time by vpdpbusd (unsigned activations + 128
// times signed weights), then scaled into float accumulators exactly as the portable loop.
INT_TARGET __attribute__((always_inline))
static inline void tile_int8(int M, int R, int HASMIN, int k, int sub, int block,
                             const uint8_t *xu, int ldx, const float *xd, const float *xs,
                             const int8_t *wq, const int32_t *wc, const float *ws, const float *wm, int p0, int rows,
                             float *c, int ldc) {
    int quads = k / 4, nsub = k / sub, nblk = k / block, per = sub / 4;
    __m512 acc[4][3];
    for (int m = 0; m < M; m++) for (int r = 0; r < R; r++) acc[m][r] = _mm512_setzero_ps();
    const int8_t *b[3]; const int32_t *cr[3]; const float *sc[3]; const float *mn[3];
    for (int r = 0; r < R; r++) {
        b[r] = wq + (size_t)(p0 + r) * quads * 64;
        cr[r] = wc + (size_t)(p0 + r) * nsub * 16;
        sc[r] = ws + (size_t)(p0 + r) * nsub * 16;
        mn[r] = HASMIN ? wm + (size_t)(p0 + r) * nsub * 16 : 0;
    }
    for (int sb = 0; sb < nsub; sb++) {
        __m512i isum[4][3];
        for (int r = 0; r < R; r++) {
            __m512i c0 = _mm512_loadu_si512((const void *)(cr[r] + (size_t)sb * 16));
            for (int m = 0; m < M; m++) isum[m][r] = c0;
        }
        for (int kq = sb * per; kq < (sb + 1) * per; kq++) {
            __m512i w[3];
            for (int r = 0; r < R; r++) w[r] = _mm512_loadu_si512((const void *)(b[r] + (size_t)kq * 64));
            for (int m = 0; m < M; m++) {
                int32_t quad; memcpy(&quad, xu + (size_t)m * ldx + 4 * kq, 4);
                __m512i x = _mm512_set1_epi32(quad);
                for (int r = 0; r < R; r++) isum[m][r] = _mm512_dpbusd_epi32(isum[m][r], x, w[r]);
            }
        }
        int blk = sb * sub / block;
        for (int m = 0; m < M; m++) {
            __m512 dx = _mm512_set1_ps(xd[(size_t)m * nblk + blk]);
            for (int r = 0; r < R; r++) {
                __m512 s = _mm512_mul_ps(_mm512_loadu_ps(sc[r] + (size_t)sb * 16), dx);
                acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[m][r]), s, acc[m][r]);
                if (HASMIN) acc[m][r] = _mm512_fmadd_ps(_mm512_loadu_ps(mn[r] + (size_t)sb * 16),
                                                        _mm512_set1_ps(xs[(size_t)m * nsub + sb]), acc[m][r]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        int row0 = (p0 + r) * 16, valid = rows - row0;
        __mmask16 km = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1);
        for (int m = 0; m < M; m++) _mm512_mask_storeu_ps(c + (size_t)m * ldc + row0, km, acc[m][r]);
    }
}

#define ITILE(MM, RR) \
    do { if (wm) tile_int8(MM, RR, 1, k, sub, block, xu + (size_t)i * ldx, ldx, xd + (size_t)i * nblk, xs + (size_t)i * nsub, \
                           wq, wc, ws, wm, p, n, c + (size_t)i * ldc, ldc); \
         else tile_int8(MM, RR, 0, k, sub, block, xu + (size_t)i * ldx, ldx, xd + (size_t)i * nblk, 0, \
                        wq, wc, ws, 0, p, n, c + (size_t)i * ldc, ldc); } while (0)
#define ITILE_R(MM) \
    switch (R) { case 3: ITILE(MM, 3); break; case 2: ITILE(MM, 2); break; default: ITILE(MM, 1); break; }

INT_TARGET
static void gemm_int8_avx512(int m, int n, int k, int sub, int block,
                             const uint8_t *xu, int ldx, const float *xd, const float *xs,
                             const int8_t *wq, const int32_t *wc, const float *ws, const float *wm,
                             float *c, int ldc) {
    int panels = (n + 15) / 16, nsub = k / sub, nblk = k / block;
    if (!wm) xs = 0;
    for (int p = 0; p < panels; p += 3) {
        int R = panels - p < 3 ? panels - p : 3;
        for (int i = 0; i < m; i += 4) {
            int M = m - i < 4 ? m - i : 4;
            switch (M) {
            case 4: ITILE_R(4); break;
            case 3: ITILE_R(3); break;
            case 2: ITILE_R(2); break;
            default: ITILE_R(1); break;
            }
        }
    }
    (void)nsub; (void)nblk;
}
#endif

void smelt_gemm_int8(int m, int n, int k, int sub, int block,
                     const uint8_t *xu, int ldx, const float *xd, const float *xs,
                     const int8_t *wq, const int32_t *wc, const float *ws, const float *wm,
                     float *c, int ldc) {
#if SMELT_X86
    if (int_dot()) { gemm_int8_avx512(m, n, k, sub, block, xu, ldx, xd, xs, wq, wc, ws, wm, c, ldc); return; }
#endif
    smelt_gemm_int8_portable(m, n, k, sub, block, xu, ldx, xd, xs, wq, wc, ws, wm, c, ldc);
}

// ---------------------------------------------------------------- softmax, SwiGLU

static int has_avx512dq = -1;
static inline int avx512dq(void) {
#if SMELT_X86
    if (has_avx512dq < 0) { __builtin_cpu_init(); has_avx512dq = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"); }
    return has_avx512dq;
#else
    return 0;
#endif
}

#if SMELT_X86
#define DQ_TARGET __attribute__((target("avx512f,avx512dq,fma")))

// ggml_v_expf, AVX-512 variant (ggml-cpu/vec.h), operation for operation.
DQ_TARGET static inline __m512 v_expf(__m512 x) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    const __m512 res = _mm512_scalef_ps(j, n);
    if (_mm512_kortestz(d, d)) return res;
    const __m512 zero = _mm512_setzero_ps();
    const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, zero, _CMP_LE_OQ), _mm512_set1_ps(INFINITY), zero);
    return _mm512_mask_blend_ps(d, res, alt);
}

DQ_TARGET static void softmax_row_avx512(float *row, int lo, int hi, float mx, double *sum_out) {
    double sum = 0;
    int j = lo, end = hi + 1;
    __m512 m = _mm512_set1_ps(mx);
    for (; j + 16 <= end; j += 16) {
        __m512 v = v_expf(_mm512_sub_ps(_mm512_loadu_ps(row + j), m));
        _mm512_storeu_ps(row + j, v);
        sum += (double)_mm512_reduce_add_ps(v);
    }
    if (j < end) {
        __mmask16 k = (__mmask16)((1u << (end - j)) - 1);
        __m512 v = v_expf(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + j), m));
        v = _mm512_maskz_mov_ps(k, v);
        _mm512_mask_storeu_ps(row + j, k, v);
        sum += (double)_mm512_reduce_add_ps(v);
    }
    *sum_out = sum;
}

DQ_TARGET static float max_avx512(const float *row, int lo, int hi) {
    __m512 acc = _mm512_set1_ps(-INFINITY);
    int j = lo, end = hi + 1;
    for (; j + 16 <= end; j += 16) acc = _mm512_max_ps(acc, _mm512_loadu_ps(row + j));
    float m = _mm512_reduce_max_ps(acc);
    for (; j < end; j++) m = row[j] > m ? row[j] : m;
    return m;
}

DQ_TARGET static void scale_avx512(float *row, int lo, int hi, float inv) {
    int j = lo, end = hi + 1;
    __m512 v = _mm512_set1_ps(inv);
    for (; j + 16 <= end; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), v));
    for (; j < end; j++) row[j] *= inv;
}

DQ_TARGET static double sum_squares_avx512(const float *x, int n) {
    // float squares (as ggml), summed in double in 8 lanes: the same double sum up to its
    // last bits, which cannot change the float mean except in vanishingly rare ties
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 sq = _mm512_mul_ps(v, v);
        acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
        acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
    for (; i < n; i++) sum += (double)(x[i] * x[i]);
    return sum;
}

DQ_TARGET static void swiglu_avx512(const float *g, const float *u, float *out, int n) {
    int i = 0;
    const __m512 one = _mm512_set1_ps(1), zero = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 silu = _mm512_div_ps(x, _mm512_add_ps(one, v_expf(_mm512_sub_ps(zero, x))));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(silu, _mm512_loadu_ps(u + i)));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(k, g + i);
        __m512 silu = _mm512_div_ps(x, _mm512_add_ps(one, v_expf(_mm512_sub_ps(zero, x))));
        _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(k, u + i)));
    }
}
#endif

void smelt_softmax_row(float *row, int n, int lo, int hi, float cap) {
    if (cap > 0) for (int j = lo; j <= hi; j++) row[j] = tanhf(row[j] / cap) * cap;
    double sum = 0;
    float inv;
    if (lo > 0) memset(row, 0, (size_t)lo * sizeof(float));
    if (hi + 1 < n) memset(row + hi + 1, 0, (size_t)(n - hi - 1) * sizeof(float));
#if SMELT_X86
    if (avx512dq()) {
        float mx = max_avx512(row, lo, hi);
        softmax_row_avx512(row, lo, hi, mx, &sum);
        inv = (float)(1.0 / sum);
        scale_avx512(row, lo, hi, inv);
        return;
    }
#endif
    float mx = row[lo];
    for (int j = lo + 1; j <= hi; j++) mx = row[j] > mx ? row[j] : mx;
    for (int j = lo; j <= hi; j++) { float e = expf(row[j] - mx); row[j] = e; sum += e; }
    inv = (float)(1.0 / sum);
    for (int j = lo; j <= hi; j++) row[j] *= inv;
}

void smelt_swiglu(const float *g, const float *u, float *out, int n) {
#if SMELT_X86
    if (avx512dq()) { swiglu_avx512(g, u, out, n); return; }
#endif
    for (int i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void smelt_rms_norm(const float *x, const float *w, float *out, int n, float eps) {
    double sum;
#if SMELT_X86
    if (avx512dq()) sum = sum_squares_avx512(x, n);
    else
#endif
    { sum = 0; for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]); }
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

// ---------------------------------------------------------------- attention

int smelt_cpu_has_avx512(void) { return avx512dq(); }

#if SMELT_X86
// acc[r][0..3] = Σ_kk a[r·lda + kk] · b[kk·ldb + 0..63] for ROWS rows (a compile-time
// constant after inlining, so the 16 accumulators stay in registers).
DQ_TARGET __attribute__((always_inline))
static inline void tile_rows_x64(int ROWS, const float *a, int lda, const float *b, int ldb, int kdim, __m512 acc[4][4]) {
    for (int r = 0; r < ROWS; r++) for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
    for (int kk = 0; kk < kdim; kk++) {
        const float *br = b + (size_t)kk * ldb;
        __m512 b0 = _mm512_loadu_ps(br), b1 = _mm512_loadu_ps(br + 16), b2 = _mm512_loadu_ps(br + 32), b3 = _mm512_loadu_ps(br + 48);
        for (int r = 0; r < ROWS; r++) {
            __m512 x = _mm512_set1_ps(a[(size_t)r * lda + kk]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(x, b2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(x, b3, acc[r][3]);
        }
    }
}

// ROWS query rows × 64 keys, head size d, scaled; only the masked lanes are stored.
DQ_TARGET __attribute__((always_inline))
static inline void scores_tile(int ROWS, const float *q, int ldq, const float *kt, int ldkt, int j0, int d,
                               __m512 sc, const __mmask16 *m, float *s, int lds) {
    __m512 a[4][4];
    tile_rows_x64(ROWS, q, ldq, kt + j0, ldkt, d, a);
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < 4; c++)
            if (m[c]) _mm512_mask_storeu_ps(s + (size_t)r * lds + j0 + 16 * c, m[c], _mm512_mul_ps(a[r][c], sc));
}

DQ_TARGET static void attention_scores_avx512(const float *q, int ldq, const float *kt, int ldkt, int nq, int nk, int d,
                                              float scale, int diag, float *s, int lds) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int r0 = 0; r0 < nq; r0 += 4) {
        int rows = nq - r0 < 4 ? nq - r0 : 4;
        int need = r0 + rows - 1 + diag + 1;               // keys the last row of the tile sees
        if (need > nk) need = nk;
        for (int j0 = 0; j0 < need; j0 += 64) {
            __mmask16 m[4];
            for (int c = 0; c < 4; c++) {
                int w = need - j0 - 16 * c;
                m[c] = (__mmask16)(w >= 16 ? 0xffff : w > 0 ? (1u << w) - 1 : 0);
            }
            const float *qr = q + (size_t)r0 * ldq;
            float *sr = s + (size_t)r0 * lds;
            switch (rows) {
            case 4: scores_tile(4, qr, ldq, kt, ldkt, j0, d, sc, m, sr, lds); break;
            case 3: scores_tile(3, qr, ldq, kt, ldkt, j0, d, sc, m, sr, lds); break;
            case 2: scores_tile(2, qr, ldq, kt, ldkt, j0, d, sc, m, sr, lds); break;
            default: scores_tile(1, qr, ldq, kt, ldkt, j0, d, sc, m, sr, lds); break;
            }
        }
    }
}

// ROWS rows × 64 value columns, keys [0, need).
DQ_TARGET __attribute__((always_inline))
static inline void values_tile(int ROWS, const float *p, int ldp, const float *v, int ldv, int need, float *out, int ldo) {
    __m512 acc[4][4];
    tile_rows_x64(ROWS, p, ldp, v, ldv, need, acc);
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < 4; c++) _mm512_storeu_ps(out + (size_t)r * ldo + 16 * c, acc[r][c]);
}

// ROWS rows × 16 value columns (head sizes that are not a multiple of 64).
DQ_TARGET __attribute__((always_inline))
static inline void values_tile16(int ROWS, const float *p, int ldp, const float *v, int ldv, int need, float *out, int ldo) {
    __m512 acc[4];
    for (int r = 0; r < ROWS; r++) acc[r] = _mm512_setzero_ps();
    for (int j = 0; j < need; j++) {
        __m512 v0 = _mm512_loadu_ps(v + (size_t)j * ldv);
        for (int r = 0; r < ROWS; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(p[(size_t)r * ldp + j]), v0, acc[r]);
    }
    for (int r = 0; r < ROWS; r++) _mm512_storeu_ps(out + (size_t)r * ldo, acc[r]);
}

DQ_TARGET static void attention_values_avx512(const float *p, int ldp, const float *v, int ldv, int nq, int nk, int d,
                                              int diag, float *out, int ldo) {
    for (int r0 = 0; r0 < nq; r0 += 4) {
        int rows = nq - r0 < 4 ? nq - r0 : 4;
        int need = r0 + rows - 1 + diag + 1;
        if (need > nk) need = nk;
        const float *pr = p + (size_t)r0 * ldp;
        float *orow = out + (size_t)r0 * ldo;
        int c0 = 0;
        for (; c0 + 64 <= d; c0 += 64) {
            switch (rows) {
            case 4: values_tile(4, pr, ldp, v + c0, ldv, need, orow + c0, ldo); break;
            case 3: values_tile(3, pr, ldp, v + c0, ldv, need, orow + c0, ldo); break;
            case 2: values_tile(2, pr, ldp, v + c0, ldv, need, orow + c0, ldo); break;
            default: values_tile(1, pr, ldp, v + c0, ldv, need, orow + c0, ldo); break;
            }
        }
        for (; c0 < d; c0 += 16) {
            switch (rows) {
            case 4: values_tile16(4, pr, ldp, v + c0, ldv, need, orow + c0, ldo); break;
            case 3: values_tile16(3, pr, ldp, v + c0, ldv, need, orow + c0, ldo); break;
            case 2: values_tile16(2, pr, ldp, v + c0, ldv, need, orow + c0, ldo); break;
            default: values_tile16(1, pr, ldp, v + c0, ldv, need, orow + c0, ldo); break;
            }
        }
    }
}
#endif

void smelt_attention_scores(const float *q, int ldq, const float *kt, int ldkt, int nq, int nk, int d, float scale,
                            int diag, float *s, int lds) {
#if SMELT_X86
    if (avx512dq()) { attention_scores_avx512(q, ldq, kt, ldkt, nq, nk, d, scale, diag, s, lds); return; }
#endif
    for (int r = 0; r < nq; r++) {
        int need = r + diag + 1 < nk ? r + diag + 1 : nk;
        for (int j = 0; j < need; j++) {
            float acc = 0;
            for (int dd = 0; dd < d; dd++) acc += q[(size_t)r * ldq + dd] * kt[(size_t)dd * ldkt + j];
            s[(size_t)r * lds + j] = acc * scale;
        }
    }
}

void smelt_transpose_keys(const float *k, int ldk, int n, int d, float *kt, int ldkt) {
    for (int j = 0; j < n; j++) {
        const float *src = k + (size_t)j * ldk;
        for (int dd = 0; dd < d; dd++) kt[(size_t)dd * ldkt + j] = src[dd];
    }
    for (int dd = 0; dd < d; dd++) for (int j = n; j < ldkt; j++) kt[(size_t)dd * ldkt + j] = 0;
}

void smelt_attention_values(const float *p, int ldp, const float *v, int ldv, int nq, int nk, int d, int diag,
                            float *out, int ldo) {
#if SMELT_X86
    if (avx512dq()) { attention_values_avx512(p, ldp, v, ldv, nq, nk, d, diag, out, ldo); return; }
#endif
    for (int r = 0; r < nq; r++) {
        int need = r + diag + 1 < nk ? r + diag + 1 : nk;
        for (int c = 0; c < d; c++) {
            float acc = 0;
            for (int j = 0; j < need; j++) acc += p[(size_t)r * ldp + j] * v[(size_t)j * ldv + c];
            out[(size_t)r * ldo + c] = acc;
        }
    }
}
