#version 450
// ggml q4_0: d f16 · qs[16] (value j → nibble j%16, high nibbles = values 16..31); x = d(q−8).
// Reference path quantize_row_q4_0_ref; with importance quantize_row_q4_0_impl.
#include "exact.glsl"
#define BS 32
#define BB 18
#ifdef DEQUANT
#include "dequant_main.glsl"
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b));
    for (uint j = 0u; j < 16u; j++) {
        uint q = get8(b + 2u + j);
        F v0 = float(int(q & 15u) - 8) * d;
        F v1 = float(int(q >> 4) - 8) * d;
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
        F d = make_qx_quants32(8);
        put16(base, f16_bits(d));
        for (int j = 0; j < 16; j++) put8(base + 2u + uint(j), uint(LQ[j]) | (uint(LQ[j + 16]) << 4));
        return;
    }
    F amax = 0.0;
    F mx = 0.0;
    for (uint j = 0u; j < 32u; j++) {
        F v = xs[xo + j];
        if (amax < fabs_(v)) { amax = fabs_(v); mx = v; }
    }
    F d = fdiv(mx, -8.0);
    F id = d != 0.0 ? fdiv(1.0, d) : 0.0;
    put16(base, f16_bits(d));
    for (uint j = 0u; j < 16u; j++) {
        F x0 = xs[xo + j] * id;
        F x1 = xs[xo + 16u + j] * id;
        F a0 = x0 + 8.5;
        F a1 = x1 + 8.5;
        int xi0 = min(15, wrap_i8(trunc_i32(a0)));
        int xi1 = min(15, wrap_i8(trunc_i32(a1)));
        put8(base + 2u + j, (uint(xi0) & 0xffu) | ((uint(xi1) << 4) & 0xffu));
    }
}
#endif
