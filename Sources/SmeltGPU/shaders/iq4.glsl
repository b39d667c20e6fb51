// ggml's quantize_row_iq4_nl_impl for one super-block of SB values (32: iq4_nl, 256: iq4_xs) made
// of 32-value blocks, with ntry = 7 (what quantize_iq4_nl / quantize_iq4_xs use with and without
// importance weights). The including file defines SB and Q4_OFF (offset of the nibbles).
#define GROUP_MAX_EPS uintBitsToFloat(0x26901d7du)   // 1e-15f
const int KV[16] = int[16](-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
#define NBLK (SB / 32)

// Inputs are read from the buffer (no private copy: Mesa 22's lavapipe corrupts large private
// arrays), and the first pass's quants are not kept: ggml recomputes them all at the end.
float WTB[32];
float SCALES[NBLK];
#define XS_(k) xs[xo + uint(k)]

// ggml's best_index_int8 on kvalues_iq4nl.
int best_index(float x) {
    if (x <= float(KV[0])) return 0;
    if (x >= float(KV[15])) return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        int mav = (ml + mu) / 2;
        if (x < float(KV[mav])) mu = mav; else ml = mav;
    }
    F a = x - float(KV[mu - 1]);
    F b = float(KV[mu]) - x;
    return a < b ? mu - 1 : mu;
}

// The nibbles of block ib: best_index(id · x). `base`: byte offset in W, or with DIRECT_WORDS the
// block's first word in ys.
void pack_block(uint base, int ib, float id, uint xo) {
#ifdef DIRECT_WORDS
    for (int k = 0; k < 4; k++) {
        uint word = 0u;
        for (int b = 0; b < 4; b++) {
            int j = 4 * k + b;
            F a0 = id * XS_(32 * ib + j);
            F a1 = id * XS_(32 * ib + 16 + j);
            word |= (uint(best_index(a0)) | (uint(best_index(a1)) << 4)) << uint(8 * b);
        }
        ys[base + uint(Q4_OFF / 4 + 4 * ib + k)] = word;
    }
#else
    for (int j = 0; j < 16; j++) {
        F a0 = id * XS_(32 * ib + j);
        F a1 = id * XS_(32 * ib + 16 + j);
        put8(base + uint(Q4_OFF + 16 * ib + j), uint(best_index(a0)) | (uint(best_index(a1)) << 4));
    }
#endif
}

void quant_block(uint g, uint base) {
    uint xo = g * uint(SB);
    bool has = p.has_imp != 0u;
    uint wo = has ? imp_index(g) : 0u;
    F sigma2 = 0.0;
    for (int j = 0; j < SB; j++) {
        F v = XS_(j);
        F sq = v * v;
        sigma2 = sigma2 + sq;
    }
    F c = 2.0 / float(SB);   // a power of two: exact
    sigma2 = sigma2 * c;
    F max_scale = 0.0;
    F amax_scale = 0.0;
    for (int ib = 0; ib < NBLK; ib++) {
        int o = ib * 32;
        for (int j = 0; j < 32; j++) {
            F v = XS_(o + j);
            F sq = v * v;
            if (has) {
                F s = sigma2 + sq;
                F w = qws[wo + uint(o + j)] * fsqrt(s);
                WTB[j] = w;
            } else {
                WTB[j] = sq;
            }
        }
        F amax = 0.0;
        F mx = 0.0;
        for (int j = 0; j < 32; j++) {
            F ax = fabs_(XS_(o + j));
            if (ax > amax) { amax = ax; mx = XS_(o + j); }
        }
        if (amax < GROUP_MAX_EPS) {
            SCALES[ib] = 0.0;
            continue;
        }
        F nmx = -mx;
        F d = fdiv(nmx, float(KV[0]));
        F id = fdiv(1.0, d);
        F sumqx = 0.0;
        F sumq2 = 0.0;
        for (int j = 0; j < 32; j++) {
            F al = id * XS_(o + j);
            int l = best_index(al);
            F q = float(KV[l]);
            F w = WTB[j];
            F wq = w * q;
            F a = wq * XS_(o + j);
            sumqx = sumqx + a;
            F b = wq * q;
            sumq2 = sumq2 + b;
        }
        d = sumq2 > 0.0 ? fdiv(sumqx, sumq2) : 0.0;
        F best = d * sumqx;
        for (int itry = -7; itry <= 7; itry++) {
            F idt = fdiv(float(itry + KV[0]), mx);
            F sqx = 0.0;
            F sq2 = 0.0;
            for (int j = 0; j < 32; j++) {
                F al = idt * XS_(o + j);
                int l = best_index(al);
                F q = float(KV[l]);
                F w = WTB[j];
                F wq = w * q;
                F a = wq * XS_(o + j);
                sqx = sqx + a;
                F b = wq * q;
                sq2 = sq2 + b;
            }
            F lhs = sqx * sqx;
            F rhs = best * sq2;
            if (sq2 > 0.0 && lhs > rhs) {
                d = fdiv(sqx, sq2);
                best = d * sqx;
            }
        }
        SCALES[ib] = d;
        F ad = fabs_(d);
        if (ad > amax_scale) { amax_scale = ad; max_scale = d; }
    }
#if SB > 32
    uint sh = 0u, sl = 0u;
    F nms = -max_scale;
    F d = fdiv(nms, 32.0);
    F id = d != 0.0 ? fdiv(1.0, d) : 0.0;
    for (int ib = 0; ib < NBLK; ib++) {
        F t = id * SCALES[ib];
        int l = nearest_int(t);
        l = max(-32, min(31, l));
        F dl = d * float(l);
        F idl = dl != 0.0 ? fdiv(1.0, dl) : 0.0;
        pack_block(base, ib, idl, xo);
        l += 32;
        sl |= (uint(l) & 15u) << uint(4 * ib);              // scales_l[ib / 2], low nibble first
        sh |= (uint(l >> 4) & 3u) << uint(2 * (ib % 8));
    }
    ys[base] = f16_bits(d) | (sh << 16);
    ys[base + 1u] = sl;
#else
    put16(base, f16_bits(SCALES[0]));
    F id = SCALES[0] != 0.0 ? fdiv(1.0, SCALES[0]) : 0.0;
    pack_block(base, 0, id, xo);
#endif
}
