// Row conversions of the memory-bound jobs (convert, f16 output, f16 products): bf16 → f32, f16 → f32 and f32 → f16 with
// ggml's rounding, vectorized with a run-time CPU check. Every output bit equals the portable path.
#include "smelt_kernels.h"
#include "ggml_half.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CONV_X86 1
#else
#define CONV_X86 0
#endif

static inline float conv_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// ---------------------------------------------------------------- bf16 → f32

#define BF16_TO_F32_LOOP for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, (const char *)src + 2 * i, 2); dst[i] = conv_float((uint32_t)h << 16); }

static void bf16_to_f32_portable(const void *src, float *dst, size_t n) { BF16_TO_F32_LOOP }

#if CONV_X86
__attribute__((target("avx512f,avx512bw")))
static void bf16_to_f32_avx512(const void *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)((const char *)src + 2 * i));
        _mm512_storeu_si512((void *)(dst + i), _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    for (; i < n; i++) { uint16_t h; memcpy(&h, (const char *)src + 2 * i, 2); dst[i] = conv_float((uint32_t)h << 16); }
}
__attribute__((target("avx2")))
static void bf16_to_f32_avx2(const void *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const char *)src + 2 * i));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    for (; i < n; i++) { uint16_t h; memcpy(&h, (const char *)src + 2 * i, 2); dst[i] = conv_float((uint32_t)h << 16); }
}
#endif

// 0 portable, 1 AVX2 (+F16C), 2 AVX-512 F/BW; -1 not yet known.
static int conv_level = -1;
static int conv_cpu_level(void) {
#if CONV_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) return 1;
#endif
    return 0;
}
static inline int level(void) { if (conv_level < 0) conv_level = conv_cpu_level(); return conv_level; }

void smelt_convert_force_level(int l) { conv_level = l < 0 ? conv_cpu_level() : (l < conv_cpu_level() ? l : conv_cpu_level()); }
int smelt_convert_level(void) { return level(); }

void smelt_bf16_to_f32(const void *src, float *dst, size_t n) {
#if CONV_X86
    switch (level()) {
    case 2: bf16_to_f32_avx512(src, dst, n); return;
    case 1: bf16_to_f32_avx2(src, dst, n); return;
    default: break;
    }
#endif
    bf16_to_f32_portable(src, dst, n);
}

// ---------------------------------------------------------------- f16 → f32 (exact)

static void f16_to_f32_portable(const void *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, (const char *)src + 2 * i, 2); dst[i] = ggml_fp16_to_fp32(h); }
}

#if CONV_X86
__attribute__((target("avx512f,avx512bw")))
static void f16_to_f32_avx512(const void *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const char *)src + 2 * i))));
    for (; i < n; i++) { uint16_t h; memcpy(&h, (const char *)src + 2 * i, 2); dst[i] = ggml_fp16_to_fp32(h); }
}
__attribute__((target("avx2,f16c")))
static void f16_to_f32_f16c(const void *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const char *)src + 2 * i))));
    for (; i < n; i++) { uint16_t h; memcpy(&h, (const char *)src + 2 * i, 2); dst[i] = ggml_fp16_to_fp32(h); }
}
#endif

void smelt_f16_to_f32(const void *src, float *dst, size_t n) {
#if CONV_X86
    switch (level()) {
    case 2: f16_to_f32_avx512(src, dst, n); return;
    case 1: f16_to_f32_f16c(src, dst, n); return;
    default: break;
    }
#endif
    f16_to_f32_portable(src, dst, n);
}

// ---------------------------------------------------------------- f32 → f16 (ggml's rounding)

static void f32_to_f16_portable(const float *x, uint16_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = ggml_fp32_to_fp16(x[i]);
}

#if CONV_X86
// vcvtps2ph with round-to-nearest-even gives ggml's result for every non-NaN input (also
// overflow to infinity and subnormals); NaN lanes (quieted payloads) are redone in scalar code.
__attribute__((target("avx512f,avx512bw")))
static void f32_to_f16_avx512(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v), abs_mask), inf);
        if (nan) for (int j = 0; j < 16; j++) if (nan & (1u << j)) y[i + j] = ggml_fp32_to_fp16(x[i + j]);
    }
    for (; i < n; i++) y[i] = ggml_fp32_to_fp16(x[i]);
}
__attribute__((target("avx2,f16c")))
static void f32_to_f16_avx2(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        int nan = _mm256_movemask_ps(_mm256_castsi256_ps(
            _mm256_cmpgt_epi32(_mm256_and_si256(_mm256_castps_si256(v), abs_mask), inf)));
        if (nan) for (int j = 0; j < 8; j++) if (nan & (1 << j)) y[i + j] = ggml_fp32_to_fp16(x[i + j]);
    }
    for (; i < n; i++) y[i] = ggml_fp32_to_fp16(x[i]);
}
#endif

void smelt_f32_to_f16(const float *x, uint16_t *y, size_t n) {
#if CONV_X86
    switch (level()) {
    case 2: f32_to_f16_avx512(x, y, n); return;
    case 1: f32_to_f16_avx2(x, y, n); return;
    default: break;
    }
#endif
    f32_to_f16_portable(x, y, n);
}
