#version 450
// ggml q4_K: d f16 · dmin f16 · scales[12] (8 × 6-bit scale/min) · qs[128]; x = d·sc·q − dmin·m.
#include "exact.glsl"
#define BS 256
#define BB 144
#define NMAX 15
#ifdef DEQUANT
#include "dequant_main.glsl"
uvec2 scale_min_at(uint b, uint j) {
    if (j < 4u) return uvec2(get8(b + 4u + j) & 63u, get8(b + 8u + j) & 63u);
    return uvec2((get8(b + 8u + j) & 15u) | ((get8(b + j) >> 6) << 4), (get8(b + 8u + j) >> 4) | ((get8(b + 4u + j) >> 6) << 4));
}
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b));
    F mn = f16_to_f32(get16(b + 2u));
    for (uint j = 0u; j < 4u; j++) {
        uvec2 s1 = scale_min_at(b, 2u * j), s2 = scale_min_at(b, 2u * j + 1u);
        F d1 = d * float(s1.x); F m1 = mn * float(s1.y);
        F d2 = d * float(s2.x); F m2 = mn * float(s2.y);
        for (uint l = 0u; l < 32u; l++) {
            uint q = get8(b + 16u + 32u * j + l);
            F a = d1 * float(q & 15u); F v1 = a - m1;
            F c = d2 * float(q >> 4); F v2 = c - m2;
            ys[g * 256u + 64u * j + l] = v1;
            ys[g * 256u + 64u * j + 32u + l] = v2;
        }
    }
}
#else
#define DIRECT_WORDS
#include "quant_main.glsl"
#include "kquant45.glsl"
#endif
