// ggml's scalar IEEE-half conversions (ggml-impl.h's GGML_COMPUTE_FP32_TO_FP16 /
// GGML_COMPUTE_FP16_TO_FP32), shared by the C files of this target; not part of its public header.
#ifndef SMELT_GGML_HALF_H
#define SMELT_GGML_HALF_H
#include <stdint.h>
#include <string.h>

static inline uint32_t ggml_half_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float ggml_half_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/// float32 → half: round to nearest even, subnormals kept, NaN → sign | 0x7E00.
static inline uint16_t ggml_fp32_to_fp16(float f) {
    const float scale_to_inf = ggml_half_float(0x77800000u), scale_to_zero = ggml_half_float(0x08800000u);
    uint32_t w = ggml_half_bits(f), shl1_w = w + w, sign = w & 0x80000000u, bias = shl1_w & 0xFF000000u;
    float base = ((f < 0 ? -f : f) * scale_to_inf) * scale_to_zero;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = ggml_half_float((bias >> 1) + 0x07800000u) + base;
    uint32_t bits = ggml_half_bits(base), exp_bits = (bits >> 13) & 0x00007C00u, mant_bits = bits & 0x00000FFFu;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : exp_bits + mant_bits));
}

/// half → float32, exact.
static inline float ggml_fp16_to_fp32(uint16_t h) {
    uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
    float normalized = ggml_half_float((two_w >> 4) + (0xE0u << 23)) * ggml_half_float(0x07800000u);
    float denormalized = ggml_half_float((two_w >> 17) | (126u << 23)) - 0.5f;
    return ggml_half_float(sign | (two_w < (1u << 27) ? ggml_half_bits(denormalized) : ggml_half_bits(normalized)));
}
#endif
