#version 450
// ggml iq4_nl: d f16 · qs[16]; nibbles index kvalues_iq4nl, x = d·kvalue (quantize_iq4_nl,
// importance weights or x²).
#include "exact.glsl"
#define BS 32
#define BB 18
const int KVD[16] = int[16](-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
#ifdef DEQUANT
#include "dequant_main.glsl"
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b));
    for (uint j = 0u; j < 16u; j++) {
        uint q = get8(b + 2u + j);
        F v0 = d * float(KVD[q & 15u]);
        F v1 = d * float(KVD[q >> 4]);
        ys[g * 32u + j] = v0;
        ys[g * 32u + j + 16u] = v1;
    }
}
#else
#include "quant_main.glsl"
#define SB 32
#define Q4_OFF 2
#include "iq4.glsl"
#endif
