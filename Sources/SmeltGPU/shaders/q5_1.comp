#version 450
// ggml q5_1: d f16 · m f16 · qh u32 (5th bits) · qs[16]; x = d·q + m.
// Reference path quantize_row_q5_1_ref; with importance quantize_row_q5_1_impl (make_qkx3_quants).
#include "exact.glsl"
#define BS 32
#define BB 24
#ifdef DEQUANT
#include "dequant_main.glsl"
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b));
    F m = f16_to_f32(get16(b + 2u));
    uint qh = get32(b + 4u);
    for (uint j = 0u; j < 16u; j++) {
        uint q = get8(b + 8u + j);
        uint xh0 = ((qh >> j) << 4) & 0x10u;
        uint xh1 = (qh >> (j + 12u)) & 0x10u;
        F a0 = float((q & 15u) | xh0) * d;
        F v0 = a0 + m;
        F a1 = float((q >> 4) | xh1) * d;
        F v1 = a1 + m;
        ys[g * 32u + j] = v0;
        ys[g * 32u + j + 16u] = v1;
    }
}
#else
#include "quant_main.glsl"
#include "legacy.glsl"
uint QV[32];
void pack(uint base) {
    uint qh = 0u;
    for (uint j = 0u; j < 16u; j++) {
        uint q0 = QV[j] & 0xffu, q1 = QV[j + 16u] & 0xffu;
        put8(base + 8u + j, (q0 & 15u) | ((q1 & 15u) << 4));
        qh |= ((q0 & 0x10u) >> 4) << j;
        qh |= ((q1 & 0x10u) >> 4) << (j + 16u);
    }
    put32(base + 4u, qh);
}
void quant_block(uint g, uint base) {
    uint xo = g * 32u;
    if (p.has_imp != 0u) {
        load_weighted_block(g);
        F the_min;
        F d = make_qkx3_quants32(31, C_M0_9, C_0_05, 36, the_min);
        put16(base, f16_bits(d));
        F nm = -the_min;
        put16(base + 2u, f16_bits(nm));
        for (int j = 0; j < 32; j++) QV[j] = uint(LQ[j]);
        pack(base);
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
    F d = fdiv(r, 31.0);
    F id = d != 0.0 ? fdiv(1.0, d) : 0.0;
    put16(base, f16_bits(d));
    put16(base + 2u, f16_bits(mn));
    for (uint j = 0u; j < 32u; j++) {
        F t0 = xs[xo + j] - mn;
        F x0 = t0 * id;
        F a0 = x0 + 0.5;
        QV[j] = uint(trunc_i32(a0));
    }
    pack(base);
}
#endif
