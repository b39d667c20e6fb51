// ggml q4_K / q5_K (NMAX 15 / 31): 8 blocks of 32 with 6-bit scales and mins. Reference path
// quantize_row_q{4,5}_K_ref (make_qkx2_quants, weights av_x + |x|); with importance
// quantize_row_q{4,5}_K_impl (make_qkx3_quants, then make_qp_quants for the scales and mins;
// q5_K clamps the scale quants to 63, q4_K does not). The block is word-aligned: one invocation
// per block writes whole words, each quant computed when its word is written (sub-blocks whose
// requantization scale is 0 keep their first-pass quants: their iscale and min are recorded).
#define GROUP_MAX_EPS uintBitsToFloat(0x26901d7du)   // 1e-15f
#define C_0_1 uintBitsToFloat(0x3dcccccdu)           // 0.1f
#define C_M0_9 uintBitsToFloat(0xbf666666u)          // -0.9f
#define C_0_05 uintBitsToFloat(0x3d4ccccdu)          // 0.05f

float XB[32];
float WT[32];
float SCALES[8];
float MINS[8];
float SW[8];
float LISC[8];       // first-pass quants of sub-block j: clamp(nearest_int(LISC·(x − LMIN)))
float LMIN[8];
bool ZERO[8];        // first-pass quants 0
uint SB12[12];       // the 12 packed scale bytes
uint LP[8];          // make_qp_quants output (uint8)
float DALL, MALL;
uint XOFF;

// make_qkx2_quants (strict: max == min) / make_qkx3_quants (max <= min) on XB, WT for sub-block j;
// returns the scale, sets MINS[j] = -min.
float make_qkx(int j, int nmax, float rmin, float rdelta, int nstep, bool strict) {
    F mn = XB[0];
    F mx = XB[0];
    F sum_w = WT[0];
    F sum_x = sum_w * XB[0];
    for (int i = 1; i < 32; i++) {
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
    for (int i = 0; i < 32; i++) {
        F t = XB[i] - mn;
        int l = max(0, min(nmax, nearest_int(iscale * t)));
        F a = scale * float(l);
        F b = a + mn;
        F diff = b - XB[i];
        F d2 = diff * diff;
        F wd = WT[i] * d2;
        best = best + wd;
    }
    if (nstep >= 1) {
        for (int is = 0; is <= nstep; ++is) {
            F st = rdelta * float(is);
            F num0 = rmin + st;
            F num = num0 + float(nmax);
            F r = mx - mn;
            F isc = fdiv(num, r);
            F sum_l = 0.0;
            F sum_l2 = 0.0;
            F sum_xl = 0.0;
            for (int i = 0; i < 32; i++) {
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
                for (int i = 0; i < 32; i++) {
                    F t = XB[i] - mn;
                    int l = max(0, min(nmax, nearest_int(isc * t)));
                    F a = this_scale * float(l);
                    F b = a + this_min;
                    F diff = b - XB[i];
                    F d2 = diff * diff;
                    F wd = WT[i] * d2;
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
    }
    F m0 = -mn;
    MINS[j] = m0;
    return scale;
}

// make_qp_quants(8, nmax, v, LP, SW) with v = SCALES (which = 0) or MINS (which = 1).
float V8(int which, int i) { return which == 0 ? SCALES[i] : MINS[i]; }
float make_qp8(int which, int nmax) {
    F mx = 0.0;
    for (int i = 0; i < 8; i++) { F v = V8(which, i); mx = mx > v ? mx : v; }
    if (mx < GROUP_MAX_EPS) {
        for (int i = 0; i < 8; i++) LP[i] = 0u;
        return 0.0;
    }
    F iscale = fdiv(float(nmax), mx);
    for (int i = 0; i < 8; i++) LP[i] = uint(nearest_int(iscale * V8(which, i))) & 0xffu;
    F scale = fdiv(1.0, iscale);
    F best = 0.0;
    for (int i = 0; i < 8; i++) {
        F a = scale * float(LP[i]);
        F diff = V8(which, i) - a;
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
        for (int i = 0; i < 8; i++) {
            int l = min(nmax, nearest_int(isc * V8(which, i)));
            F a = sc * float(l);
            F diff = V8(which, i) - a;
            F wd = SW[i] * diff;
            F e = wd * diff;
            mse = mse + e;
        }
        if (mse < best) { best = mse; iscale = isc; }
    }
    F sumlx = 0.0;
    F suml2 = 0.0;
    for (int i = 0; i < 8; i++) {
        int l = min(nmax, nearest_int(iscale * V8(which, i)));
        LP[i] = uint(l) & 0xffu;
        F w = SW[i];
        F fl = float(l);
        F a = w * V8(which, i);
        F b = a * fl;
        sumlx = sumlx + b;
        F c = w * fl;
        F e = c * fl;
        suml2 = suml2 + e;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int changed = 0;
        for (int i = 0; i < 8; i++) {
            F w = SW[i];
            F li = float(LP[i]);
            F a = w * V8(which, i);
            F b = a * li;
            F slx = sumlx - b;
            F c = w * li;
            F e = c * li;
            F sl2 = suml2 - e;
            if (slx > 0.0 && sl2 > 0.0) {
                F num = V8(which, i) * sl2;
                int nl = min(nmax, nearest_int(fdiv(num, slx)));
                if (nl != int(LP[i])) {
                    F fn = float(nl);
                    F a2 = w * V8(which, i);
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

// ggml's packing of scale/min j into the 12 bytes (C's uint8_t stores: values wrap).
void pack_scale_min(int j, uint ls, uint lm) {
    if (j < 4) {
        SB12[j] = ls & 0xffu;
        SB12[j + 4] = lm & 0xffu;
    } else {
        SB12[j + 4] = ((ls & 15u) | ((lm & 15u) << 4)) & 0xffu;
        SB12[j - 4] |= ((ls >> 4) << 6) & 0xffu;
        SB12[j] |= ((lm >> 4) << 6) & 0xffu;
    }
}
// get_scale_min_k4.
uvec2 scale_min(int j) {
    if (j < 4) return uvec2(SB12[j] & 63u, SB12[j + 4] & 63u);
    return uvec2((SB12[j + 4] & 15u) | ((SB12[j - 4] >> 6) << 4), (SB12[j + 4] >> 4) | ((SB12[j] >> 6) << 4));
}

void load_block(int j) {
    for (int i = 0; i < 32; i++) XB[i] = xs[XOFF + uint(32 * j + i)];
}

// The block's scales, mins, d and dmin; returns the f16 bits of d | dmin << 16.
uint prepare(uint g) {
    XOFF = g * 256u;
    bool has = p.has_imp != 0u;
    if (!has) {
        F max_scale = 0.0;
        F max_min = 0.0;
        for (int j = 0; j < 8; j++) {
            load_block(j);
            F s2 = 0.0;
            for (int l = 0; l < 32; l++) { F sq = XB[l] * XB[l]; s2 = s2 + sq; }
            F av = fsqrt(fdiv(s2, 32.0));
            for (int l = 0; l < 32; l++) { F w = av + fabs_(XB[l]); WT[l] = w; }
#if NMAX == 15
            SCALES[j] = make_qkx(j, 15, -1.0, C_0_1, 20, true);
#else
            SCALES[j] = make_qkx(j, 31, -0.5, C_0_1, 15, true);
#endif
            if (SCALES[j] > max_scale) max_scale = SCALES[j];
            if (MINS[j] > max_min) max_min = MINS[j];
        }
        F inv_scale = max_scale > 0.0 ? fdiv(63.0, max_scale) : 0.0;
        F inv_min = max_min > 0.0 ? fdiv(63.0, max_min) : 0.0;
        for (int k = 0; k < 12; k++) SB12[k] = 0u;
        for (int j = 0; j < 8; j++) {
            F a = inv_scale * SCALES[j];
            F b = inv_min * MINS[j];
            uint ls = min(63u, uint(nearest_int(a)) & 0xffu);
            uint lm = min(63u, uint(nearest_int(b)) & 0xffu);
            pack_scale_min(j, ls, lm);
        }
        uint dbits = f16_bits(fdiv(max_scale, 63.0));
        uint mbits = f16_bits(fdiv(max_min, 63.0));
        DALL = f16_to_f32(dbits);
        MALL = f16_to_f32(mbits);
        return dbits | (mbits << 16);
    }
    uint wo = imp_index(g);
    F s2 = 0.0;
    for (int l = 0; l < 256; l++) { F v = xs[XOFF + uint(l)]; F sq = v * v; s2 = s2 + sq; }
    F two = 2.0 * s2;
    F sigma2 = fdiv(two, 256.0);
    for (int j = 0; j < 8; j++) {
        load_block(j);
        F sumw = 0.0;
        for (int l = 0; l < 32; l++) {
            F sq = XB[l] * XB[l];
            F s = sigma2 + sq;
            F w = qws[wo + uint(32 * j + l)] * fsqrt(s);
            WT[l] = w;
        }
        for (int l = 0; l < 32; l++) sumw = sumw + WT[l];
        SW[j] = sumw;
        SCALES[j] = make_qkx(j, NMAX, C_M0_9, C_0_05, 36, false);
    }
    F d_block = make_qp8(0, 63);
    uint LS[8];
    for (int j = 0; j < 8; j++) LS[j] = LP[j];
    F m_block = make_qp8(1, 63);
    for (int k = 0; k < 12; k++) SB12[k] = 0u;
    for (int j = 0; j < 8; j++) {
        uint ls = LS[j], lm = LP[j];
#if NMAX == 31
        ls = min(63u, ls);
        lm = min(63u, lm);
#endif
        pack_scale_min(j, ls, lm);
    }
    uint dbits = f16_bits(d_block);
    uint mbits = f16_bits(m_block);
    DALL = f16_to_f32(dbits);
    MALL = f16_to_f32(mbits);
    return dbits | (mbits << 16);
}

// Final quant of value i (0..255).
uint quant(uint i) {
    int j = int(i / 32u);
    uvec2 sm = scale_min(j);
    F d = DALL * float(sm.x);
    F x = xs[XOFF + i];
    if (d != 0.0) {
        F dm = MALL * float(sm.y);
        F t = x + dm;
        return uint(max(0, min(NMAX, nearest_int(fdiv(t, d)))));
    }
    if (ZERO[j]) return 0u;
    F t = x - LMIN[j];
    F u = LISC[j] * t;
    return uint(max(0, min(NMAX, nearest_int(u))));
}

void quant_block(uint g, uint base) {
    ys[base] = prepare(g);
    ys[base + 1u] = SB12[0] | (SB12[1] << 8) | (SB12[2] << 16) | (SB12[3] << 24);
    ys[base + 2u] = SB12[4] | (SB12[5] << 8) | (SB12[6] << 16) | (SB12[7] << 24);
    ys[base + 3u] = SB12[8] | (SB12[9] << 8) | (SB12[10] << 16) | (SB12[11] << 24);
#if NMAX == 15
    // qs: for each 64 values, 32 bytes of (low 32 | high 32 << 4)
    for (uint k = 0u; k < 32u; k++) {
        uint word = 0u;
        for (uint b = 0u; b < 4u; b++) {
            uint pos = 4u * k + b, jj = pos / 32u, l = pos % 32u;
            word |= (quant(64u * jj + l) | (quant(64u * jj + 32u + l) << 4)) << (8u * b);
        }
        ys[base + 4u + k] = word;
    }
#else
    // qh[32]: bit 2jj / 2jj+1 of byte j = 5th bit of value 64jj + j / 64jj + 32 + j; ql[128] as q4_K
    for (uint k = 0u; k < 8u; k++) {
        uint word = 0u;
        for (uint b = 0u; b < 4u; b++) {
            uint j = 4u * k + b, h = 0u;
            for (uint jj = 0u; jj < 4u; jj++) {
                if (quant(64u * jj + j) > 15u) h |= 1u << (2u * jj);
                if (quant(64u * jj + 32u + j) > 15u) h |= 2u << (2u * jj);
            }
            word |= h << (8u * b);
        }
        ys[base + 4u + k] = word;
    }
    for (uint k = 0u; k < 32u; k++) {
        uint word = 0u;
        for (uint b = 0u; b < 4u; b++) {
            uint pos = 4u * k + b, jj = pos / 32u, l = pos % 32u;
            word |= ((quant(64u * jj + l) & 15u) | ((quant(64u * jj + 32u + l) & 15u) << 4)) << (8u * b);
        }
        ys[base + 12u + k] = word;
    }
#endif
}
