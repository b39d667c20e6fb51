#version 450
// ggml q8_0: d f16 · qs int8[32]; quantize_row_q8_0_ref (importance is ignored, as in ggml).
#include "exact.glsl"
#define BS 32
#define BB 34
#ifdef DEQUANT
#include "dequant_main.glsl"
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b));
    for (uint j = 0u; j < 32u; j++) {
        int q = int(get8(b + 2u + j) << 24) >> 24;
        F v = float(q) * d;
        ys[g * 32u + j] = v;
    }
}
#else
#include "quant_main.glsl"
void quant_block(uint g, uint base) {
    uint xo = g * 32u;
    F amax = 0.0;
    for (uint j = 0u; j < 32u; j++) {
        F a = fabs_(xs[xo + j]);
        amax = amax > a ? amax : a;
    }
    F d = fdiv(amax, 127.0);
    F id = d != 0.0 ? fdiv(1.0, d) : 0.0;
    put16(base, f16_bits(d));
    for (uint j = 0u; j < 32u; j++) {
        F x0 = xs[xo + j] * id;
        put8(base + 2u + j, uint(trunc_i32(round_away(x0))));
    }
}
#endif
