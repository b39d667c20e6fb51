// ggml's scale searches for one block of 32 values, on the block copied into XB with
// weights WT (ggml-quants.c: make_qx_quants with rmse_type 1 and quant weights,
// make_qkx3_quants). Every expression is ggml's, in ggml's order; constants are the exact
// float bits of ggml's literals.
#define GROUP_MAX_EPS uintBitsToFloat(0x26901d7du)   // 1e-15f
#define C_0_1 uintBitsToFloat(0x3dcccccdu)           // 0.1f
#define C_M0_9 uintBitsToFloat(0xbf666666u)          // -0.9f
#define C_0_05 uintBitsToFloat(0x3d4ccccdu)          // 0.05f

float XB[32];
float WT[32];
int LQ[32];
int LAUX[32];

// Copies block g of the chunk into XB and sets WT = qw · sqrt(sigma2 + x²) (the legacy types' weights).
void load_weighted_block(uint g) {
    uint xo = g * 32u, wo = imp_index(g);
    F sigma2 = row_sigma2[row_of(g)];
    for (int j = 0; j < 32; j++) {
        F v = xs[xo + uint(j)];
        XB[j] = v;
        F sq = v * v;
        F s = sigma2 + sq;
        F w = qws[wo + uint(j)] * fsqrt(s);
        WT[j] = w;
    }
}

// make_qx_quants(32, nmax, XB, LQ, 1, WT): LQ in 0..<2·nmax; returns the scale.
float make_qx_quants32(int nmax) {
    F mx = 0.0;
    F amax = 0.0;
    for (int i = 0; i < 32; i++) {
        F ax = fabs_(XB[i]);
        if (ax > amax) { amax = ax; mx = XB[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < 32; i++) LQ[i] = 0;
        return 0.0;
    }
    F iscale = fdiv(float(-nmax), mx);
    F sumlx = 0.0;
    F suml2 = 0.0;
    for (int i = 0; i < 32; i++) {
        int l = nearest_int(iscale * XB[i]);
        l = max(-nmax, min(nmax - 1, l));
        LQ[i] = l + nmax;
        F w = WT[i];
        F fl = float(l);
        F a = w * XB[i];
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
        for (int i = 0; i < 32; i++) {
            int l = nearest_int(isc * XB[i]);
            l = max(-nmax, min(nmax - 1, l));
            F w = WT[i];
            F fl = float(l);
            F a = w * XB[i];
            F b = a * fl;
            slx = slx + b;
            F c = w * fl;
            F e = c * fl;
            sl2 = sl2 + e;
        }
        F lhs = slx * slx;
        F rhs = best * sl2;
        if (sl2 > 0.0 && lhs > rhs) {
            for (int i = 0; i < 32; i++) {
                int l = nearest_int(isc * XB[i]);
                LQ[i] = nmax + max(-nmax, min(nmax - 1, l));
            }
            scale = fdiv(slx, sl2);
            best = scale * slx;
        }
    }
    return scale;
}

// make_qkx3_quants(32, nmax, XB, WT, LQ, &the_min, LAUX, rmin, rdelta, nstep, false):
// returns the scale, `the_min` = -min.
float make_qkx3_quants32(int nmax, float rmin, float rdelta, int nstep, out float the_min) {
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
    if (mx <= mn) {
        for (int i = 0; i < 32; i++) LQ[i] = 0;
        F m0 = -mn;
        the_min = m0;
        return 0.0;
    }
    F range = mx - mn;
    F iscale = fdiv(float(nmax), range);
    F scale = fdiv(1.0, iscale);
    F best_mad = 0.0;
    for (int i = 0; i < 32; i++) {
        F t = XB[i] - mn;
        int l = nearest_int(iscale * t);
        LQ[i] = max(0, min(nmax, l));
        F a = scale * float(LQ[i]);
        F b = a + mn;
        F diff = b - XB[i];
        F d2 = diff * diff;
        F wd = WT[i] * d2;
        best_mad = best_mad + wd;
    }
    if (nstep < 1) {
        F m0 = -mn;
        the_min = m0;
        return scale;
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
        for (int i = 0; i < 32; i++) {
            F t = XB[i] - mn;
            int l = nearest_int(isc * t);
            l = max(0, min(nmax, l));
            LAUX[i] = l;
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
            F mad = 0.0;
            for (int i = 0; i < 32; i++) {
                F a = this_scale * float(LAUX[i]);
                F b = a + this_min;
                F diff = b - XB[i];
                F d2 = diff * diff;
                F wd = WT[i] * d2;
                mad = mad + wd;
            }
            if (mad < best_mad) {
                for (int i = 0; i < 32; i++) LQ[i] = LAUX[i];
                best_mad = mad;
                scale = this_scale;
                mn = this_min;
            }
        }
    }
    F m0 = -mn;
    the_min = m0;
    return scale;
}

// (int8_t) of an int: C's wrap-around.
int wrap_i8(int v) { return (v << 24) >> 24; }
