#version 450
// ggml q4_1: d f16 · m f16 · qs[16]; x = d·q + m.
// Reference path quantize_row_q4_1_ref; with importance quantize_row_q4_1_impl (make_qkx3_quants).
#include "exact.glsl"
#define BS 32
#define BB 20
#ifdef DEQUANT
#include "dequant_main.glsl"
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b));
    F m = f16_to_f32(get16(b + 2u));
    for (uint j = 0u; j < 16u; j++) {
        uint q = get8(b + 4u + j);
        F a0 = float(q & 15u) * d;
        F v0 = a0 + m;
        F a1 = float(q >> 4) * d;
        F v1 = a1 + m;
        ys[g * 32u + j] = v0;
        ys[g * 32u + j + 16u] = v1;
    }
}
#else
#include "quant_main.glsl"
#include "legacy.glsl"
void quant_block(uint g, uint base) {
    uint xo = g * 32u;
    if (p.has_imp != 0u) {
        load_weighted_block(g);
        F the_min;
        F d = make_qkx3_quants32(15, C_M0_9, C_0_05, 36, the_min);
        put16(base, f16_bits(d));
        F nm = -the_min;
        put16(base + 2u, f16_bits(nm));
        for (int j = 0; j < 16; j++) put8(base + 4u + uint(j), uint(LQ[j]) | (uint(LQ[j + 16]) << 4));
        return;
    }
    F mn = uintBitsToFloat(0x7f7fffffu);
    F mx = -uintBitsToFloat(0x7f7fffffu);
    for (uint j = 0u; j < 32u; j++) {
        F v = xs[xo + j];
        if (v < mn) mn = v;
        if (v > mx) mx = v;
    }
    F r = mx - mn;
    F d = fdiv(r, 15.0);
    F id = d != 0.0 ? fdiv(1.0, d) : 0.0;
    put16(base, f16_bits(d));
    put16(base + 2u, f16_bits(mn));
    for (uint j = 0u; j < 16u; j++) {
        F t0 = xs[xo + j] - mn;
        F x0 = t0 * id;
        F t1 = xs[xo + 16u + j] - mn;
        F x1 = t1 * id;
        F a0 = x0 + 0.5;
        F a1 = x1 + 0.5;
        int xi0 = min(15, wrap_i8(trunc_i32(a0)));
        int xi1 = min(15, wrap_i8(trunc_i32(a1)));
        put8(base + 4u + j, (uint(xi0) & 0xffu) | ((uint(xi1) << 4) & 0xffu));
    }
}
#endif
