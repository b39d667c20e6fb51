#version 450
// ggml q2_K: scales[16] (4-bit scale | 4-bit min << 4 per 16 values) · qs[64] (2-bit quants) ·
// d f16 · dmin f16 (84 bytes); x = d·sc·q − dmin·m. Reference path quantize_row_q2_K_ref
// (make_qkx2_quants with |x| weights and the absolute-error measure); with importance
// quantize_row_q2_K_impl (make_qkx3_quants, then make_qp_quants for the scales and the mins).
// The block is word-aligned: one invocation per block writes whole words, each quant computed when
// its word is written; a sub-block whose requantization scale is 0 keeps its first-pass quants,
// recomputed from the recorded iscale and min of the search step that produced them.
#include "exact.glsl"
#define BS 256
#define BB 84
#ifdef DEQUANT
#include "dequant_main.glsl"
void dequant_block(uint g) {
    uint b = g * BB;
    F d = f16_to_f32(get16(b + 80u));
    F mn = f16_to_f32(get16(b + 82u));
    for (uint h = 0u; h < 2u; h++) {
        for (uint s = 0u; s < 4u; s++) {
            for (uint hf = 0u; hf < 2u; hf++) {
                uint sc = get8(b + 8u * h + 2u * s + hf);
                F dl = d * float(sc & 15u);
                F ml = mn * float(sc >> 4);
                for (uint l = 0u; l < 16u; l++) {
                    uint q = (get8(b + 16u + 32u * h + 16u * hf + l) >> (2u * s)) & 3u;
                    F a = dl * float(q);
                    F v = a - ml;
                    ys[g * 256u + 128u * h + 32u * s + 16u * hf + l] = v;
                }
            }
        }
    }
}
#else
#define DIRECT_WORDS
#include "quant_main.glsl"
#define GROUP_MAX_EPS uintBitsToFloat(0x26901d7du)   // 1e-15f
#define C_0_1 uintBitsToFloat(0x3dcccccdu)           // 0.1f
#define C_M0_9 uintBitsToFloat(0xbf666666u)          // -0.9f
#define C_0_05 uintBitsToFloat(0x3d4ccccdu)          // 0.05f

float XB[16];
float WT[16];
float SCALES[16];
float MINS[16];
float SW[16];
float LISC[16];      // first-pass quants of sub-block j: clamp(nearest_int(LISC·(x − LMIN)))
float LMIN[16];
bool ZERO[16];       // first-pass quants 0
uint SC[16];         // the 16 scale bytes
uint LP[16];         // make_qp_quants output (uint8)
float DALL, MALL;
uint XOFF;

// make_qkx2_quants (strict: max == min) / make_qkx3_quants (max <= min) with nmax 3 on XB, WT for
// sub-block j; `mad`: absolute instead of squared error. Returns the scale, sets MINS[j] = -min.
float make_qkx16(int j, float rmin, float rdelta, int nstep, bool mad, bool strict) {
    const int nmax = 3;
    F mn = XB[0];
    F mx = XB[0];
    F sum_w = WT[0];
    F sum_x = sum_w * XB[0];
    for (int i = 1; i < 16; i++) {
        if (XB[i] < mn) mn = XB[i];
        if (XB[i] > mx) mx = XB[i];
        F w = WT[i];
        sum_w = sum_w + w;
        F wx = w * XB[i];
        sum_x = sum_x + wx;
    }
    if (mn > 0.0) mn = 0.0;
    if (strict ? (mx == mn) : (mx <= mn)) {
        ZERO[j] = true;
        F m0 = -mn;
        MINS[j] = m0;
        return 0.0;
    }
    ZERO[j] = false;
    F range = mx - mn;
    F iscale = fdiv(float(nmax), range);
    F scale = fdiv(1.0, iscale);
    LISC[j] = iscale;
    LMIN[j] = mn;
    F best = 0.0;
    for (int i = 0; i < 16; i++) {
        F t = XB[i] - mn;
        int l = max(0, min(nmax, nearest_int(iscale * t)));
        F a = scale * float(l);
        F b = a + mn;
        F diff = b - XB[i];
        F d2 = diff * diff;
        F e = mad ? fabs_(diff) : d2;
        F wd = WT[i] * e;
        best = best + wd;
    }
    for (int is = 0; is <= nstep; ++is) {
        F st = rdelta * float(is);
        F num0 = rmin + st;
        F num = num0 + float(nmax);
        F r = mx - mn;
        F isc = fdiv(num, r);
        F sum_l = 0.0;
        F sum_l2 = 0.0;
        F sum_xl = 0.0;
        for (int i = 0; i < 16; i++) {
            F t = XB[i] - mn;
            int l = max(0, min(nmax, nearest_int(isc * t)));
            F w = WT[i];
            F fl = float(l);
            F wl = w * fl;
            sum_l = sum_l + wl;
            F wll = wl * fl;
            sum_l2 = sum_l2 + wll;
            F wlx = wl * XB[i];
            sum_xl = sum_xl + wlx;
        }
        F p1 = sum_w * sum_l2;
        F p2 = sum_l * sum_l;
        F D = p1 - p2;
        if (D > 0.0) {
            F a1 = sum_w * sum_xl;
            F a2 = sum_x * sum_l;
            F an = a1 - a2;
            F this_scale = fdiv(an, D);
            F b1 = sum_l2 * sum_x;
            F b2 = sum_l * sum_xl;
            F bn = b1 - b2;
            F this_min = fdiv(bn, D);
            if (this_min > 0.0) {
                this_min = 0.0;
                this_scale = fdiv(sum_xl, sum_l2);
            }
            F cur = 0.0;
            for (int i = 0; i < 16; i++) {
                F t = XB[i] - mn;
                int l = max(0, min(nmax, nearest_int(isc * t)));
                F a = this_scale * float(l);
                F b = a + this_min;
                F diff = b - XB[i];
                F d2 = diff * diff;
                F e = mad ? fabs_(diff) : d2;
                F wd = WT[i] * e;
                cur = cur + wd;
            }
            if (cur < best) {
                LISC[j] = isc;
                LMIN[j] = mn;
                best = cur;
                scale = this_scale;
                mn = this_min;
            }
        }
    }
    F m0 = -mn;
    MINS[j] = m0;
    return scale;
}

// make_qp_quants(16, 15, v, LP, SW) with v = SCALES (which = 0) or MINS (which = 1).
float V16(int which, int i) { return which == 0 ? SCALES[i] : MINS[i]; }
float make_qp16(int which) {
    const int nmax = 15;
    F mx = 0.0;
    for (int i = 0; i < 16; i++) { F v = V16(which, i); mx = mx > v ? mx : v; }
    if (mx < GROUP_MAX_EPS) {
        for (int i = 0; i < 16; i++) LP[i] = 0u;
        return 0.0;
    }
    F iscale = fdiv(float(nmax), mx);
    for (int i = 0; i < 16; i++) LP[i] = uint(nearest_int(iscale * V16(which, i))) & 0xffu;
    F scale = fdiv(1.0, iscale);
    F best = 0.0;
    for (int i = 0; i < 16; i++) {
        F a = scale * float(LP[i]);
        F diff = V16(which, i) - a;
        F wd = SW[i] * diff;
        F e = wd * diff;
        best = best + e;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        F st = C_0_1 * float(is);
        F num = st + float(nmax);
        F isc = fdiv(num, mx);
        F sc = fdiv(1.0, isc);
        F mse = 0.0;
        for (int i = 0; i < 16; i++) {
            int l = min(nmax, nearest_int(isc * V16(which, i)));
            F a = sc * float(l);
            F diff = V16(which, i) - a;
            F wd = SW[i] * diff;
            F e = wd * diff;
            mse = mse + e;
        }
        if (mse < best) { best = mse; iscale = isc; }
    }
    F sumlx = 0.0;
    F suml2 = 0.0;
    for (int i = 0; i < 16; i++) {
        int l = min(nmax, nearest_int(iscale * V16(which, i)));
        LP[i] = uint(l) & 0xffu;
        F w = SW[i];
        F fl = float(l);
        F a = w * V16(which, i);
        F b = a * fl;
        sumlx = sumlx + b;
        F c = w * fl;
        F e = c * fl;
        suml2 = suml2 + e;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int changed = 0;
        for (int i = 0; i < 16; i++) {
            F w = SW[i];
            F li = float(LP[i]);
            F a = w * V16(which, i);
            F b = a * li;
            F slx = sumlx - b;
            F c = w * li;
            F e = c * li;
            F sl2 = suml2 - e;
            if (slx > 0.0 && sl2 > 0.0) {
                F num = V16(which, i) * sl2;
                int nl = min(nmax, nearest_int(fdiv(num, slx)));
                if (nl != int(LP[i])) {
                    F fn = float(nl);
                    F a2 = w * V16(which, i);
                    F b2 = a2 * fn;
                    slx = slx + b2;
                    F c2 = w * fn;
                    F e2 = c2 * fn;
                    sl2 = sl2 + e2;
                    F s1 = slx * slx;
                    F lhs = s1 * suml2;
                    F s2 = sumlx * sumlx;
                    F rhs = s2 * sl2;
                    if (lhs > rhs) {
                        LP[i] = uint(nl) & 0xffu;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (changed == 0) break;
    }
    F r = suml2 > 0.0 ? fdiv(sumlx, suml2) : 0.0;
    return r;
}

void load_block(int j) {
    for (int i = 0; i < 16; i++) XB[i] = xs[XOFF + uint(16 * j + i)];
}

// The block's scale bytes, d and dmin; returns the f16 bits of d | dmin << 16.
uint prepare(uint g) {
    XOFF = g * 256u;
    uint dbits = 0u, mbits = 0u;
    if (p.has_imp == 0u) {
        F max_scale = 0.0;
        F max_min = 0.0;
        for (int j = 0; j < 16; j++) {
            load_block(j);
            for (int l = 0; l < 16; l++) WT[l] = fabs_(XB[l]);
            SCALES[j] = make_qkx16(j, -0.5, C_0_1, 15, true, true);
            if (SCALES[j] > max_scale) max_scale = SCALES[j];
            if (MINS[j] > max_min) max_min = MINS[j];
        }
        if (max_scale > 0.0) {
            F iscale = fdiv(15.0, max_scale);
            for (int j = 0; j < 16; j++) { F t = iscale * SCALES[j]; SC[j] = uint(nearest_int(t)) & 0xffu; }
            dbits = f16_bits(fdiv(max_scale, 15.0));
        } else {
            for (int j = 0; j < 16; j++) SC[j] = 0u;
        }
        if (max_min > 0.0) {
            F iscale = fdiv(15.0, max_min);
            for (int j = 0; j < 16; j++) {
                F t = iscale * MINS[j];
                SC[j] = (SC[j] | uint(nearest_int(t) << 4)) & 0xffu;
            }
            mbits = f16_bits(fdiv(max_min, 15.0));
        }
    } else {
        uint wo = imp_index(g);
        F s2 = 0.0;
        for (int l = 0; l < 256; l++) { F v = xs[XOFF + uint(l)]; F sq = v * v; s2 = s2 + sq; }
        F sigma2 = fdiv(s2, 256.0);
        for (int j = 0; j < 16; j++) {
            load_block(j);
            for (int l = 0; l < 16; l++) {
                F sq = XB[l] * XB[l];
                F s = sigma2 + sq;
                F w = qws[wo + uint(16 * j + l)] * fsqrt(s);
                WT[l] = w;
            }
            F sumw = 0.0;
            for (int l = 0; l < 16; l++) sumw = sumw + WT[l];
            SW[j] = sumw;
            SCALES[j] = make_qkx16(j, C_M0_9, C_0_05, 36, false, false);
        }
        F dm = make_qp16(0);
        for (int j = 0; j < 16; j++) SC[j] = LP[j];
        F mm = make_qp16(1);
        for (int j = 0; j < 16; j++) SC[j] = (SC[j] | (LP[j] << 4)) & 0xffu;
        dbits = f16_bits(dm);
        mbits = f16_bits(mm);
    }
    DALL = f16_to_f32(dbits);
    MALL = f16_to_f32(mbits);
    return dbits | (mbits << 16);
}

// Final quant (0..3) of value i (0..255).
uint quant(uint i) {
    int j = int(i / 16u);
    F d = DALL * float(SC[j] & 15u);
    F x = xs[XOFF + i];
    if (d != 0.0) {
        F dm = MALL * float(SC[j] >> 4);
        F t = x + dm;
        return uint(max(0, min(3, nearest_int(fdiv(t, d)))));
    }
    if (ZERO[j]) return 0u;
    F t = x - LMIN[j];
    F u = LISC[j] * t;
    return uint(max(0, min(3, nearest_int(u))));
}

void quant_block(uint g, uint base) {
    uint dm = prepare(g);
    for (uint k = 0u; k < 4u; k++)
        ys[base + k] = SC[4u * k] | (SC[4u * k + 1u] << 8) | (SC[4u * k + 2u] << 16) | (SC[4u * k + 3u] << 24);
    // qs: byte 32h + l holds values 128h + l + 32m at bits 2m
    for (uint k = 0u; k < 16u; k++) {
        uint word = 0u;
        for (uint b = 0u; b < 4u; b++) {
            uint pos = 4u * k + b, h = pos / 32u, l = pos % 32u, v = 128u * h + l;
            uint q = quant(v) | (quant(v + 32u) << 2) | (quant(v + 64u) << 4) | (quant(v + 96u) << 6);
            word |= q << (8u * b);
        }
        ys[base + 4u + k] = word;
    }
    ys[base + 20u] = dm;
}
#endif
