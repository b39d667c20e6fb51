#version 450
// ggml q3_K: hmask[32] (3rd bit) · qs[64] (low 2 bits) · scales[12] (16 signed 6-bit scales) ·
// d f16 (110 bytes); x = d·(sc − 32)·(q − 4). Reference path quantize_row_q3_K_ref
// (make_q3_quants with its refinement passes); with importance quantize_row_q3_K_impl
// (make_qx_quants weighted by qw·sqrt(sigma2 + x²), then make_qx_quants of the 16 scales).
// One invocation quantizes two super-blocks (220 bytes = 55 words) and computes each output byte
// from the block state (scales, d, the first-pass iscale of each sub-block); a sub-block whose
// requantization scale is 0 keeps its first-pass quants: the importance path recomputes them from
// the recorded iscale, the reference path (whose make_q3_quants refines them) keeps them packed.
#include "exact.glsl"
#define BS 256
#define BB 110
#ifdef DEQUANT
#include "dequant_main.glsl"
int scale_q3(uint b, uint j) {
    uint lo = j < 8u ? get8(b + 96u + j) & 15u : get8(b + 96u + j - 8u) >> 4;
    uint hi = (get8(b + 104u + j % 4u) >> (2u * (j / 4u))) & 3u;
    return int(lo | (hi << 4)) - 32;
}
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b + 108u));
    for (uint h = 0u; h < 2u; h++) {
        for (uint s = 0u; s < 4u; s++) {
            for (uint hf = 0u; hf < 2u; hf++) {
                F dl = d * float(scale_q3(b, 8u * h + 2u * s + hf));
                for (uint l = 0u; l < 16u; l++) {
                    int lo = int((get8(b + 32u + 32u * h + 16u * hf + l) >> (2u * s)) & 3u);
                    bool hb = (get8(b + 16u * hf + l) & (1u << (4u * h + s))) != 0u;
                    F v = dl * float(lo - (hb ? 0 : 4));
                    ys[g * 256u + 128u * h + 32u * s + 16u * hf + l] = v;
                }
            }
        }
    }
}
#else
#define CUSTOM_MAIN
#include "quant_main.glsl"
#define GROUP_MAX_EPS uintBitsToFloat(0x26901d7du)   // 1e-15f
#define C_0_1 uintBitsToFloat(0x3dcccccdu)           // 0.1f

// Per super-block of the pair (index s = 0, 1).
int SC[32];          // signed scale (−32..31) as the block stores it
float LISC[32];      // importance path: the iscale of each sub-block's first-pass quants
bool ZERO[32];       // sub-block below GROUP_MAX_EPS: first-pass quants 0
float DALL[2];       // d as stored (f16 → f32)
uint DBITS[2];
uint XO[2];
float WT[16];        // weights of the current sub-block (importance path)
float SCL[16];       // the 16 sub-block scales of the current block
float SW[16];        // their weights (importance path)
int LQ[16];          // quants of one sub-block (make_q3_quants, the scale quants)
uint FPQ[64];        // reference path: first-pass quants (0..7), 4 bits each, 8 per word, per (s, j)

// make_q3_quants(16, 4, x, LQ, true) for sub-block j of block s: LQ in 0..7; returns the scale.
float make_q3_16(int s, int j) {
    const int nmax = 4;
    uint xo = XO[s] + uint(16 * j);
    F mx = 0.0;
    F amax = 0.0;
    for (uint i = 0u; i < 16u; i++) {
        F ax = fabs_(xs[xo + i]);
        if (ax > amax) { amax = ax; mx = xs[xo + i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        ZERO[16 * s + j] = true;
        for (int i = 0; i < 16; i++) LQ[i] = 0;
        return 0.0;
    }
    ZERO[16 * s + j] = false;
    F iscale = fdiv(float(-nmax), mx);
    F sumlx = 0.0;
    F suml2 = 0.0;
    for (int i = 0; i < 16; i++) {
        F x = xs[xo + uint(i)];
        int l = max(-nmax, min(nmax - 1, nearest_int(iscale * x)));
        LQ[i] = l;
        F w = x * x;
        F fl = float(l);
        F a = w * x;
        F b = a * fl;
        sumlx = sumlx + b;
        F c = w * fl;
        F e = c * fl;
        suml2 = suml2 + e;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int changed = 0;
        for (int i = 0; i < 16; i++) {
            F x = xs[xo + uint(i)];
            F w = x * x;
            F li = float(LQ[i]);
            F a = w * x;
            F b = a * li;
            F slx = sumlx - b;
            if (slx > 0.0) {
                F c = w * li;
                F e = c * li;
                F sl2 = suml2 - e;
                F num = x * sl2;
                int nl = max(-nmax, min(nmax - 1, nearest_int(fdiv(num, slx))));
                if (nl != LQ[i]) {
                    F fn = float(nl);
                    F a2 = w * x;
                    F b2 = a2 * fn;
                    slx = slx + b2;
                    F c2 = w * fn;
                    F e2 = c2 * fn;
                    sl2 = sl2 + e2;
                    F s1 = slx * slx;
                    F lhs = s1 * suml2;
                    F s2 = sumlx * sumlx;
                    F rhs = s2 * sl2;
                    if (sl2 > 0.0 && lhs > rhs) {
                        LQ[i] = nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (changed == 0) break;
    }
    for (int i = 0; i < 16; i++) LQ[i] += nmax;
    F r = suml2 > 0.0 ? fdiv(sumlx, suml2) : 0.0;
    return r;
}

// make_qx_quants(16, 4, x, L, 1, WT) for sub-block j of block s: returns the scale, records the
// iscale of the final quants (the quants themselves are recomputed from it).
float make_qx16(int s, int j) {
    const int nmax = 4;
    uint xo = XO[s] + uint(16 * j);
    F mx = 0.0;
    F amax = 0.0;
    for (uint i = 0u; i < 16u; i++) {
        F ax = fabs_(xs[xo + i]);
        if (ax > amax) { amax = ax; mx = xs[xo + i]; }
    }
    if (amax < GROUP_MAX_EPS) { ZERO[16 * s + j] = true; LISC[16 * s + j] = 0.0; return 0.0; }
    ZERO[16 * s + j] = false;
    F iscale = fdiv(float(-nmax), mx);
    F sumlx = 0.0;
    F suml2 = 0.0;
    for (uint i = 0u; i < 16u; i++) {
        int l = nearest_int(iscale * xs[xo + i]);
        l = max(-nmax, min(nmax - 1, l));
        F w = WT[i];
        F fl = float(l);
        F a = w * xs[xo + i];
        F b = a * fl;
        sumlx = sumlx + b;
        F c = w * fl;
        F e = c * fl;
        suml2 = suml2 + e;
    }
    LISC[16 * s + j] = iscale;
    F scale = suml2 != 0.0 ? fdiv(sumlx, suml2) : 0.0;
    F best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        F st = C_0_1 * float(is);
        F num = float(nmax) + st;
        F isc = fdiv(-num, mx);
        F slx = 0.0;
        F sl2 = 0.0;
        for (uint i = 0u; i < 16u; i++) {
            int l = nearest_int(isc * xs[xo + i]);
            l = max(-nmax, min(nmax - 1, l));
            F w = WT[i];
            F fl = float(l);
            F a = w * xs[xo + i];
            F b = a * fl;
            slx = slx + b;
            F c = w * fl;
            F e = c * fl;
            sl2 = sl2 + e;
        }
        F lhs = slx * slx;
        F rhs = best * sl2;
        if (sl2 > 0.0 && lhs > rhs) {
            LISC[16 * s + j] = isc;
            scale = fdiv(slx, sl2);
            best = scale * slx;
        }
    }
    return scale;
}

// make_qx_quants(16, 32, SCL, LQ, 1, SW): LQ in 0..63; returns the scale.
float make_qx_scales() {
    const int nmax = 32;
    F mx = 0.0;
    F amax = 0.0;
    for (int i = 0; i < 16; i++) {
        F ax = fabs_(SCL[i]);
        if (ax > amax) { amax = ax; mx = SCL[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < 16; i++) LQ[i] = 0;
        return 0.0;
    }
    F iscale = fdiv(float(-nmax), mx);
    F sumlx = 0.0;
    F suml2 = 0.0;
    for (int i = 0; i < 16; i++) {
        int l = nearest_int(iscale * SCL[i]);
        l = max(-nmax, min(nmax - 1, l));
        LQ[i] = l + nmax;
        F w = SW[i];
        F fl = float(l);
        F a = w * SCL[i];
        F b = a * fl;
        sumlx = sumlx + b;
        F c = w * fl;
        F e = c * fl;
        suml2 = suml2 + e;
    }
    F scale = suml2 != 0.0 ? fdiv(sumlx, suml2) : 0.0;
    F best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        F st = C_0_1 * float(is);
        F num = float(nmax) + st;
        F isc = fdiv(-num, mx);
        F slx = 0.0;
        F sl2 = 0.0;
        for (int i = 0; i < 16; i++) {
            int l = nearest_int(isc * SCL[i]);
            l = max(-nmax, min(nmax - 1, l));
            F w = SW[i];
            F fl = float(l);
            F a = w * SCL[i];
            F b = a * fl;
            slx = slx + b;
            F c = w * fl;
            F e = c * fl;
            sl2 = sl2 + e;
        }
        F lhs = slx * slx;
        F rhs = best * sl2;
        if (sl2 > 0.0 && lhs > rhs) {
            for (int i = 0; i < 16; i++) {
                int l = nearest_int(isc * SCL[i]);
                LQ[i] = nmax + max(-nmax, min(nmax - 1, l));
            }
            scale = fdiv(slx, sl2);
            best = scale * slx;
        }
    }
    return scale;
}

void prepare(int s, uint g) {
    uint xo = g * 256u;
    XO[s] = xo;
    uint dbits = 0u;
    if (p.has_imp == 0u) {
        F max_scale = 0.0;
        F amax = 0.0;
        for (int j = 0; j < 16; j++) {
            F scale = make_q3_16(s, j);
            SCL[j] = scale;
            uint w0 = 0u, w1 = 0u;
            for (int i = 0; i < 8; i++) { w0 |= uint(LQ[i]) << (4 * i); w1 |= uint(LQ[i + 8]) << (4 * i); }
            FPQ[2 * (16 * s + j)] = w0;
            FPQ[2 * (16 * s + j) + 1] = w1;
            F a = fabs_(scale);
            if (a > amax) { amax = a; max_scale = scale; }
        }
        if (max_scale != 0.0) {
            F iscale = fdiv(-32.0, max_scale);
            for (int j = 0; j < 16; j++) {
                F t = iscale * SCL[j];
                int l = (nearest_int(t) << 24) >> 24;
                SC[16 * s + j] = max(-32, min(31, l));
            }
            dbits = f16_bits(fdiv(1.0, iscale));
        } else {
            for (int j = 0; j < 16; j++) SC[16 * s + j] = -32;
        }
    } else {
        uint wo = imp_index(g);
        F s2 = 0.0;
        for (uint l = 0u; l < 256u; l++) { F v = xs[xo + l]; F sq = v * v; s2 = s2 + sq; }
        F two = 2.0 * s2;
        F sigma2 = fdiv(two, 256.0);
        for (int j = 0; j < 16; j++) {
            for (uint l = 0u; l < 16u; l++) {
                F v = xs[xo + uint(16 * j) + l];
                F sq = v * v;
                F t = sigma2 + sq;
                F w = qws[wo + uint(16 * j) + l] * fsqrt(t);
                WT[l] = w;
            }
            F sumw = 0.0;
            for (int l = 0; l < 16; l++) sumw = sumw + WT[l];
            SW[j] = sumw;
            SCL[j] = make_qx16(s, j);
        }
        F d_block = make_qx_scales();
        for (int j = 0; j < 16; j++) SC[16 * s + j] = LQ[j] - 32;
        dbits = f16_bits(d_block);
    }
    DBITS[s] = dbits;
    DALL[s] = f16_to_f32(dbits);
}

// Final quant (0..7) of value i of block s.
uint quant(int s, uint i) {
    int j = int(i / 16u);
    F d = DALL[s] * float(SC[16 * s + j]);
    F x = xs[XO[s] + i];
    if (d != 0.0) {
        int l = nearest_int(fdiv(x, d));
        return uint(max(-4, min(3, l)) + 4);
    }
    if (ZERO[16 * s + j]) return 0u;
    if (p.has_imp != 0u) {
        F t = LISC[16 * s + j] * x;
        return uint(max(-4, min(3, nearest_int(t))) + 4);
    }
    uint k = i % 16u;
    return (FPQ[2 * (16 * s + j) + int(k / 8u)] >> (4u * (k % 8u))) & 15u;
}

// The stored 6-bit scale (0..63) of sub-block j.
uint u6(int s, uint j) { return uint(SC[16 * s + int(j)] + 32); }

uint byte_of(int s, uint pos) {
    if (pos < 32u) {
        uint h = 0u;
        for (uint k = 0u; k < 8u; k++) if (quant(s, 32u * k + pos) > 3u) h |= 1u << k;
        return h;
    }
    if (pos < 96u) {
        uint q = pos - 32u, h = q / 32u, l = q % 32u, v = 128u * h + l;
        return (quant(s, v) & 3u) | ((quant(s, v + 32u) & 3u) << 2) | ((quant(s, v + 64u) & 3u) << 4)
             | ((quant(s, v + 96u) & 3u) << 6);
    }
    if (pos < 104u) {
        uint k = pos - 96u;
        return (u6(s, k) & 15u) | ((u6(s, k + 8u) & 15u) << 4);
    }
    if (pos < 108u) {
        uint k = pos - 104u, b = 0u;
        for (uint m = 0u; m < 4u; m++) b |= ((u6(s, k + 4u * m) >> 4) & 3u) << (2u * m);
        return b;
    }
    return (DBITS[s] >> (8u * (pos - 108u))) & 0xffu;
}

void quant_block(uint g, uint base) {}

void main() {
    uint g0 = 2u * gl_GlobalInvocationID.x;
    if (g0 >= p.n_blocks) return;
    burn();
    prepare(0, g0);
    uint nb = 1u;
    if (g0 + 1u < p.n_blocks) { prepare(1, g0 + 1u); nb = 2u; }
    uint nwords = (nb * uint(BB) + 3u) / 4u;
    uint wo = g0 * uint(BB) / 4u;
    for (uint k = 0u; k < nwords; k++) {
        uint word = 0u;
        for (uint b = 0u; b < 4u; b++) {
            uint pos = 4u * k + b;
            if (pos < nb * uint(BB)) word |= byte_of(int(pos / uint(BB)), pos % uint(BB)) << (8u * b);
        }
        ys[wo + k] = word;
    }
    canary(g0, nb);
}
#endif
