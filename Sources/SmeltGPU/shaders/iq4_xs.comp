#version 450
// ggml iq4_xs: d f16 · scales_h u16 · scales_l[4] · qs[128]: 8 blocks of 32 with 6-bit scales,
// nibbles index kvalues_iq4nl (quantize_iq4_xs, importance weights or x²).
#include "exact.glsl"
#define BS 256
#define BB 136
const int KVD[16] = int[16](-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
#ifdef DEQUANT
#include "dequant_main.glsl"
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b));
    uint sh = get16(b + 2u);
    for (uint ib = 0u; ib < 8u; ib++) {
        int ls = int((get8(b + 4u + ib / 2u) >> (4u * (ib % 2u))) & 15u) | int(((sh >> (2u * ib)) & 3u) << 4);
        F dl = d * float(ls - 32);
        for (uint j = 0u; j < 16u; j++) {
            uint q = get8(b + 8u + 16u * ib + j);
            F v0 = dl * float(KVD[q & 15u]);
            F v1 = dl * float(KVD[q >> 4]);
            ys[g * 256u + 32u * ib + j] = v0;
            ys[g * 256u + 32u * ib + j + 16u] = v1;
        }
    }
}
#else
#define DIRECT_WORDS
#include "quant_main.glsl"
#define SB 256
#define Q4_OFF 8
#include "iq4.glsl"
#endif
