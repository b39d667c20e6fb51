#version 450
// ggml q5_0: d f16 · qh u32 (5th bits) · qs[16]; x = d(q−16).
// Reference path quantize_row_q5_0_ref; with importance quantize_row_q5_0_impl.
#include "exact.glsl"
#define BS 32
#define BB 22
#ifdef DEQUANT
#include "dequant_main.glsl"
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b));
    uint qh = get32(b + 2u);
    for (uint j = 0u; j < 16u; j++) {
        uint q = get8(b + 6u + j);
        uint xh0 = ((qh >> j) << 4) & 0x10u;
        uint xh1 = (qh >> (j + 12u)) & 0x10u;
        F v0 = float(int((q & 15u) | xh0) - 16) * d;
        F v1 = float(int((q >> 4) | xh1) - 16) * d;
        ys[g * 32u + j] = v0;
        ys[g * 32u + j + 16u] = v1;
    }
}
#else
#include "quant_main.glsl"
#include "legacy.glsl"
int QV[32];
void pack(uint base) {
    uint qh = 0u;
    for (uint j = 0u; j < 16u; j++) {
        uint q0 = uint(QV[j]) & 0xffu, q1 = uint(QV[j + 16u]) & 0xffu;
        put8(base + 6u + j, (q0 & 15u) | ((q1 & 15u) << 4));
        qh |= ((q0 & 0x10u) >> 4) << j;
        qh |= ((q1 & 0x10u) >> 4) << (j + 16u);
    }
    put32(base + 2u, qh);
}
void quant_block(uint g, uint base) {
    uint xo = g * 32u;
    if (p.has_imp != 0u) {
        load_weighted_block(g);
        F d = make_qx_quants32(16);
        put16(base, f16_bits(d));
        for (int j = 0; j < 32; j++) QV[j] = LQ[j];
        pack(base);
        return;
    }
    F amax = 0.0;
    F mx = 0.0;
    for (uint j = 0u; j < 32u; j++) {
        F v = xs[xo + j];
        if (amax < fabs_(v)) { amax = fabs_(v); mx = v; }
    }
    F d = fdiv(mx, -16.0);
    F id = d != 0.0 ? fdiv(1.0, d) : 0.0;
    put16(base, f16_bits(d));
    for (uint j = 0u; j < 32u; j++) {
        F x0 = xs[xo + j] * id;
        F a0 = x0 + 16.5;
        QV[j] = min(31, wrap_i8(trunc_i32(a0)));
    }
    pack(base);
}
#endif
