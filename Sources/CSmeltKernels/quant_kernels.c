// Bit-exact row quantizers (ggml's paths with and without importance weights) with run-time
// instruction-set dispatch: one source, compiled three times through target attributes
// (portable x86-64 / other CPUs, AVX2, AVX-512), chosen once per process with cpuid.
//
// Bit-exactness with ggml (ggml-quants.c at llama.cpp 34af94cd9) rests on:
//  - every float operation done per lane in ggml's order (no reassociation) and never fused
//    (FP_CONTRACT off below: ggml's quantizers are compiled without FMA contraction);
//  - nearest_int as ggml does it (add 1.5·2^23, keep the low 23 bits): round half to even;
//  - the scale searches run the sub-blocks of a super-block side by side, lane j holding
//    ggml's sequential algorithm for sub-block j, with state updates through lane masks.
// Lanes are 16 floats wide (GCC/Clang vector extensions): one zmm register with AVX-512,
// two ymm with AVX2, four xmm on baseline x86-64. SmeltQuant's Swift kernels are the
// reference the tests hold every level to (Tests/SmeltQuantTests/NativeQuantKernelTests).
#include "smelt_kernels.h"
#include "ggml_half.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF
#if defined(__clang__)
#pragma clang fp contract(off)
// The 16-lane helpers are always inlined: their vector-argument ABI never matters.
#pragma clang diagnostic ignored "-Wpsabi"
#endif

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint8_t vb __attribute__((vector_size(16)));

#define INL static inline __attribute__((always_inline))

INL vf splat(float f) { vf r; for (int i = 0; i < 16; i++) r[i] = f; return r; }
INL vi splati(int32_t v) { vi r; for (int i = 0; i < 16; i++) r[i] = v; return r; }
INL vf vzero(void) { return splat(0.0f); }
/// ggml's nearest_int on 16 lanes.
INL vi vnearest(vf f) { vf v = f + splat(12582912.0f); return ((vi)v & splati(0x007fffff)) - splati(0x00400000); }
/// m (all ones / zero per lane) ? a : b
INL vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
INL vi vseli(vi m, vi a, vi b) { return (a & m) | (b & ~m); }
INL vf vcvt(vi l) { return __builtin_convertvector(l, vf); }
INL vf vabs(vf v) { return (vf)((vi)v & splati(0x7fffffff)); }
INL vi vclamp(vi l, int32_t lo, int32_t hi) {
    l = vseli(l < splati(lo), splati(lo), l);
    return vseli(l > splati(hi), splati(hi), l);
}
INL vf vsqrt(vf v) {
#if __has_builtin(__builtin_elementwise_sqrt)
    return __builtin_elementwise_sqrt(v);
#else
    for (int i = 0; i < 16; i++) v[i] = sqrtf(v[i]);
    return v;
#endif
}
INL vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }

// MARK: - scalars (as ggml)

INL int32_t nearest_int_s(float f) {
    float v = f + 12582912.0f;
    int32_t i; memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

#define fp32_to_fp16 ggml_fp32_to_fp16   // ggml_half.h
#define fp16_to_fp32 ggml_fp16_to_fp32

INL void store_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
INL uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

// MARK: - q4_K / q5_K

/// make_qkx2_quants (strict: the max == min test) / make_qkx3_quants (max <= min), both
/// (n, nmax, x, weights, L, &min, Laux, rmin, rdelta, nstep, use_mad), for 16 (sub-)blocks
/// of n values at once (q4_K/q5_K: lanes 0–7 super-block A, 8–15 super-block B; q2_K: the
/// 16 sub-blocks of one super-block; q4_1/q5_1: 16 blocks). xt[i] holds value i of every
/// block; the quants of lane j go to L[n·j …]. Returns scale, stores −min.
INL vf make_qkx_x16(int n, int32_t nmax, const vf *xt, const vf *wt, vf *flt, uint8_t *L,
                    float rmin, float rdelta, int nstep, int strict, int use_mad, vf *the_min) {
    vf mn = xt[0], mx = xt[0], sumW = wt[0], sumX = sumW * xt[0];
    for (int i = 1; i < n; i++) {
        vf xi = xt[i];
        mn = vsel(xi < mn, xi, mn);
        mx = vsel(xi > mx, xi, mx);
        vf w = wt[i];
        sumW = sumW + w;
        sumX = sumX + w * xi;
    }
    mn = vsel(mn > vzero(), vzero(), mn);
    const vi flat = strict ? (mx == mn) : (mx <= mn);
    const vf iscale0 = splat((float)nmax) / (mx - mn);
    vf scale = splat(1.0f) / iscale0;
    vf best = vzero(), win_iscale = iscale0, win_min = mn;
    for (int i = 0; i < n; i++) {
        vf xi = xt[i];
        vi l = vclamp(vnearest(iscale0 * (xi - mn)), 0, nmax);
        vf diff = scale * vcvt(l) + mn - xi;
        best = best + wt[i] * (use_mad ? vabs(diff) : diff * diff);
    }
    for (int step = 0; step <= nstep; step++) {
        const float num = rmin + rdelta * (float)step + (float)nmax;
        const vf iscale = splat(num) / (mx - mn);
        vf sumL = vzero(), sumL2 = vzero(), sumXL = vzero();
        for (int i = 0; i < n; i++) {
            vf xi = xt[i];
            vf fl = vcvt(vclamp(vnearest(iscale * (xi - mn)), 0, nmax));
            flt[i] = fl;
            vf wfl = wt[i] * fl;
            sumL = sumL + wfl;
            sumL2 = sumL2 + wfl * fl;
            sumXL = sumXL + wfl * xi;
        }
        const vf D = sumW * sumL2 - sumL * sumL;
        vf this_scale = (sumW * sumXL - sumX * sumL) / D;
        vf this_min = (sumL2 * sumX - sumL * sumXL) / D;
        const vi pos = this_min > vzero();
        this_min = vsel(pos, vzero(), this_min);
        this_scale = vsel(pos, sumXL / sumL2, this_scale);
        vf cur = vzero();
        for (int i = 0; i < n; i++) {
            vf diff = this_scale * flt[i] + this_min - xt[i];
            cur = cur + wt[i] * (use_mad ? vabs(diff) : diff * diff);
        }
        const vi win = (D > vzero()) & (cur < best) & ~flat;
        best = vsel(win, cur, best);
        scale = vsel(win, this_scale, scale);
        win_iscale = vsel(win, iscale, win_iscale);
        win_min = vsel(win, mn, win_min);
        mn = vsel(win, this_min, mn);
    }
    for (int i = 0; i < n; i++) {
        vi l = vclamp(vnearest(win_iscale * (xt[i] - win_min)), 0, nmax);
        l = vseli(flat, splati(0), l);
        for (int j = 0; j < 16; j++) L[n * j + i] = (uint8_t)l[j];
    }
    *the_min = -mn;
    return vsel(flat, vzero(), scale);
}

INL void pack_scale_min_k4(uint8_t *y, int j, uint8_t ls, uint8_t lm) {
    if (j < 4) { y[j] = ls; y[j + 4] = lm; }
    else {
        y[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        y[j - 4] |= (uint8_t)((ls >> 4) << 6);
        y[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

INL void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) { *d = q[j] & 63; *m = q[j + 4] & 63; }
    else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/// Requantizes a super-block with its stored 6-bit scales and mins (sub-blocks with a zero
/// scale keep the search's quants, as in ggml) and packs the quants (q4_K / q5_K layout).
INL void requant_pack_k45(int32_t nmax, const float *x, uint8_t *y, uint8_t *L) {
    const uint8_t *s = y + 4;
    const float d_all = fp16_to_fp32(load_u16(y)), m_all = fp16_to_fp32(load_u16(y + 2));
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, s, &sc, &m);
        const float d = d_all * (float)sc;
        if (d == 0) continue;
        const float dm = m_all * (float)m;
        for (int ii = 0; ii < 32; ii++) {
            int32_t l = nearest_int_s((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : (l > nmax ? nmax : l));
        }
    }
    if (nmax == 15) {
        uint8_t *q = y + 16;
        for (int j = 0; j < 256; j += 64) {
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
    } else {
        uint8_t *qh = y + 16, *ql = y + 48;
        memset(qh, 0, 32);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < 256; n += 64) {
            for (int j = 0; j < 32; j++) {
                uint8_t l1 = L[n + j];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                uint8_t l2 = L[n + j + 32];
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 <<= 2; m2 <<= 2;
            ql += 32;
        }
    }
}

/// The rest of quantize_row_q4_K_ref / q5_K_ref for one super-block, given the sub-block
/// scales and mins from the search and its quants in L.
INL void finish_k45(int32_t nmax, const float *x, uint8_t *y, const float *scales, const float *mins, uint8_t *L) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t *s = y + 4;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest_int_s(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int_s(inv_min * mins[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        pack_scale_min_k4(s, j, ls, lm);
    }
    store_u16(y, fp32_to_fp16(max_scale / 63.f));
    store_u16(y + 2, fp32_to_fp16(max_min / 63.f));
    requant_pack_k45(nmax, x, y, L);
}

/// ggml's make_qp_quants: non-negative quants in 0…nmax (uint8_t, C's wrap-around),
/// weighted by qw; returns the scale.
static float make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw) {
    float max = 0;
    for (int i = 0; i < n; i++) max = max > x[i] ? max : x[i];
    if (max < 1e-15f) { memset(L, 0, (size_t)n); return 0; }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)nearest_int_s(iscale * x[i]);
    const float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - scale * (float)L[i];
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        const float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            int32_t l = nearest_int_s(iscale_is * x[i]);
            if (l > nmax) l = nmax;
            const float diff = x[i] - scale_is * (float)l;
            mse += qw[i] * diff * diff;
        }
        if (mse < best_mse) { best_mse = mse; iscale = iscale_is; }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int32_t l = nearest_int_s(iscale * x[i]);
        if (l > nmax) l = nmax;
        L[i] = (uint8_t)l;
        const float w = qw[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = qw[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            if (slx > 0 && sl2 > 0) {
                int32_t new_l = nearest_int_s(x[i] * sl2 / slx);
                if (new_l > nmax) new_l = nmax;
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0 ? sumlx / suml2 : 0;
}

/// quantize_row_q4_K_impl / q5_K_impl with importance weights qw, two super-blocks at a time.
INL void row_k45_weighted(const float *src, const float *qw, uint8_t *dst, int64_t count, int32_t nmax) {
    const int block_bytes = nmax == 15 ? 144 : 176;
    const int64_t nb = count / 256;
    vf xt[32], wt[32], flt[32];
    uint8_t L[512];
    float sw[16];
    for (int64_t ib = 0; ib < nb; ib += 2) {
        const int64_t ib2 = ib + 1 < nb ? ib + 1 : ib;
        for (int h = 0; h < 2; h++) {
            const int64_t b = h == 0 ? ib : ib2;
            const float *x = src + b * 256, *q = qw + b * 256;
            float sum_x2 = 0;
            for (int l = 0; l < 256; l++) sum_x2 += x[l] * x[l];
            const float sigma2 = 2 * sum_x2 / 256;
            for (int j = 0; j < 8; j++) {
                float sumw = 0;
                for (int l = 0; l < 32; l++) {
                    const float xv = x[32 * j + l];
                    const float w = q[32 * j + l] * sqrtf(sigma2 + xv * xv);
                    xt[l][8 * h + j] = xv;
                    wt[l][8 * h + j] = w;
                    sumw += w;
                }
                sw[8 * h + j] = sumw;
            }
        }
        vf mins;
        const vf scales = make_qkx_x16(32, nmax, xt, wt, flt, L, -0.9f, 0.05f, 36, 0, 0, &mins);
        float sc[16], mi[16];
        memcpy(sc, &scales, sizeof sc);
        memcpy(mi, &mins, sizeof mi);
        for (int h = 0; h < (ib2 != ib ? 2 : 1); h++) {
            const int64_t b = h == 0 ? ib : ib2;
            uint8_t *y = dst + b * block_bytes;
            uint8_t Ls[8], Lm[8];
            const float d_block = make_qp_quants(8, 63, sc + 8 * h, Ls, sw + 8 * h);
            const float m_block = make_qp_quants(8, 63, mi + 8 * h, Lm, sw + 8 * h);
            for (int j = 0; j < 8; j++) {
                uint8_t ls = Ls[j], lm = Lm[j];
                if (nmax == 31) { if (ls > 63) ls = 63; if (lm > 63) lm = 63; }  // q5_K clamps, q4_K does not
                pack_scale_min_k4(y + 4, j, ls, lm);
            }
            store_u16(y, fp32_to_fp16(d_block));
            store_u16(y + 2, fp32_to_fp16(m_block));
            requant_pack_k45(nmax, src + b * 256, y, L + 256 * h);
        }
    }
}

/// quantize_row_q4_K_ref (nmax 15) / quantize_row_q5_K_ref (nmax 31), two super-blocks at a time.
INL void row_k45(const float *src, uint8_t *dst, int64_t count, int32_t nmax) {
    const int block_bytes = nmax == 15 ? 144 : 176;
    const int64_t nb = count / 256;
    vf xt[32], wt[32], flt[32];
    uint8_t L[512];
    for (int64_t ib = 0; ib < nb; ib += 2) {
        const int64_t ib2 = ib + 1 < nb ? ib + 1 : ib;  // an odd last super-block is computed twice
        const float *xa = src + ib * 256, *xb = src + ib2 * 256;
        for (int i = 0; i < 32; i++) {
            vf v;
            for (int j = 0; j < 8; j++) { v[j] = xa[32 * j + i]; v[8 + j] = xb[32 * j + i]; }
            xt[i] = v;
        }
        vf sum_x2 = vzero();
        for (int l = 0; l < 32; l++) sum_x2 = sum_x2 + xt[l] * xt[l];
        const vf av_x = vsqrt(sum_x2 / splat(32.0f));
        for (int l = 0; l < 32; l++) wt[l] = av_x + vabs(xt[l]);
        vf mins;
        const vf scales = nmax == 15 ? make_qkx_x16(32, 15, xt, wt, flt, L, -1.0f, 0.1f, 20, 1, 0, &mins)
                                     : make_qkx_x16(32, 31, xt, wt, flt, L, -0.5f, 0.1f, 15, 1, 0, &mins);
        float sc[16], mi[16];
        memcpy(sc, &scales, sizeof sc);
        memcpy(mi, &mins, sizeof mi);
        finish_k45(nmax, xa, dst + ib * block_bytes, sc, mi, L);
        if (ib2 != ib) finish_k45(nmax, xb, dst + ib2 * block_bytes, sc + 8, mi + 8, L + 256);
    }
}

// MARK: - q6_K

/// make_qx_quants(n, nmax, x, L, 1, qw) for 16 (sub-)blocks at once (q6_K: the 16
/// sub-blocks of a super-block, n 16, nmax 32; q3_K with weights: n 16, nmax 4; q4_0/q5_0
/// with weights: 16 blocks, n 32, nmax 8/16). wt NULL: weights x², as ggml without qw.
/// Quants (+nmax) of lane b go to L[n·b …]; returns the scales.
INL vf make_qx_x16(int n, int32_t nmax, const vf *xt, const vf *wt, int8_t *L) {
    vf mx = vzero(), amax = vzero();
    for (int i = 0; i < n; i++) {
        vf xi = xt[i], ax = vabs(xi);
        vi m = ax > amax;
        amax = vsel(m, ax, amax);
        mx = vsel(m, xi, mx);
    }
    const vi flat = amax < splat(1e-15f);
    const vf iscale0 = splat((float)-nmax) / mx;
    vf sumlx = vzero(), suml2 = vzero();
    for (int i = 0; i < n; i++) {
        vf xi = xt[i];
        vf fl = vcvt(vclamp(vnearest(iscale0 * xi), -nmax, nmax - 1));
        vf w = wt ? wt[i] : xi * xi;
        sumlx = sumlx + w * xi * fl;
        suml2 = suml2 + w * fl * fl;
    }
    vf scale = vsel(suml2 == vzero(), vzero(), sumlx / suml2);
    vf best = scale * sumlx, win_iscale = iscale0;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        const float num = -((float)nmax + 0.1f * (float)is);
        const vf iscale = splat(num) / mx;
        vf slx = vzero(), sl2 = vzero();
        for (int i = 0; i < n; i++) {
            vf xi = xt[i];
            vf fl = vcvt(vclamp(vnearest(iscale * xi), -nmax, nmax - 1));
            vf w = wt ? wt[i] : xi * xi;
            slx = slx + w * xi * fl;
            sl2 = sl2 + w * fl * fl;
        }
        const vi win = (sl2 > vzero()) & (slx * slx > best * sl2) & ~flat;
        const vf sc = slx / sl2;
        scale = vsel(win, sc, scale);
        best = vsel(win, sc * slx, best);
        win_iscale = vsel(win, iscale, win_iscale);
    }
    for (int i = 0; i < n; i++) {
        vi l = vclamp(vnearest(win_iscale * xt[i]), -nmax, nmax - 1) + splati(nmax);
        l = vseli(flat, splati(0), l);
        for (int b = 0; b < 16; b++) L[n * b + i] = (int8_t)l[b];
    }
    return vsel(flat, vzero(), scale);
}

/// quantize_row_q6_K_ref (qw NULL) / quantize_row_q6_K_impl with importance weights qw.
INL void row_q6_K(const float *src, const float *qw, uint8_t *dst, int64_t count) {
    vf xt[16], wt[16];
    int8_t L[256];
    for (int64_t ib = 0; ib < count / 256; ib++) {
        const float *x = src + ib * 256;
        uint8_t *y = dst + ib * 210;
        for (int i = 0; i < 16; i++) {
            vf v;
            for (int b = 0; b < 16; b++) v[b] = x[16 * b + i];
            xt[i] = v;
            if (qw) {
                for (int b = 0; b < 16; b++) v[b] = qw[ib * 256 + 16 * b + i];
                wt[i] = v;
            }
        }
        const vf sv = qw ? make_qx_x16(16, 32, xt, wt, L) : make_qx_x16(16, 32, xt, NULL, L);
        float scales[16];
        memcpy(scales, &sv, sizeof scales);
        float max_scale = 0, max_abs_scale = 0;
        for (int b = 0; b < 16; b++) {
            const float a = fabsf(scales[b]);
            if (a > max_abs_scale) { max_abs_scale = a; max_scale = scales[b]; }
        }
        if (max_abs_scale < 1e-15f) {
            memset(y, 0, 210);
            store_u16(y + 208, fp32_to_fp16(0.f));
            continue;
        }
        const float iscale = -128.f / max_scale;
        store_u16(y + 208, fp32_to_fp16(1 / iscale));
        int8_t *sc = (int8_t *)(y + 192);
        for (int b = 0; b < 16; b++) {
            int32_t v = nearest_int_s(iscale * scales[b]);
            sc[b] = (int8_t)(v < 127 ? v : 127);
        }
        const float d_all = fp16_to_fp32(load_u16(y + 208));
        for (int j = 0; j < 16; j++) {
            const float d = d_all * (float)sc[j];
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ii++) {
                int32_t l = nearest_int_s(x[16 * j + ii] / d);
                l = l < -32 ? -32 : (l > 31 ? 31 : l);
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y, *qh = y + 128;
        const uint8_t *U = (const uint8_t *)L;
        for (int j = 0; j < 256; j += 128) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = U[j + l] & 0xF, q2 = U[j + l + 32] & 0xF;
                const uint8_t q3 = U[j + l + 64] & 0xF, q4 = U[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((U[j + l] >> 4) | ((U[j + l + 32] >> 4) << 2) | ((U[j + l + 64] >> 4) << 4)
                                  | ((U[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}

// MARK: - q8_0 / q4_0

INL float hmax16(vf m) {
    float a = m[0];
    for (int j = 1; j < 16; j++) if (m[j] > a) a = m[j];
    return a;
}

/// Lanes set in m (all ones or zero), as bits.
INL uint32_t lane_bits(vi m) {
    vi bit;
    for (int j = 0; j < 16; j++) bit[j] = 1 << j;
    const vi b = m & bit;
#if __has_builtin(__builtin_reduce_or)
    return (uint32_t)__builtin_reduce_or(b);
#else
    uint32_t r = 0;
    for (int j = 0; j < 16; j++) r |= (uint32_t)b[j];
    return r;
#endif
}

/// Bit j set where lane j of b equals v.
INL uint32_t equal_mask16(vf b, float v) { return lane_bits(b == splat(v)); }

/// The first of a block's 32 values (lanes a0[0…15], then a1[0…15]) with the largest magnitude,
/// as ggml's `if (amax < fabsf(v))` scan finds it (0 when all are ±0): the lowest set bit of the
/// mask of lanes whose magnitude equals the maximum.
INL float first_absmax(vf a0, vf a1) {
    const vf b0 = vabs(a0), b1 = vabs(a1);
    const float amax = hmax16(vsel(b1 > b0, b1, b0));
    if (amax > 0) {
        const uint32_t m = equal_mask16(b0, amax) | equal_mask16(b1, amax) << 16;
        if (m != 0) {
            const int j = __builtin_ctz(m);
            return j < 16 ? a0[j] : a1[j - 16];
        }
    }
    return 0;
}

/// bf16 values p[0…15] as float32 (exact: the bits shifted into the high half).
typedef uint16_t vh __attribute__((vector_size(32)));
typedef uint32_t vu __attribute__((vector_size(64)));
INL vf vload_bf16(const uint16_t *p) {
    vh h;
    memcpy(&h, p, sizeof h);
    const vu w = __builtin_convertvector(h, vu) << 16;
    vf f;
    memcpy(&f, &w, sizeof f);
    return f;
}



/// quantize_row_q8_0_ref: amax (order-free for finite data), then roundf(x·id) done as
/// round-half-even plus a tie fix. Returns 1, leaving the row unfinished, when it holds a
/// NaN or an infinity (ggml's result then depends on its order: the caller redoes the row).
/// `src` float32, or `srch` bf16 when not NULL (the fused path: no float32 copy).
INL int row_q8_0_from(const float *src, const uint16_t *srch, uint8_t *dst, int64_t count) {
    vf poison = vzero();
    const vf half = splat(0.5f), mhalf = splat(-0.5f);
    for (int64_t ib = 0; ib < count / 32; ib++) {
        uint8_t *y = dst + ib * 34;
        const vf a0 = srch ? vload_bf16(srch + ib * 32) : vload(src + ib * 32);
        const vf a1 = srch ? vload_bf16(srch + ib * 32 + 16) : vload(src + ib * 32 + 16);
        poison = poison + (a0 - a0) + (a1 - a1);
        const vf b0 = vabs(a0), b1 = vabs(a1);
        const float amax = hmax16(vsel(b1 > b0, b1, b0));
        const float d = amax / 127;
        const float id = d != 0 ? 1 / d : 0;
        store_u16(y, fp32_to_fp16(d));
        const vf idv = splat(id);
        for (int k = 0; k < 2; k++) {
            const vf x0 = (k == 0 ? a0 : a1) * idv;
            vi n = vnearest(x0);
            const vf diff = x0 - vcvt(n);
            n = n - ((diff == half) & (x0 > vzero()));   // masks are −1: subtracting adds one
            n = n + ((diff == mhalf) & (x0 < vzero()));
            const vb q = __builtin_convertvector(n, vb);
            memcpy(y + 2 + 16 * k, &q, 16);
        }
    }
    for (int j = 0; j < 16; j++) if (poison[j] != 0) return 1;  // NaN lanes compare unequal too
    return 0;
}

/// quantize_row_q4_0_ref: max is the first value of largest magnitude, quants
/// min(15, (int8_t)(x·id + 8.5)) with the truncation done as an exact floor (argument ≥ 0).
/// Returns 1 (row unfinished) when the row holds a NaN or an infinity, or when a block's
/// inverse scale overflows (a largest magnitude below about 3e-38: ggml's quants then come
/// from x86's out-of-range conversions).
/// `src` float32, or `srch` bf16 when not NULL (the fused path).
INL int row_q4_0_from(const float *src, const uint16_t *srch, uint8_t *dst, int64_t count) {
    vf poison = vzero();
    int bad = 0;
    for (int64_t ib = 0; ib < count / 32; ib++) {
        uint8_t *y = dst + ib * 18;
        const vf a0 = srch ? vload_bf16(srch + ib * 32) : vload(src + ib * 32);
        const vf a1 = srch ? vload_bf16(srch + ib * 32 + 16) : vload(src + ib * 32 + 16);
        poison = poison + (a0 - a0) + (a1 - a1);
        const float d = first_absmax(a0, a1) / -8;
        const float id = d != 0 ? 1 / d : 0;
        bad |= !(fabsf(id) <= 3.4028235e38f);
        store_u16(y, fp32_to_fp16(d));
        const vf idv = splat(id), h = splat(8.5f);
        vi q[2];
        for (int k = 0; k < 2; k++) {
            const vf v = (k == 0 ? a0 : a1) * idv + h;
            vi n = vnearest(v);
            n = n + (vcvt(n) > v);  // floor (mask −1 where rounding went up)
            q[k] = vseli(n > splati(15), splati(15), n);
        }
        const vb packed = __builtin_convertvector(q[0] | (q[1] << 4), vb);
        memcpy(y + 2, &packed, 16);
    }
    for (int j = 0; j < 16; j++) if (poison[j] != 0) return 1;  // NaN lanes compare unequal too
    return bad;
}

INL int row_q8_0(const float *src, uint8_t *dst, int64_t count) { return row_q8_0_from(src, NULL, dst, count); }
INL int row_q4_0(const float *src, uint8_t *dst, int64_t count) { return row_q4_0_from(src, NULL, dst, count); }

/// `rows` rows of `n` bf16 values (row stride `n`) straight into q8_0 / q4_0 rows; returns the
/// index of the first row left unfinished (see row_q8_0 / row_q4_0), or `rows`: rows after it
/// are not done.
INL int64_t rows_bf16_q8_0(const uint16_t *src, uint8_t *dst, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; r++) {
        if (row_q8_0_from(NULL, src + r * n, dst + r * (n / 32) * 34, n)) return r;
    }
    return rows;
}
INL int64_t rows_bf16_q4_0(const uint16_t *src, uint8_t *dst, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; r++) {
        if (row_q4_0_from(NULL, src + r * n, dst + r * (n / 32) * 18, n)) return r;
    }
    return rows;
}

// MARK: - iq4_nl / iq4_xs

static const float kvalues_iq4nl_f[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/// best_index_int8(16, kvalues_iq4nl, x) on 16 lanes without branches: ml = the number of
/// table entries 1…14 with !(x < v) (ggml's binary search ends there, NaN included), then
/// the nearer of v[ml], v[ml+1] (the lower on ties, as ggml). Sets *q to the chosen value.
INL vi iq4_index(vf x, vf *q) {
    vi ml = splati(0);
    vf lo = splat(kvalues_iq4nl_f[0]), hi = splat(kvalues_iq4nl_f[1]);
    for (int j = 1; j < 15; j++) {
        const vi m = ~(x < splat(kvalues_iq4nl_f[j]));
        ml = ml - m;
        lo = vsel(m, splat(kvalues_iq4nl_f[j]), lo);
        hi = vsel(m, splat(kvalues_iq4nl_f[j + 1]), hi);
    }
    const vi pick_lo = (x - lo) < (hi - x);
    *q = vsel(pick_lo, lo, hi);
    return vseli(pick_lo, ml, ml + splati(1));
}

/// The scale search of quantize_row_iq4_nl_impl (ntry 7) for 16 blocks of 32 values at
/// once: xt[j] holds value j of every block, wt[j] its weight. Returns the block scales
/// (0 for a block whose largest magnitude is below GROUP_MAX_EPS).
INL vf iq4_search_x16(const vf *xt, const vf *wt) {
    vf amax = vzero(), mx = vzero();
    for (int j = 0; j < 32; j++) {
        const vf ax = vabs(xt[j]);
        const vi m = ax > amax;
        amax = vsel(m, ax, amax);
        mx = vsel(m, xt[j], mx);
    }
    const vi flat = amax < splat(1e-15f);
    vf d = (-mx) / splat(kvalues_iq4nl_f[0]);
    vf id = splat(1.0f) / d;
    vf sumqx = vzero(), sumq2 = vzero(), q;
    for (int j = 0; j < 32; j++) {
        (void)iq4_index(id * xt[j], &q);
        const vf w = wt[j];
        sumqx = sumqx + w * q * xt[j];
        sumq2 = sumq2 + w * q * q;
    }
    d = vsel(sumq2 > vzero(), sumqx / sumq2, vzero());
    vf best = d * sumqx;
    for (int itry = -7; itry <= 7; itry++) {
        id = splat((float)(itry - 127)) / mx;
        sumqx = vzero(); sumq2 = vzero();
        for (int j = 0; j < 32; j++) {
            (void)iq4_index(id * xt[j], &q);
            const vf w = wt[j];
            sumqx = sumqx + w * q * xt[j];
            sumq2 = sumq2 + w * q * q;
        }
        const vi win = (sumq2 > vzero()) & (sumqx * sumqx > best * sumq2);
        const vf dn = sumqx / sumq2;
        d = vsel(win, dn, d);
        best = vsel(win, dn * sumqx, best);
    }
    return vsel(flat, vzero(), d);
}

/// Indices of 32 values x·id into kvalues_iq4nl, packed as iq4 nibbles (16 bytes).
INL void iq4_pack32(const float *x, float id, uint8_t *q4) {
    vf q;
    const vi l0 = iq4_index(vload(x) * splat(id), &q);
    const vi l1 = iq4_index(vload(x + 16) * splat(id), &q);
    const vb packed = __builtin_convertvector(l0 | (l1 << 4), vb);
    memcpy(q4, &packed, 16);
}

/// quantize_iq4_nl (super = 32) / quantize_iq4_xs (super = 256), with importance weights
/// qw (count entries) or without (NULL): 16 blocks of 32 values side by side.
INL void row_iq4(const float *src, const float *qw, uint8_t *dst, int64_t count, int super) {
    const int64_t nblk = count / 32;
    const int per = super / 32;  // blocks per super-block
    vf xt[32], wt[32];
    for (int64_t b0 = 0; b0 < nblk; b0 += 16) {
        float sigma2 = 0;
        int64_t sigma_sb = -1;
        for (int k = 0; k < 16; k++) {
            const int64_t blk = b0 + k < nblk ? b0 + k : nblk - 1;  // past the end: a copy, discarded
            const int64_t sb = blk / per;
            if (sb != sigma_sb) {
                const float *xs = src + sb * super;
                sigma2 = 0;
                for (int j = 0; j < super; j++) sigma2 += xs[j] * xs[j];
                sigma2 *= 2.0f / (float)super;
                sigma_sb = sb;
            }
            const float *xb = src + blk * 32;
            for (int j = 0; j < 32; j++) {
                xt[j][k] = xb[j];
                wt[j][k] = qw ? qw[blk * 32 + j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
            }
        }
        const vf sv = iq4_search_x16(xt, wt);
        float scales[16];
        memcpy(scales, &sv, sizeof scales);
        if (per == 1) {
            for (int k = 0; k < 16 && b0 + k < nblk; k++) {
                uint8_t *y = dst + (b0 + k) * 18;
                store_u16(y, fp32_to_fp16(scales[k]));
                const float id = scales[k] != 0 ? 1 / scales[k] : 0;
                iq4_pack32(src + (b0 + k) * 32, id, y + 2);
            }
            continue;
        }
        for (int h = 0; h < 16 / per && b0 + h * per < nblk; h++) {
            const int64_t sb = (b0 + h * per) / per;
            const float *x = src + sb * super, *sc = scales + h * per;
            uint8_t *y = dst + sb * (2 + 2 + per / 2 + super / 2);
            float max_scale = 0, amax_scale = 0;
            for (int ib = 0; ib < per; ib++) {
                const float a = fabsf(sc[ib]);
                if (a > amax_scale) { amax_scale = a; max_scale = sc[ib]; }
            }
            const float d = -max_scale / 32;
            store_u16(y, fp32_to_fp16(d));
            const float id = d != 0 ? 1 / d : 0;
            uint8_t *scales_l = y + 4, *q4 = y + 4 + per / 2;
            uint16_t sh = 0;
            for (int ib = 0; ib < per; ib++) {
                int32_t l = nearest_int_s(id * sc[ib]);
                l = l < -32 ? -32 : (l > 31 ? 31 : l);
                const float dl = d * (float)l;
                const float idl = dl != 0 ? 1 / dl : 0;
                iq4_pack32(x + 32 * ib, idl, q4 + 16 * ib);
                l += 32;
                const uint8_t ll = (uint8_t)(l & 0xf);
                if (ib % 2 == 0) scales_l[ib / 2] = ll; else scales_l[ib / 2] |= (uint8_t)(ll << 4);
                sh |= (uint16_t)((l >> 4) << (2 * (ib % 8)));
            }
            store_u16(y + 2, sh);
        }
    }
}
INL void iq4nl(const float *x, const float *qw, uint8_t *y, int64_t n) { row_iq4(x, qw, y, n, 32); }
INL void iq4xs(const float *x, const float *qw, uint8_t *y, int64_t n) { row_iq4(x, qw, y, n, 256); }

// MARK: - shared helpers of q2_K, q3_K and the legacy types

typedef int8_t vsb __attribute__((vector_size(16)));

INL float hmin16(vf m) {
    float a = m[0];
    for (int j = 1; j < 16; j++) if (m[j] < a) a = m[j];
    return a;
}

/// xt[i][k] = value i of block min(first + k, last), blocks of n values from base: lane k
/// holds one block; lanes past `last` repeat it (computed, never written).
INL void lanes_load(vf *xt, int n, const float *base, int64_t first, int64_t last) {
    for (int k = 0; k < 16; k++) {
        const float *p = base + (first + k < last ? first + k : last) * n;
        for (int i = 0; i < n; i++) xt[i][k] = p[i];
    }
}

/// The importance weights of ggml's *_impl paths, qw·sqrtf(sigma2 + x²), laid out as xt.
INL void lanes_weights(vf *wt, const vf *xt, int n, const float *qw, int64_t first, int64_t last, float sigma2) {
    lanes_load(wt, n, qw, first, last);
    for (int i = 0; i < n; i++) wt[i] = wt[i] * vsqrt(splat(sigma2) + xt[i] * xt[i]);
}

/// Σ x² in ggml's (sequential) order.
INL float sum_sq(const float *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}

/// Lanes to bytes (C's wrap-around) and back.
INL void store_lanes_u8(uint8_t *p, vi l) { const vb q = __builtin_convertvector(l, vb); memcpy(p, &q, 16); }
INL vi load_lanes_i8(const int8_t *p) { vsb q; memcpy(&q, p, 16); return __builtin_convertvector(q, vi); }

/// The 2-bit quants of q2_K / q3_K: four per byte, strided by 32.
INL void pack_2bit_k(uint8_t *qs, const uint8_t *L) {
    for (int j = 0; j < 256; j += 128) {
        for (int h = 0; h < 32; h += 16) {
            vb a, b, c, d;
            memcpy(&a, L + j + h, 16); memcpy(&b, L + j + h + 32, 16);
            memcpy(&c, L + j + h + 64, 16); memcpy(&d, L + j + h + 96, 16);
            const vb q = a | (b << 2) | (c << 4) | (d << 6);
            memcpy(qs + j / 4 + h, &q, 16);
        }
    }
}

/// q3_K's 16 6-bit scales (given as 0…63) in its 12-byte layout, and back (−32…31).
INL void pack_scale_q3k(uint8_t *s, int j, uint8_t l) {
    if (j < 8) s[j] = l & 0xF;
    else s[j - 8] |= (uint8_t)((l & 0xF) << 4);
    l >>= 4;
    s[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
}
INL int scale_q3k(const uint8_t *s, int j) {
    const uint8_t lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    const uint8_t hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (int8_t)(lo | (hi << 4)) - 32;
}

/// make_qx_quants(n, nmax, x, L, 1, qw) for one block, scalar, its 18 scale trials
/// computed side by side in lanes (each depends only on the block's max) and then
/// accepted or rejected one by one in ggml's order. Quants (+nmax) to L; returns the scale.
static float make_qx_scalar(int n, int32_t nmax, const float *x, int8_t *L, const float *qw) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < 1e-15f) { memset(L, 0, (size_t)n); return 0; }
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int32_t l = nearest_int_s(iscale * x[i]);
        l = l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l);
        L[i] = (int8_t)(l + nmax);
        const float w = qw[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0;
    float best = scale * sumlx;
    vf isc[2], slx[2] = {vzero(), vzero()}, sl2[2] = {vzero(), vzero()};
    for (int t = 0; t < 32; t++) {
        const int is = t < 9 ? t - 9 : (t < 18 ? t - 8 : 1);
        isc[t / 16][t % 16] = -((float)nmax + 0.1f * (float)is) / max;
    }
    for (int i = 0; i < n; i++) {
        const float wx = qw[i] * x[i];
        for (int h = 0; h < 2; h++) {
            const vf fl = vcvt(vclamp(vnearest(isc[h] * splat(x[i])), -nmax, nmax - 1));
            slx[h] = slx[h] + splat(wx) * fl;
            sl2[h] = sl2[h] + splat(qw[i]) * fl * fl;
        }
    }
    for (int t = 0; t < 18; t++) {
        const float sx = slx[t / 16][t % 16], s2 = sl2[t / 16][t % 16];
        if (s2 > 0 && sx * sx > best * s2) {
            const float it = isc[t / 16][t % 16];
            for (int i = 0; i < n; i++) {
                int32_t l = nearest_int_s(it * x[i]);
                L[i] = (int8_t)(nmax + (l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l)));
            }
            scale = sx / s2;
            best = scale * sx;
        }
    }
    return scale;
}

// MARK: - q2_K / q3_K

/// The end of quantize_row_q2_K_ref / _impl: requantizes each sub-block with its stored
/// scale and min (a zero scale keeps the search's quants) and packs the quants.
INL void finish_q2_K(const float *x, uint8_t *y, uint8_t *L) {
    const float d_all = fp16_to_fp32(load_u16(y + 80)), m_all = fp16_to_fp32(load_u16(y + 82));
    for (int j = 0; j < 16; j++) {
        const float d = d_all * (float)(y[j] & 0xF);
        if (d == 0) continue;
        const float dm = m_all * (float)(y[j] >> 4);
        store_lanes_u8(L + 16 * j, vclamp(vnearest((vload(x + 16 * j) + splat(dm)) / splat(d)), 0, 3));
    }
    pack_2bit_k(y + 16, L);
}

/// quantize_row_q2_K_ref (qw NULL: make_qkx2_quants with |x| weights and absolute errors) /
/// quantize_row_q2_K_impl (make_qkx3_quants, then make_qp_quants for scales and mins); the
/// 16 sub-blocks of a super-block side by side.
INL void row_q2_K(const float *src, const float *qw, uint8_t *dst, int64_t count) {
    vf xt[16], wt[16], flt[16], mv, sv;
    uint8_t L[256];
    float scales[16], mins[16];
    for (int64_t ib = 0; ib < count / 256; ib++) {
        const float *x = src + ib * 256;
        uint8_t *y = dst + ib * 84;
        lanes_load(xt, 16, x, 0, 15);
        if (!qw) {
            for (int i = 0; i < 16; i++) wt[i] = vabs(xt[i]);
            sv = make_qkx_x16(16, 3, xt, wt, flt, L, -0.5f, 0.1f, 15, 1, 1, &mv);
            memcpy(scales, &sv, sizeof scales);
            memcpy(mins, &mv, sizeof mins);
            float max_scale = 0, max_min = 0;
            for (int j = 0; j < 16; j++) {
                if (scales[j] > max_scale) max_scale = scales[j];
                if (mins[j] > max_min) max_min = mins[j];
            }
            if (max_scale > 0) {
                const float iscale = 15.f / max_scale;
                for (int j = 0; j < 16; j++) y[j] = (uint8_t)nearest_int_s(iscale * scales[j]);
                store_u16(y + 80, fp32_to_fp16(max_scale / 15.f));
            } else {
                memset(y, 0, 16);
                store_u16(y + 80, fp32_to_fp16(0.f));
            }
            if (max_min > 0) {
                const float iscale = 15.f / max_min;
                for (int j = 0; j < 16; j++) y[j] = (uint8_t)(y[j] | (nearest_int_s(iscale * mins[j]) << 4));
                store_u16(y + 82, fp32_to_fp16(max_min / 15.f));
            } else {
                store_u16(y + 82, fp32_to_fp16(0.f));
            }
        } else {
            lanes_weights(wt, xt, 16, qw + ib * 256, 0, 15, sum_sq(x, 256) / 256);
            vf swv = vzero();
            for (int l = 0; l < 16; l++) swv = swv + wt[l];
            sv = make_qkx_x16(16, 3, xt, wt, flt, L, -0.9f, 0.05f, 36, 0, 0, &mv);
            float sw[16];
            memcpy(scales, &sv, sizeof scales);
            memcpy(mins, &mv, sizeof mins);
            memcpy(sw, &swv, sizeof sw);
            uint8_t Ls[16], Lm[16];
            store_u16(y + 80, fp32_to_fp16(make_qp_quants(16, 15, scales, Ls, sw)));
            store_u16(y + 82, fp32_to_fp16(make_qp_quants(16, 15, mins, Lm, sw)));
            for (int j = 0; j < 16; j++) y[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
        }
        finish_q2_K(x, y, L);
    }
}

/// make_q3_quants(16, nmax 4, x, L, do_rmse true) for the 16 sub-blocks of a q3_K
/// super-block. ggml stops a block's refinement after a pass without change; a lane whose
/// pass changed nothing would change nothing again, so all lanes run until none changes.
INL vf make_q3_x16(const vf *xt, int8_t *L) {
    const int32_t nmax = 4;
    vf mx = vzero(), amax = vzero();
    for (int i = 0; i < 16; i++) {
        const vf ax = vabs(xt[i]);
        const vi m = ax > amax;
        amax = vsel(m, ax, amax);
        mx = vsel(m, xt[i], mx);
    }
    const vi flat = amax < splat(1e-15f);
    const vf iscale = splat((float)-nmax) / mx;
    vi l[16];
    vf sumlx = vzero(), suml2 = vzero();
    for (int i = 0; i < 16; i++) {
        l[i] = vclamp(vnearest(iscale * xt[i]), -nmax, nmax - 1);
        const vf w = xt[i] * xt[i], fl = vcvt(l[i]);
        sumlx = sumlx + w * xt[i] * fl;
        suml2 = suml2 + w * fl * fl;
    }
    for (int itry = 0; itry < 5; itry++) {
        vi changed = splati(0);
        for (int i = 0; i < 16; i++) {
            const vf xi = xt[i], w = xi * xi, fli = vcvt(l[i]);
            const vf slx0 = sumlx - w * xi * fli, sl20 = suml2 - w * fli * fli;
            const vi nl = vclamp(vnearest(xi * sl20 / slx0), -nmax, nmax - 1);
            const vf fn = vcvt(nl);
            const vf slx = slx0 + w * xi * fn, sl2 = sl20 + w * fn * fn;
            const vi take = (slx0 > vzero()) & (nl != l[i]) & (sl2 > vzero())
                            & (slx * slx * suml2 > sumlx * sumlx * sl2);
            l[i] = vseli(take, nl, l[i]);
            sumlx = vsel(take, slx, sumlx);
            suml2 = vsel(take, sl2, suml2);
            changed = changed | take;
        }
        int any = 0;
        for (int b = 0; b < 16; b++) any |= changed[b];
        if (!any) break;
    }
    for (int i = 0; i < 16; i++) {
        const vi q = vseli(flat, splati(0), l[i] + splati(nmax));
        for (int b = 0; b < 16; b++) L[16 * b + i] = (int8_t)q[b];
    }
    return vsel(flat | ~(suml2 > vzero()), vzero(), sumlx / suml2);
}

/// The end of quantize_row_q3_K_ref / _impl: requantizes with the stored scales (a zero
/// scale keeps the search's quants), splits off the high bits (hmask) and packs the rest.
INL void finish_q3_K(const float *x, uint8_t *y, const int8_t *L) {
    const float d_all = fp16_to_fp32(load_u16(y + 108));
    uint8_t Lu[256];
    vi hm[2] = {splati(0), splati(0)};
    for (int j = 0; j < 16; j++) {
        const float d = d_all * (float)scale_q3k(y + 96, j);
        vi l = d == 0 ? load_lanes_i8(L + 16 * j) : vclamp(vnearest(vload(x + 16 * j) / splat(d)), -4, 3) + splati(4);
        const vi high = l > splati(3);
        hm[j % 2] = hm[j % 2] | (high & splati(1 << (j / 2)));
        store_lanes_u8(Lu + 16 * j, l - (high & splati(4)));
    }
    store_lanes_u8(y, hm[0]);
    store_lanes_u8(y + 16, hm[1]);
    pack_2bit_k(y + 32, Lu);
}

/// quantize_row_q3_K_ref (qw NULL: make_q3_quants) / quantize_row_q3_K_impl (weighted
/// make_qx_quants per sub-block, then once more for the scales).
INL void row_q3_K(const float *src, const float *qw, uint8_t *dst, int64_t count) {
    vf xt[16], wt[16], sv;
    int8_t L[256];
    float scales[16];
    for (int64_t ib = 0; ib < count / 256; ib++) {
        const float *x = src + ib * 256;
        uint8_t *y = dst + ib * 110, *s = y + 96;
        lanes_load(xt, 16, x, 0, 15);
        memset(s, 0, 12);
        if (!qw) {
            sv = make_q3_x16(xt, L);
            memcpy(scales, &sv, sizeof scales);
            float max_scale = 0, amax = 0;
            for (int j = 0; j < 16; j++) {
                const float a = fabsf(scales[j]);
                if (a > amax) { amax = a; max_scale = scales[j]; }
            }
            if (max_scale != 0) {
                const float iscale = -32.f / max_scale;
                for (int j = 0; j < 16; j++) {
                    int8_t l = (int8_t)nearest_int_s(iscale * scales[j]);
                    l = (int8_t)((l < -32 ? -32 : (l > 31 ? 31 : l)) + 32);
                    pack_scale_q3k(s, j, (uint8_t)l);
                }
                store_u16(y + 108, fp32_to_fp16(1 / iscale));
            } else {
                store_u16(y + 108, fp32_to_fp16(0.f));
            }
        } else {
            lanes_weights(wt, xt, 16, qw + ib * 256, 0, 15, 2 * sum_sq(x, 256) / 256);
            vf swv = vzero();
            for (int l = 0; l < 16; l++) swv = swv + wt[l];
            sv = make_qx_x16(16, 4, xt, wt, L);
            float sw[16];
            memcpy(scales, &sv, sizeof scales);
            memcpy(sw, &swv, sizeof sw);
            int8_t Ls[16];
            const float d_block = make_qx_scalar(16, 32, scales, Ls, sw);
            for (int j = 0; j < 16; j++) pack_scale_q3k(s, j, (uint8_t)Ls[j]);
            store_u16(y + 108, fp32_to_fp16(d_block));
        }
        finish_q3_K(x, y, L);
    }
}

// MARK: - q4_1, q5_0, q5_1 (and q4_0 with importance weights)

enum { LEGACY_Q4_0, LEGACY_Q4_1, LEGACY_Q5_0, LEGACY_Q5_1 };
INL int legacy_bytes(int type) { return type == LEGACY_Q4_0 ? 18 : type == LEGACY_Q4_1 ? 20 : type == LEGACY_Q5_0 ? 22 : 24; }
INL int legacy_has_min(int type) { return type == LEGACY_Q4_1 || type == LEGACY_Q5_1; }

/// Bit 4 of lane j, as bit j.
INL uint32_t bit4_mask(vi l) { return lane_bits(-((l >> 4) & splati(1))); }

/// Writes one block: d, the min m (q4_1, q5_1) and the quants, values 0–15 in lanes l0 and
/// 16–31 in l1 (low nibbles; q5 also the 5th bits as qh).
INL void pack_legacy(int type, uint8_t *y, float d, float m, vi l0, vi l1) {
    store_u16(y, fp32_to_fp16(d));
    if (legacy_has_min(type)) store_u16(y + 2, fp32_to_fp16(m));
    uint8_t *qs = y + (legacy_has_min(type) ? 4 : 2);
    if (type == LEGACY_Q5_0 || type == LEGACY_Q5_1) {
        const uint32_t qh = bit4_mask(l0) | (bit4_mask(l1) << 16);
        for (int i = 0; i < 4; i++) qs[i] = (uint8_t)(qh >> (8 * i));
        qs += 4;
    }
    store_lanes_u8(qs, (l0 & splati(0x0F)) | ((l1 & splati(0x0F)) << 4));
}

/// 16 quants (bytes) into lanes.
INL vi load_lanes_u8(const uint8_t *p) { vb q; memcpy(&q, p, 16); return __builtin_convertvector(q, vi); }

/// quantize_row_q4_0/q4_1/q5_0/q5_1_impl with importance weights (sigma2 the row's mean
/// square): make_qx_quants (q4_0 nmax 8, q5_0 16) or make_qkx3_quants (q4_1 15, q5_1 31)
/// on 16 blocks of 32 side by side.
INL void row_legacy_weighted(const float *src, const float *qw, uint8_t *dst, int64_t count, int type) {
    const int32_t nmax = type == LEGACY_Q4_0 ? 8 : type == LEGACY_Q4_1 ? 15 : type == LEGACY_Q5_0 ? 16 : 31;
    const int64_t nb = count / 32;
    const float sigma2 = sum_sq(src, count) / (float)count;
    vf xt[32], wt[32], flt[32], sv, mv = vzero();
    uint8_t L[512];
    float d[16], m[16];
    for (int64_t b0 = 0; b0 < nb; b0 += 16) {
        lanes_load(xt, 32, src, b0, nb - 1);
        lanes_weights(wt, xt, 32, qw, b0, nb - 1, sigma2);
        if (legacy_has_min(type)) sv = make_qkx_x16(32, nmax, xt, wt, flt, L, -0.9f, 0.05f, 36, 0, 0, &mv);
        else sv = make_qx_x16(32, nmax, xt, wt, (int8_t *)L);
        mv = -mv;  // make_qkx3_quants returns −min; the block stores min
        memcpy(d, &sv, sizeof d);
        memcpy(m, &mv, sizeof m);
        for (int k = 0; k < 16 && b0 + k < nb; k++) {
            pack_legacy(type, dst + (b0 + k) * legacy_bytes(type), d[k], m[k], load_lanes_u8(L + 32 * k),
                        load_lanes_u8(L + 32 * k + 16));
        }
    }
}

/// The first x[j] equal to v (which is in x): ggml's scans keep the first extreme, which
/// only matters for the sign of a zero.
INL float first_equal(const float *x, float v) {
    if (v != 0) return v;
    for (int j = 0; j < 32; j++) if (x[j] == v) return x[j];
    return v;
}

/// quantize_row_q4_1_ref / q5_0_ref / q5_1_ref. Returns 1 (row unfinished) when the row
/// holds a NaN or an infinity or a block's range or inverse scale overflows (ggml's bytes
/// then come from x86's out-of-range conversions: the caller takes its scalar kernel).
INL int row_legacy_ref(const float *src, uint8_t *dst, int64_t count, int type) {
    vf poison = vzero();
    int bad = 0;
    for (int64_t ib = 0; ib < count / 32; ib++) {
        const float *x = src + ib * 32;
        uint8_t *y = dst + ib * legacy_bytes(type);
        const vf a[2] = {vload(x), vload(x + 16)};
        poison = poison + (a[0] - a[0]) + (a[1] - a[1]);
        float d, id, m = 0;
        vf off, base;
        if (type == LEGACY_Q5_0) {
            d = first_absmax(a[0], a[1]) / -16;
            base = vzero();
            off = splat(16.5f);
        } else {
            m = first_equal(x, hmin16(vsel(a[1] < a[0], a[1], a[0])));
            const float mx = first_equal(x, hmax16(vsel(a[1] > a[0], a[1], a[0])));
            bad |= !(mx - m <= 3.4028235e38f);
            d = (mx - m) / (type == LEGACY_Q4_1 ? 15 : 31);
            base = splat(m);
            off = splat(0.5f);
        }
        id = d != 0 ? 1 / d : 0;
        bad |= !(fabsf(id) <= 3.4028235e38f);
        vi l[2];
        for (int h = 0; h < 2; h++) {
            l[h] = __builtin_convertvector((a[h] - base) * splat(id) + off, vi);  // truncation; ≥ 0 here
            if (type == LEGACY_Q4_1) l[h] = vseli(l[h] > splati(15), splati(15), l[h]);
            if (type == LEGACY_Q5_0) l[h] = vseli(l[h] > splati(31), splati(31), l[h]);
        }
        pack_legacy(type, y, d, m, l[0], l[1]);
    }
    for (int j = 0; j < 16; j++) if (poison[j] != 0) return 1;  // NaN lanes compare unequal too
    return bad;
}

INL int q41(const float *x, const float *qw, uint8_t *y, int64_t n) {
    if (qw) { row_legacy_weighted(x, qw, y, n, LEGACY_Q4_1); return 0; }
    return row_legacy_ref(x, y, n, LEGACY_Q4_1);
}
INL int q50(const float *x, const float *qw, uint8_t *y, int64_t n) {
    if (qw) { row_legacy_weighted(x, qw, y, n, LEGACY_Q5_0); return 0; }
    return row_legacy_ref(x, y, n, LEGACY_Q5_0);
}
INL int q51(const float *x, const float *qw, uint8_t *y, int64_t n) {
    if (qw) { row_legacy_weighted(x, qw, y, n, LEGACY_Q5_1); return 0; }
    return row_legacy_ref(x, y, n, LEGACY_Q5_1);
}
INL void q40w(const float *x, const float *qw, uint8_t *y, int64_t n) { row_legacy_weighted(x, qw, y, n, LEGACY_Q4_0); }

// MARK: - grid iq types (iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s)

// The grids and neighbour maps come from SmeltQuant (IQGridTables, built as ggml's
// iq2xs_init_impl / iq3xs_init_impl do). The per-group neighbour search is the hot spot:
// its candidates are independent, so 16 of them share the lanes, each lane summing its
// weighted squared error over the group's values in ggml's order; the first minimum wins
// as in ggml's `if (d2 < best_d2)` loop. The rest follows ggml's code value by value.

#define IQK 256

INL int32_t iclamp(int32_t v, int32_t lo, int32_t hi) { int32_t m = hi < v ? hi : v; return lo > m ? lo : m; }
INL float fmaxc(float a, float b) { return a > b ? a : b; }

/// The smallest of 16 lanes (no NaN among them).
INL float vmin16(vf v) {
    v = vsel(v < __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7), v,
             __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
    v = vsel(v < __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11), v,
             __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
    v = vsel(v < __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13), v,
             __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
    const float a = v[0], b = v[1];
    return b < a ? b : a;
}

/// iq2_find_best_neighbour (dim 8) / iq3_find_best_neighbour (dim 4) for the neighbour list at
/// `off`: writes the levels of the neighbour with the least weighted squared error at `scale`
/// to L, returns its index. The candidates' points are contiguous in T->points, so 16 of them
/// load as whole vectors (4 or 8 bytes per lane).
INL int iq_best_neighbour(const smelt_iq_grid *T, int off, int dim, const float *xval, const float *w,
                          float scale, int8_t *L, int lstride) {
    const uint16_t *nb = T->neighbours + off;
    const int8_t *pts = T->points + dim * (off + 1);
    const int num = nb[0];
    float best = 3.40282347e38f;
    int gi = -1;
    const vf vs = splat(scale);
    vi iota;
    for (int l = 0; l < 16; l++) iota[l] = l;
    for (int j0 = 0; j0 < num; j0 += 16) {
        vi lo, hi = splati(0);
        if (dim == 8) {
            vi a, b;
            memcpy(&a, pts + 8 * j0, 64);
            memcpy(&b, pts + 8 * j0 + 64, 64);
            lo = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            hi = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        } else {
            memcpy(&lo, pts + 4 * j0, 64);
        }
        vf d2 = vzero();
        for (int i = 0; i < dim; i++) {
            const vi src = i < 4 ? lo : hi;
            const vf q = vcvt((src >> (8 * (i & 3))) & splati(0xff));
            const vf diff = vs * q - splat(xval[i]);
            d2 = d2 + splat(w[i]) * diff * diff;
        }
        // NaN and padding lanes never win (ggml's `<` is false for NaN).
        d2 = vsel((d2 == d2) & (iota < splati(num - j0)), d2, splat(INFINITY));
        const float mn = vmin16(d2);
        if (mn < best) {
            best = mn;
            gi = nb[1 + j0 + __builtin_ctz(lane_bits(d2 == splat(mn)))];
        }
    }
    if (gi < 0) gi = nb[1];   // only with non-finite input (ggml asserts)
    const int8_t *pg = T->grid + dim * gi;
    for (int i = 0; i < dim; i++) L[lstride * i] = (int8_t)((pg[i] - 1) >> 1);   // coordinates are 2l+1 ≥ 1
    return gi;
}

INL int iq_nb(const smelt_iq_grid *T, int u) { return -T->map[u] - 1; }

/// |x| of 8 values; an odd count of negatives flips the least important one back (7 sign bits).
INL uint8_t iq_even_signs(const float *xb, const float *weight, float *xval) {
    int nflip = 0;
    uint8_t s = 0;
    for (int i = 0; i < 8; i++) {
        if (xb[i] >= 0) xval[i] = xb[i];
        else { xval[i] = -xb[i]; nflip++; s |= (uint8_t)(1 << i); }
    }
    if (nflip % 2) {
        int imin = 0;
        float mn = weight[0] * xb[0] * xb[0];
        for (int i = 1; i < 8; i++) {
            const float ax = weight[i] * xb[i] * xb[i];
            if (ax < mn) { mn = ax; imin = i; }
        }
        xval[imin] = -xval[imin];
        s ^= (uint8_t)(1 << imin);
    }
    return s & 127;
}

typedef int8_t vs8 __attribute__((vector_size(16)));

/// ggml's trial-scale loop of the grid searches: trials is = −nis…nis with inverse scale
/// id = (2·kmaxq − 1 + is·step) / div, each giving levels for the ng groups (off-grid groups
/// replaced by their best neighbour at 1/id) and the sums Σ w·x·q, Σ w·q²; a trial is taken
/// when sumqx² > best·sumq2, in trial order. The trials are independent until that decision,
/// so 16 of them share the lanes (per lane ggml's operations in ggml's order); the decisions
/// then run in order. Updates *scale, *best, L and on_grid (when not NULL) as ggml's loop does.
INL void iq_trials(const smelt_iq_grid *T, int dim, int bits, int ng, int32_t kmaxq, int nis, float step, float div,
                   const float *xval, const float *weight, const float *waux, int8_t *L, uint8_t *on_grid,
                   float *scale_io, float *best_io) {
    const int n = dim * ng, nt = 2 * nis + 1;
    int8_t lt[32 * 16];          // level of value i in trial lane t at 16·i + t
    uint8_t on[16 * 8];          // group k of lane t on the grid
    float scale = *scale_io, best = *best_io;
    vi iota;
    for (int l = 0; l < 16; l++) iota[l] = l;
    for (int t0 = 0; t0 < nt; t0 += 16) {
        const vf is = vcvt(iota + splati(t0 - nis));
        const vf id = (splat((float)(2 * kmaxq - 1)) + is * splat(step)) / splat(div);
        const vf this_scale = splat(1.0f) / id;
        vi u[8];
        for (int k = 0; k < ng; k++) u[k] = splati(0);
        for (int i = 0; i < n; i++) {
            const vi l = vclamp(vnearest(splat(0.5f) * (id * splat(xval[i]) - splat(1.0f))), 0, kmaxq - 1);
            const vs8 l8 = __builtin_convertvector(l, vs8);
            memcpy(lt + 16 * i, &l8, 16);
            u[i / dim] = u[i / dim] | (l << (bits * (i % dim)));
        }
        const int lanes = nt - t0 < 16 ? nt - t0 : 16;
        for (int t = 0; t < lanes; t++) {
            for (int k = 0; k < ng; k++) {
                const int uk = u[k][t];
                on[8 * t + k] = T->map[uk] >= 0;
                if (!on[8 * t + k])
                    iq_best_neighbour(T, iq_nb(T, uk), dim, xval + dim * k, waux + dim * k, this_scale[t],
                                      lt + 16 * dim * k + t, 16);
            }
        }
        vf sumqx = vzero(), sumq2 = vzero();
        for (int i = 0; i < n; i++) {
            vs8 l8;
            memcpy(&l8, lt + 16 * i, 16);
            const vf q = vcvt(splati(2) * __builtin_convertvector(l8, vi) + splati(1));
            const float w = weight[i];
            sumqx = sumqx + splat(w * xval[i]) * q;
            sumq2 = sumq2 + splat(w) * q * q;
        }
        int take = -1;
        for (int t = 0; t < lanes; t++) {
            if (sumq2[t] > 0 && sumqx[t] * sumqx[t] > best * sumq2[t]) {
                scale = sumqx[t] / sumq2[t]; best = scale * sumqx[t];
                take = t;
            }
        }
        if (take >= 0) {
            for (int i = 0; i < n; i++) L[i] = lt[16 * i + take];
            if (on_grid) for (int k = 0; k < ng; k++) on_grid[k] = on[8 * take + k];
        }
    }
    *scale_io = scale; *best_io = best;
}

/// Σ w·x·q and Σ w·q² with q = 2L+1, in ggml's order.
INL void iq_sums(int n, const float *weight, const float *xval, const int8_t *L, float *sqx, float *sq2) {
    float sumqx = 0, sumq2 = 0;
    for (int i = 0; i < n; i++) {
        const float w = weight[i], q = (float)(2 * (int32_t)L[i] + 1);
        sumqx += w * xval[i] * q;
        sumq2 += w * q * q;
    }
    *sqx = sumqx; *sq2 = sumq2;
}

/// Packed level vector of a group (bits per level) → grid index (on the grid; ggml aborts otherwise).
INL int iq_index(const smelt_iq_grid *T, const int8_t *L, int dim, int bits) {
    int u = 0;
    for (int i = 0; i < dim; i++) u |= (int)L[i] << (bits * i);
    const int32_t g = T->map[u];
    return g > 0 ? g : 0;
}

/// Final pass over groups after the scale search (ggml re-derives the off-grid groups, or all
/// when `all`), then the refined scale.
INL float iq_refine(const smelt_iq_grid *T, int dim, int bits, int ng, int32_t kmaxq, float scale, const float *xval,
                    const float *weight, const float *waux, int8_t *L, const uint8_t *on_grid, int all) {
    const float id = 1 / scale;
    for (int k = 0; k < ng; k++) {
        if (!all && on_grid[k]) continue;
        int u = 0;
        for (int i = 0; i < dim; i++) {
            const int32_t l = iclamp(nearest_int_s(0.5f * (id * xval[dim * k + i] - 1)), 0, kmaxq - 1);
            u |= l << (bits * i);
            if (dim == 8) L[dim * k + i] = (int8_t)l;
        }
        int gi = T->map[u];
        if (gi < 0) gi = iq_best_neighbour(T, iq_nb(T, u), dim, xval + dim * k, waux + dim * k, scale, L + dim * k, 1);
        const int8_t *pg = T->grid + dim * gi;
        for (int i = 0; i < dim; i++) L[dim * k + i] = (int8_t)((pg[i] - 1) >> 1);
    }
    float sumqx, sumq2;
    iq_sums(ng * dim, weight, xval, L, &sumqx, &sumq2);
    return sumq2 > 0 ? sumqx / sumq2 : scale;
}

INL void iq2xxs_block(const float *xbl, const float *qwbl, uint8_t *y, const smelt_iq_grid *T) {
    const int32_t kmaxq = 3;
    float scales[8], weight[32], xval[32], waux[32];
    int8_t L[32];
    uint8_t signs[4];
    uint32_t q2[16] = {0};
    store_u16(y, 0);
    float max_scale = 0, sumx2 = 0;
    for (int i = 0; i < IQK; i++) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = sumx2 / (float)IQK;
    for (int ib = 0; ib < IQK / 32; ib++) {
        const float *xb = xbl + 32 * ib, *qw = qwbl + 32 * ib;
        for (int i = 0; i < 32; i++) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
        for (int i = 0; i < 32; i++) waux[i] = sqrtf(weight[i]);
        for (int k = 0; k < 4; k++) signs[k] = iq_even_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k);
        float max = xval[0];
        for (int i = 1; i < 32; i++) max = fmaxc(max, xval[i]);
        if (max < 1e-15f) { scales[ib] = 0; memset(L, 0, 32); continue; }
        float scale = make_qp_quants(32, kmaxq + 1, xval, (uint8_t *)L, weight);
        const float eff_max = scale * (float)kmaxq;
        if (eff_max <= 0) { scales[ib] = 0; memset(L, 0, 32); continue; }
        float best = 0;
        iq_trials(T, 8, 2, 4, kmaxq, 6, 0.1f, eff_max, xval, weight, waux, L, NULL, &scale, &best);
        if (scale > 0) scale = iq_refine(T, 8, 2, 4, kmaxq, scale, xval, weight, waux, L, NULL, 1);
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 4; k++) signs[k] = (uint8_t)(~signs[k]) & 127;
        }
        for (int k = 0; k < 4; k++) {
            const uint32_t gi = (uint32_t)iq_index(T, L + 8 * k, 8, 2);
            q2[2 * ib + 0] |= gi << (8 * k);
            q2[2 * ib + 1] |= (uint32_t)signs[k] << (7 * k);
        }
        scales[ib] = scale;
        max_scale = fmaxc(max_scale, scale);
    }
    if (max_scale == 0) { memset(y + 2, 0, 64); return; }
    const float d = max_scale / 31;
    store_u16(y, fp32_to_fp16(d));
    const float id = 1 / d;
    for (int ib = 0; ib < IQK / 32; ib++) {
        const int32_t l = iclamp(nearest_int_s(0.5f * (id * scales[ib] - 1)), 0, 15);
        q2[2 * ib + 1] |= (uint32_t)l << 28;
    }
    for (int i = 0; i < 16; i++) for (int b = 0; b < 4; b++) y[2 + 4 * i + b] = (uint8_t)(q2[i] >> (8 * b));
}

/// The 16-value level search of iq2_xs and iq2_s (19 trial scales, two groups of 8);
/// returns 0 with *zero set when max(xval) < zero_below.
INL float iq2_search16(const float *xval, const float *weight, const float *waux, int8_t *L, const smelt_iq_grid *T,
                       float zero_below, int *zero) {
    const int32_t kmaxq = 3;
    uint8_t on_grid[2] = {1, 1};
    float max = xval[0];
    for (int i = 1; i < 16; i++) max = fmaxc(max, xval[i]);
    memset(L, 0, 16);
    if (max < zero_below) { *zero = 1; return 0; }
    *zero = 0;
    float best = 0, scale = max / (float)(2 * kmaxq - 1);
    iq_trials(T, 8, 2, 2, kmaxq, 9, 0.1f, max, xval, weight, waux, L, on_grid, &scale, &best);
    if ((!on_grid[0] || !on_grid[1]) && scale > 0)
        scale = iq_refine(T, 8, 2, 2, kmaxq, scale, xval, weight, waux, L, on_grid, 0);
    return scale;
}

INL void iq2xs_block(const float *xbl, const float *qwbl, uint8_t *y, const smelt_iq_grid *T) {
    float scales[16], weight[16], xval[16], waux[16];
    int8_t L[16];
    uint8_t signs[2];
    uint16_t q2[32] = {0};
    store_u16(y, 0);
    memset(y + 66, 0, 8);
    float max_scale = 0, sumx2 = 0;
    for (int i = 0; i < IQK; i++) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = sumx2 / (float)IQK;
    for (int ib = 0; ib < IQK / 16; ib++) {
        const float *xb = xbl + 16 * ib, *qw = qwbl + 16 * ib;
        for (int i = 0; i < 16; i++) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
        for (int i = 0; i < 16; i++) waux[i] = sqrtf(weight[i]);
        for (int k = 0; k < 2; k++) signs[k] = iq_even_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k);
        int zero;
        float scale = iq2_search16(xval, weight, waux, L, T, 1e-15f, &zero);
        if (zero) { scales[ib] = 0; continue; }
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 2; k++) signs[k] = (uint8_t)(~signs[k]) & 127;
        }
        for (int k = 0; k < 2; k++)
            q2[2 * ib + k] = (uint16_t)((uint16_t)iq_index(T, L + 8 * k, 8, 2) | ((uint16_t)signs[k] << 9));
        scales[ib] = scale;
        max_scale = fmaxc(max_scale, scale);
    }
    if (max_scale == 0) { memset(y + 2, 0, 64); return; }
    const float d = max_scale / 31;
    store_u16(y, fp32_to_fp16(d));
    const float id = 1 / d;
    for (int ib = 0; ib < IQK / 16; ib++) {
        const uint8_t l = (uint8_t)iclamp(nearest_int_s(0.5f * (id * scales[ib] - 1)), 0, 15);
        if (ib % 2 == 0) y[66 + ib / 2] = l; else y[66 + ib / 2] |= (uint8_t)(l << 4);
    }
    for (int i = 0; i < 32; i++) store_u16(y + 2 + 2 * i, q2[i]);
}

INL void iq2s_block(const float *xbl, const float *qwbl, uint8_t *y, const smelt_iq_grid *T) {
    float scales[16], weight[16], xval[16], waux[16];
    int8_t L[16];
    uint8_t signs[2];
    memset(y, 0, 82);
    float max_scale = 0, sumx2 = 0;
    for (int i = 0; i < IQK; i++) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / (float)IQK;
    for (int ib = 0; ib < IQK / 16; ib++) {
        const float *xb = xbl + 16 * ib;
        if (qwbl) {
            const float *qw = qwbl + 16 * ib;
            for (int i = 0; i < 16; i++) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
        } else {
            for (int i = 0; i < 16; i++) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
        }
        for (int i = 0; i < 16; i++) waux[i] = sqrtf(weight[i]);
        for (int k = 0; k < 2; k++) {
            uint8_t s = 0;
            for (int i = 0; i < 8; i++) {
                if (xb[8 * k + i] >= 0) xval[8 * k + i] = xb[8 * k + i];
                else { xval[8 * k + i] = -xb[8 * k + i]; s |= (uint8_t)(1 << i); }
            }
            signs[k] = s;
        }
        int zero;
        float scale = iq2_search16(xval, weight, waux, L, T, 1e-8f, &zero);
        if (zero) { scales[ib] = 0; continue; }
        if (scale < 0) { scale = -scale; signs[0] = (uint8_t)~signs[0]; signs[1] = (uint8_t)~signs[1]; }
        for (int k = 0; k < 2; k++) {
            const int gi = iq_index(T, L + 8 * k, 8, 2), i8 = 2 * ib + k;
            y[2 + i8] = (uint8_t)(gi & 255);
            y[66 + i8 / 4] |= (uint8_t)((gi >> 8) << (2 * (i8 % 4)));
            y[2 + IQK / 8 + i8] = signs[k];
        }
        scales[ib] = scale;
        max_scale = fmaxc(max_scale, scale);
    }
    if (max_scale == 0) return;
    const float d = max_scale / 31;
    store_u16(y, fp32_to_fp16(d * 0.9875f));
    const float id = 1 / d;
    for (int ib = 0; ib < IQK / 16; ib++) {
        const uint8_t l = (uint8_t)iclamp(nearest_int_s(0.5f * (id * scales[ib] - 1)), 0, 15);
        if (ib % 2 == 0) y[74 + ib / 2] = l; else y[74 + ib / 2] |= (uint8_t)(l << 4);
    }
}

/// The 32-value level search of iq3_xxs (31 trials, step 0.2, on-grid flags start true,
/// refine only off-grid groups) and iq3_s (19 trials, flags start false, refine all).
INL float iq3_search32(const float *xval, const float *weight, const float *waux, int8_t *L, const smelt_iq_grid *T,
                       float max, int is_s) {
    const int32_t kmaxq = 8;
    uint8_t on_grid[8];
    memset(on_grid, is_s ? 0 : 1, 8);
    float best = 0, scale = max / (float)(2 * kmaxq - 1);
    iq_trials(T, 4, 3, 8, kmaxq, is_s ? 9 : 15, 0.2f, max, xval, weight, waux, L, on_grid, &scale, &best);
    int n_not = 0;
    for (int k = 0; k < 8; k++) n_not += !on_grid[k];
    if (n_not > 0 && scale > 0) scale = iq_refine(T, 4, 3, 8, kmaxq, scale, xval, weight, waux, L, on_grid, is_s);
    return scale;
}

INL void iq3xxs_block(const float *xbl, const float *qwbl, uint8_t *y, const smelt_iq_grid *T) {
    float scales[8], weight[32], xval[32], waux[32];
    int8_t L[32];
    uint8_t signs[4], q3[96] = {0};
    store_u16(y, 0);
    float max_scale = 0, sumx2 = 0;
    for (int i = 0; i < IQK; i++) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / (float)IQK;
    for (int ib = 0; ib < IQK / 32; ib++) {
        const float *xb = xbl + 32 * ib;
        if (qwbl) {
            const float *qw = qwbl + 32 * ib;
            for (int i = 0; i < 32; i++) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
        } else {
            for (int i = 0; i < 32; i++) weight[i] = xb[i] * xb[i];
        }
        for (int i = 0; i < 32; i++) waux[i] = sqrtf(weight[i]);
        for (int k = 0; k < 4; k++) signs[k] = iq_even_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k);
        float max = xval[0];
        for (int i = 1; i < 32; i++) max = fmaxc(max, xval[i]);
        memset(L, 0, 32);
        if (max < 1e-8f) { scales[ib] = 0; continue; }
        float scale = iq3_search32(xval, weight, waux, L, T, max, 0);
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 4; k++) signs[k] = (uint8_t)(~signs[k]) & 127;
        }
        for (int k = 0; k < 8; k++) q3[8 * ib + k] = (uint8_t)iq_index(T, L + 4 * k, 4, 3);
        const uint32_t ss = (uint32_t)signs[0] | ((uint32_t)signs[1] << 7) | ((uint32_t)signs[2] << 14) | ((uint32_t)signs[3] << 21);
        for (int b = 0; b < 4; b++) q3[64 + 4 * ib + b] = (uint8_t)(ss >> (8 * b));
        scales[ib] = scale;
        max_scale = fmaxc(max_scale, scale);
    }
    if (max_scale == 0) { memset(y + 2, 0, 96); return; }
    const float d = max_scale / 31;
    store_u16(y, fp32_to_fp16(d * 1.0125f));
    const float id = 1 / d;
    for (int ib = 0; ib < IQK / 32; ib++) {
        const int32_t l = iclamp(nearest_int_s(0.5f * (id * scales[ib] - 1)), 0, 15);
        q3[64 + 4 * ib + 3] |= (uint8_t)(l << 4);
    }
    memcpy(y + 2, q3, 96);
}

INL void iq3s_block(const float *xbl, const float *qwbl, uint8_t *y, const smelt_iq_grid *T) {
    float scales[8], weight[32], xval[32], waux[32];
    int8_t L[32];
    uint8_t signs[4];
    memset(y, 0, 110);
    int qs = 2, sg = 74;   // ggml advances qs/signs only past blocks it does not skip
    float max_scale = 0, sumx2 = 0;
    for (int i = 0; i < IQK; i++) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / (float)IQK;
    for (int ib = 0; ib < IQK / 32; ib++) {
        const float *xb = xbl + 32 * ib;
        if (qwbl) {
            const float *qw = qwbl + 32 * ib;
            for (int i = 0; i < 32; i++) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
        } else {
            for (int i = 0; i < 32; i++) weight[i] = xb[i] * xb[i];
        }
        for (int i = 0; i < 32; i++) waux[i] = sqrtf(weight[i]);
        for (int k = 0; k < 4; k++) {
            uint8_t s = 0;
            for (int i = 0; i < 8; i++) {
                if (xb[8 * k + i] >= 0) xval[8 * k + i] = xb[8 * k + i];
                else { xval[8 * k + i] = -xb[8 * k + i]; s |= (uint8_t)(1 << i); }
            }
            signs[k] = s;
        }
        float max = xval[0];
        for (int i = 1; i < 32; i++) max = fmaxc(max, xval[i]);
        memset(L, 0, 32);
        if (max == 0) { scales[ib] = 0; continue; }
        float scale = iq3_search32(xval, weight, waux, L, T, max, 1);
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 4; k++) signs[k] = (uint8_t)~signs[k];
        }
        for (int k = 0; k < 8; k++) {
            const int gi = iq_index(T, L + 4 * k, 4, 3);
            y[qs + k] = (uint8_t)(gi & 255);
            y[66 + ib] |= (uint8_t)((gi >> 8) << k);
        }
        qs += 8;
        memcpy(y + sg, signs, 4);
        sg += 4;
        scales[ib] = scale;
        max_scale = fmaxc(max_scale, scale);
    }
    if (max_scale == 0) return;
    const float d = max_scale / 31;
    store_u16(y, fp32_to_fp16(d * 1.033f));
    const float id = 1 / d;
    for (int ib = 0; ib < IQK / 32; ib += 2) {
        const int32_t l1 = iclamp(nearest_int_s(0.5f * (id * scales[ib + 0] - 1)), 0, 15);
        const int32_t l2 = iclamp(nearest_int_s(0.5f * (id * scales[ib + 1] - 1)), 0, 15);
        y[106 + ib / 2] = (uint8_t)(l1 | (l2 << 4));
    }
}

/// iq1_find_best_neighbour2: the neighbour of an off-grid ternary group with the least weighted
/// squared error, values xg[level] at `scale`; 16 candidates per vector as in iq_best_neighbour.
/// Without a finite candidate ggml scans the whole grid (scalar here: only with NaN or inf).
INL int iq1_best_neighbour(const smelt_iq_grid *T, int off, int grid_size, const float *xval, const float *w,
                           float scale, const float *xg, int8_t *L) {
    const uint16_t *nb = T->neighbours + off;
    const int8_t *pts = T->points + 8 * (off + 1);
    const int num = nb[0];
    float best = 3.40282347e38f;
    int gi = -1;
    const vf vs = splat(scale);
    vi iota;
    for (int l = 0; l < 16; l++) iota[l] = l;
    for (int j0 = 0; j0 < num; j0 += 16) {
        vi a, b;
        memcpy(&a, pts + 8 * j0, 64);
        memcpy(&b, pts + 8 * j0 + 64, 64);
        const vi lo = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const vi hi = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        vf d2 = vzero();
        for (int i = 0; i < 8; i++) {
            const vi c = ((i < 4 ? lo : hi) >> (8 * (i & 3))) & splati(0xff);
            const vf q = vsel(c == splati(1), splat(xg[0]), vsel(c == splati(3), splat(xg[1]), splat(xg[2])));
            const vf diff = vs * q - splat(xval[i]);
            d2 = d2 + splat(w[i]) * diff * diff;
        }
        d2 = vsel((d2 == d2) & (iota < splati(num - j0)), d2, splat(INFINITY));
        const float mn = vmin16(d2);
        if (mn < best) {
            best = mn;
            gi = nb[1 + j0 + __builtin_ctz(lane_bits(d2 == splat(mn)))];
        }
    }
    if (gi < 0) {
        for (int g = 0; g < grid_size; g++) {
            const int8_t *pg = T->grid + 8 * g;
            float d2 = 0;
            for (int k = 0; k < 8; k++) {
                const float ww = w[k], q = xg[(pg[k] - 1) >> 1];
                const float diff = scale * q - xval[k];
                d2 += ww * diff * diff;
            }
            if (d2 < best) { best = d2; gi = g; }
        }
        if (gi < 0) gi = nb[1];
    }
    const int8_t *pg = T->grid + 8 * gi;
    for (int i = 0; i < 8; i++) L[i] = (int8_t)((pg[i] - 1) >> 1);
    return gi;
}

/// ggml's qsort of (value, index) pairs by value as glibc does it for 32 (stable).
INL void iq_sort_pairs(const float *xb, int n, float *val, int32_t *idx) {
    for (int j = 0; j < n; j++) { val[j] = xb[j]; idx[j] = j; }
    for (int j = 1; j < n; j++) {
        const float v = val[j];
        const int32_t ix = idx[j];
        int p = j;
        while (p > 0 && val[p - 1] > v) { val[p] = val[p - 1]; idx[p] = idx[p - 1]; p--; }
        val[p] = v; idx[p] = ix;
    }
}

/// quantize_row_iq1_s_impl, one super-block. The search over the two cut points (i1, i2) of the
/// sorted values runs 16 values of i2 per vector, both shifts; ggml's sequential decisions are
/// replayed only from the first lane whose test passes against the best at the vector's start
/// (until something is taken the best does not change, so earlier lanes are rejected as in ggml).
INL void iq1s_block(const float *xbl, const float *qwbl, uint8_t *y, const smelt_iq_grid *T) {
    enum { BS = 32 };
    const float delta = 0.125f;
    const float xp[3] = {-1 + delta, delta, 1 + delta}, xm[3] = {-1 - delta, -delta, 1 - delta};
    float scales[8], weight[BS], val[BS], sumx[BS + 1 + 16], sumw[BS + 1 + 16];
    int32_t idx[BS];
    int8_t L[BS], shifts[8];
    uint16_t index[4];
    memset(y, 0, 50);
    memset(sumx, 0, sizeof sumx); memset(sumw, 0, sizeof sumw);
    float max_scale = 0, sumx2 = 0;
    for (int i = 0; i < IQK; i++) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / (float)IQK;
    vi iota;
    for (int l = 0; l < 16; l++) iota[l] = l;
    for (int ib = 0; ib < IQK / BS; ib++) {
        const float *xb = xbl + BS * ib, *qw = qwbl + BS * ib;
        for (int i = 0; i < BS; i++) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
        float max = fabsf(xb[0]);
        for (int i = 1; i < BS; i++) max = fmaxc(max, fabsf(xb[i]));
        if (max < 1e-12f) { scales[ib] = 0; shifts[ib] = 1; continue; }
        iq_sort_pairs(xb, BS, val, idx);
        sumx[0] = 0; sumw[0] = 0;
        for (int j = 0; j < BS; j++) {
            const int i = idx[j];
            sumx[j + 1] = sumx[j] + weight[i] * xb[i];
            sumw[j + 1] = sumw[j] + weight[i];
        }
        float best = -3.40282347e38f, scale = max;
        int besti1 = -1, besti2 = -1, best_shift = 0;
        const float sx_all = sumx[BS], sw_all = sumw[BS];
        for (int i1 = 0; i1 <= BS; i1++) {
            const float ax = sumx[i1] - sumx[0], aw = sumw[i1] - sumw[0];
            for (int c0 = i1; c0 <= BS; c0 += 16) {
                const vf sx2 = vload(sumx + c0), sw2 = vload(sumw + c0);
                const vf bx = sx2 - splat(sumx[i1]), cx = splat(sx_all) - sx2;
                const vf bw = sw2 - splat(sumw[i1]), cw = splat(sw_all) - sw2;
                const vf qxp = (splat(ax * xp[0]) + bx * splat(xp[1])) + cx * splat(xp[2]);
                const vf q2p = (splat(aw * xp[0] * xp[0]) + bw * splat(xp[1]) * splat(xp[1])) + cw * splat(xp[2]) * splat(xp[2]);
                const vf qxm = (splat(ax * xm[0]) + bx * splat(xm[1])) + cx * splat(xm[2]);
                const vf q2m = (splat(aw * xm[0] * xm[0]) + bw * splat(xm[1]) * splat(xm[1])) + cw * splat(xm[2]) * splat(xm[2]);
                const vi inside = iota < splati(BS + 1 - c0);
                const vi pass = inside & (((q2p > vzero()) & (qxp * qxp > splat(best) * q2p)) |
                                          ((q2m > vzero()) & (qxm * qxm > splat(best) * q2m)));
                uint32_t bits = lane_bits(pass);
                if (!bits) continue;
                const int lanes = BS + 1 - c0 < 16 ? BS + 1 - c0 : 16;
                for (int l = __builtin_ctz(bits); l < lanes; l++) {
                    if (q2p[l] > 0 && qxp[l] * qxp[l] > best * q2p[l]) {
                        scale = qxp[l] / q2p[l]; best = scale * qxp[l];
                        besti1 = i1; besti2 = c0 + l; best_shift = 1;
                    }
                    if (q2m[l] > 0 && qxm[l] * qxm[l] > best * q2m[l]) {
                        scale = qxm[l] / q2m[l]; best = scale * qxm[l];
                        besti1 = i1; besti2 = c0 + l; best_shift = -1;
                    }
                }
            }
        }
        if (besti1 < 0 || besti2 < 0 || best_shift == 0) { scales[ib] = 0; shifts[ib] = 1; continue; }
        for (int j = 0; j < besti1; j++) L[idx[j]] = 0;
        for (int j = besti1; j < besti2; j++) L[idx[j]] = 1;
        for (int j = besti2; j < BS; j++) L[idx[j]] = 2;
        if (scale < 0) {
            for (int j = 0; j < BS; j++) L[j] = (int8_t)(2 - L[j]);
            scale = -scale; best_shift = -best_shift;
        }
        int all_on_grid = 1;
        const float *xx = best_shift == 1 ? xp : xm;
        for (int k = 0; k < BS / 8; k++) {
            int u = 0;
            for (int j = 0; j < 8; j++) u |= (int)L[8 * k + j] << (2 * j);
            int gi = T->map[u];
            if (gi < 0) {
                all_on_grid = 0;
                gi = iq1_best_neighbour(T, -gi - 1, 2048, xb + 8 * k, weight + 8 * k, scale, xx, L + 8 * k);
            }
            index[k] = (uint16_t)gi;
        }
        if (!all_on_grid) {
            float sumqx = 0, sumq2 = 0;
            for (int k = 0; k < BS / 8; k++) {
                const int8_t *pg = T->grid + 8 * index[k];
                for (int j = 0; j < 8; j++) {
                    const float w = weight[8 * k + j], q = xx[(pg[j] - 1) >> 1];
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
            if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
        }
        uint16_t h = 0;
        for (int k = 0; k < BS / 8; k++) {
            y[2 + (BS / 8) * ib + k] = (uint8_t)(index[k] & 255);
            h |= (uint16_t)((index[k] >> 8) << (3 * k));
        }
        store_u16(y + 34 + 2 * ib, h);
        scales[ib] = scale;
        shifts[ib] = (int8_t)best_shift;
        max_scale = fmaxc(max_scale, scale);
    }
    if (max_scale == 0) return;
    const float d = max_scale / 15;
    store_u16(y, fp32_to_fp16(d * 1.125f));
    const float id = 1 / d;
    for (int ib = 0; ib < IQK / BS; ib++) {
        int32_t l = iclamp(nearest_int_s(0.5f * (id * scales[ib] - 1)), 0, 7);
        if (shifts[ib] == -1) l |= 8;
        store_u16(y + 34 + 2 * ib, (uint16_t)(load_u16(y + 34 + 2 * ib) | (uint16_t)(l << 12)));
    }
}

INL void iq1m_weights(const float *xb, const float *qw, float sigma2, float *weight) {
    if (qw) { for (int i = 0; i < 16; i++) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]); }
    else { for (int i = 0; i < 16; i++) weight[i] = xb[i] * xb[i]; }
}

/// quantize_row_iq1_m_impl, one super-block. The 153 cut-point pairs (i1 ≤ i2) in ggml's loop
/// order, 16 per vector, each lane summing the four shift combinations (the two groups of 8
/// each ±1/8) over the 16 sorted values in ggml's order; decisions replayed in order from the
/// first lane that passes against the best at the vector's start.
INL void iq1m_block(const float *xbl, const float *qwbl, uint8_t *y, const smelt_iq_grid *T) {
    enum { BS = 16 };
    const float delta = 0.125f;
    const float xp[3] = {-1 + delta, delta, 1 + delta}, xm[3] = {-1 - delta, -delta, 1 - delta};
    static const uint8_t masks[4] = {0x00, 0x80, 0x08, 0x88};
    float scales[16], weight[BS], val[BS];
    float ta[BS][3], tb[BS][3], tqa[BS][3], tqb[BS][3];
    int32_t idx[BS];
    int8_t L[BS], shifts[16];
    uint16_t index[2];
    memset(y, 0, 56);
    float max_scale = 0, sumx2 = 0;
    for (int i = 0; i < IQK; i++) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / (float)IQK;
    vi iota;
    for (int l = 0; l < 16; l++) iota[l] = l;
    enum { NPAIRS_USED = (BS + 1) * (BS + 2) / 2, NPAIRS = (NPAIRS_USED + 15) / 16 * 16 };
    int32_t pi1[NPAIRS], pi2[NPAIRS];
    int np = 0;
    for (int i1 = 0; i1 <= BS; i1++) for (int i2 = i1; i2 <= BS; i2++) { pi1[np] = i1; pi2[np] = i2; np++; }
    for (; np < NPAIRS; np++) { pi1[np] = BS; pi2[np] = BS; }
    for (int ib = 0; ib < IQK / BS; ib++) {
        const float *xb = xbl + BS * ib;
        iq1m_weights(xb, qwbl ? qwbl + BS * ib : NULL, sigma2, weight);
        float max = fabsf(xb[0]);
        for (int i = 1; i < BS; i++) max = fmaxc(max, fabsf(xb[i]));
        if (max < 1e-7f) { scales[ib] = 0; shifts[ib] = 0; continue; }
        iq_sort_pairs(xb, BS, val, idx);
        for (int j = 0; j < BS; j++) {
            const int i = idx[j];
            const float w = weight[i];
            for (int g = 0; g < 3; g++) {
                ta[j][g] = w * xp[g] * xb[i]; tb[j][g] = w * xm[g] * xb[i];
                tqa[j][g] = w * xp[g] * xp[g]; tqb[j][g] = w * xm[g] * xm[g];
            }
        }
        float best = -3.40282347e38f, scale = max;
        int besti1 = -1, besti2 = -1, best_k = -1;
        for (int c0 = 0; c0 < NPAIRS; c0 += 16) {
            vi v1, v2;
            memcpy(&v1, pi1 + c0, 64);
            memcpy(&v2, pi2 + c0, 64);
            vf qx[4], q2[4];
            for (int k = 0; k < 4; k++) { qx[k] = vzero(); q2[k] = vzero(); }
            for (int j = 0; j < BS; j++) {
                const vi m0 = splati(j) < v1, m1 = splati(j) < v2;   // g = 0, 1 or 2
                const vf a = vsel(m0, splat(ta[j][0]), vsel(m1, splat(ta[j][1]), splat(ta[j][2])));
                const vf b = vsel(m0, splat(tb[j][0]), vsel(m1, splat(tb[j][1]), splat(tb[j][2])));
                const vf qa = vsel(m0, splat(tqa[j][0]), vsel(m1, splat(tqa[j][1]), splat(tqa[j][2])));
                const vf qb = vsel(m0, splat(tqb[j][0]), vsel(m1, splat(tqb[j][1]), splat(tqb[j][2])));
                if (idx[j] < BS / 2) {
                    qx[0] = qx[0] + a; qx[1] = qx[1] + a; qx[2] = qx[2] + b; qx[3] = qx[3] + b;
                    q2[0] = q2[0] + qa; q2[1] = q2[1] + qa; q2[2] = q2[2] + qb; q2[3] = q2[3] + qb;
                } else {
                    qx[0] = qx[0] + a; qx[2] = qx[2] + a; qx[1] = qx[1] + b; qx[3] = qx[3] + b;
                    q2[0] = q2[0] + qa; q2[2] = q2[2] + qa; q2[1] = q2[1] + qb; q2[3] = q2[3] + qb;
                }
            }
            vi pass = splati(0);
            for (int k = 0; k < 4; k++) pass = pass | ((q2[k] > vzero()) & (qx[k] * qx[k] > splat(best) * q2[k]));
            const uint32_t bits = lane_bits(pass & (iota < splati(NPAIRS_USED - c0)));
            if (!bits) continue;
            const int lanes = NPAIRS_USED - c0 < 16 ? NPAIRS_USED - c0 : 16;
            for (int l = __builtin_ctz(bits); l < lanes; l++) {
                for (int k = 0; k < 4; k++) {
                    if (q2[k][l] > 0 && qx[k][l] * qx[k][l] > best * q2[k][l]) {
                        scale = qx[k][l] / q2[k][l]; best = scale * qx[k][l];
                        besti1 = pi1[c0 + l]; besti2 = pi2[c0 + l]; best_k = k;
                    }
                }
            }
        }
        if (besti1 < 0 || besti2 < 0 || best_k < 0) { scales[ib] = 0; shifts[ib] = 0; continue; }
        for (int j = 0; j < besti1; j++) L[idx[j]] = 0;
        for (int j = besti1; j < besti2; j++) L[idx[j]] = 1;
        for (int j = besti2; j < BS; j++) L[idx[j]] = 2;
        if (scale < 0) {
            for (int j = 0; j < BS; j++) L[j] = (int8_t)(2 - L[j]);
            scale = -scale; best_k = 3 - best_k;
        }
        int all_on_grid = 1;
        for (int k = 0; k < 2; k++) {
            const float *xx = k == 0 ? (best_k < 2 ? xp : xm) : (best_k % 2 == 0 ? xp : xm);
            int u = 0;
            for (int j = 0; j < 8; j++) u |= (int)L[8 * k + j] << (2 * j);
            int gi = T->map[u];
            if (gi < 0) {
                all_on_grid = 0;
                gi = iq1_best_neighbour(T, -gi - 1, 2048, xb + 8 * k, weight + 8 * k, scale, xx, L + 8 * k);
            }
            index[k] = (uint16_t)gi;
        }
        if (!all_on_grid) {
            float sumqx = 0, sumq2 = 0;
            for (int k = 0; k < 2; k++) {
                const float *xx = k == 0 ? (best_k < 2 ? xp : xm) : (best_k % 2 == 0 ? xp : xm);
                const int8_t *pg = T->grid + 8 * index[k];
                for (int j = 0; j < 8; j++) {
                    const float w = weight[8 * k + j], q = xx[(pg[j] - 1) >> 1];
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
            if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
        }
        y[2 * ib] = (uint8_t)(index[0] & 255);
        y[2 * ib + 1] = (uint8_t)(index[1] & 255);
        y[32 + ib] = (uint8_t)((index[0] >> 8) | ((index[1] >> 8) << 4));
        scales[ib] = scale;
        shifts[ib] = (int8_t)best_k;
        max_scale = fmaxc(max_scale, scale);
    }
    if (max_scale == 0) return;
    float d = max_scale / 15;
    const float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int ib = 0; ib < IQK / BS; ib++) {
        const int32_t l = iclamp(nearest_int_s(0.5f * (id * scales[ib] - 1)), 0, 7);
        uint8_t *sc = y + 48 + 2 * (ib / 4);
        store_u16(sc, (uint16_t)(load_u16(sc) | (uint16_t)(l << (3 * (ib % 4)))));
        const int sh = shifts[ib];
        const uint8_t qh = (uint8_t)(y[32 + ib] | masks[sh & 3]);
        y[32 + ib] = qh;
        const float *xb = xbl + BS * ib;
        iq1m_weights(xb, qwbl ? qwbl + BS * ib : NULL, sigma2, weight);
        const float fl = (float)(2 * l + 1);
        for (int k = 0; k < 2; k++) {
            const float *xx = k == 0 ? (sh < 2 ? xp : xm) : (sh % 2 == 0 ? xp : xm);
            const int gi = y[2 * ib + k] + (((int)qh << (8 - 4 * k)) & 0x700);
            const int8_t *pg = T->grid + 8 * gi;
            for (int j = 0; j < 8; j++) {
                const float w = weight[8 * k + j], q = xx[(pg[j] - 1) >> 1] * fl;
                sumqx += w * q * xb[8 * k + j];
                sumq2 += w * q * q;
            }
        }
    }
    if (sumq2 > 0) d = sumqx / sumq2;
    const uint16_t h = fp32_to_fp16(d * 1.1125f);
    const uint16_t parts[4] = {(uint16_t)((h & 0x000f) << 12), (uint16_t)((h & 0x00f0) << 8), (uint16_t)((h & 0x0f00) << 4), (uint16_t)(h & 0xf000)};
    for (int j = 0; j < 4; j++) store_u16(y + 48 + 2 * j, (uint16_t)(load_u16(y + 48 + 2 * j) | parts[j]));
}

// iq2_xxs and iq2_xs need weights (ggml refuses without; the caller checks). The block
// kernels are inlined into each instruction-set variant of the row functions.
#define IQ_ROW(NAME, BLOCK, BYTES)                                                                   \
    INL void NAME(const float *x, const float *qw, uint8_t *y, int64_t n, smelt_iq_grid g) {         \
        for (int64_t ib = 0; ib < n / IQK; ib++) BLOCK(x + IQK * ib, qw ? qw + IQK * ib : NULL, y + (BYTES) * ib, &g); \
    }
INL void iq2xxs_block_w(const float *x, const float *qw, uint8_t *y, const smelt_iq_grid *T) { if (qw) iq2xxs_block(x, qw, y, T); }
INL void iq2xs_block_w(const float *x, const float *qw, uint8_t *y, const smelt_iq_grid *T) { if (qw) iq2xs_block(x, qw, y, T); }
IQ_ROW(iq2xxs, iq2xxs_block_w, 66)
IQ_ROW(iq2xs, iq2xs_block_w, 74)
IQ_ROW(iq2s, iq2s_block, 82)
IQ_ROW(iq3xxs, iq3xxs_block, 98)
IQ_ROW(iq3s, iq3s_block, 110)
INL void iq1s_block_w(const float *x, const float *qw, uint8_t *y, const smelt_iq_grid *T) { if (qw) iq1s_block(x, qw, y, T); }
IQ_ROW(iq1s, iq1s_block_w, 50)
IQ_ROW(iq1m, iq1m_block, 56)

// MARK: - variants and dispatch

#if defined(__x86_64__) || defined(__i386__)
#define T_AVX2 __attribute__((target("avx2")))
#define T_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define VARIANTS(R, NAME, PARAMS, ARGS)                      \
    __attribute__((noinline)) static R NAME##_portable PARAMS { return NAME ARGS; } \
    T_AVX2 __attribute__((noinline)) static R NAME##_avx2 PARAMS { return NAME ARGS; } \
    T_AVX512 __attribute__((noinline)) static R NAME##_avx512 PARAMS { return NAME ARGS; }
#else
#define VARIANTS(R, NAME, PARAMS, ARGS) static R NAME##_portable PARAMS { return NAME ARGS; }
#endif

INL void q4k(const float *x, uint8_t *y, int64_t n) { row_k45(x, y, n, 15); }
INL void q5k(const float *x, uint8_t *y, int64_t n) { row_k45(x, y, n, 31); }
VARIANTS(void, q4k, (const float *x, uint8_t *y, int64_t n), (x, y, n))
VARIANTS(void, q5k, (const float *x, uint8_t *y, int64_t n), (x, y, n))
VARIANTS(void, row_q6_K, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(int, row_q8_0, (const float *x, uint8_t *y, int64_t n), (x, y, n))
VARIANTS(int, row_q4_0, (const float *x, uint8_t *y, int64_t n), (x, y, n))
VARIANTS(int64_t, rows_bf16_q8_0, (const uint16_t *x, uint8_t *y, int64_t rows, int64_t n), (x, y, rows, n))
VARIANTS(int64_t, rows_bf16_q4_0, (const uint16_t *x, uint8_t *y, int64_t rows, int64_t n), (x, y, rows, n))
INL void q4kw(const float *x, const float *qw, uint8_t *y, int64_t n) { row_k45_weighted(x, qw, y, n, 15); }
INL void q5kw(const float *x, const float *qw, uint8_t *y, int64_t n) { row_k45_weighted(x, qw, y, n, 31); }
VARIANTS(void, q4kw, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(void, q5kw, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(void, iq4nl, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(void, iq4xs, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(void, row_q2_K, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(void, row_q3_K, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(int, q41, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(int, q50, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(int, q51, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
VARIANTS(void, q40w, (const float *x, const float *qw, uint8_t *y, int64_t n), (x, qw, y, n))
#define IQ_VARIANTS(NAME) VARIANTS(void, NAME, (const float *x, const float *qw, uint8_t *y, int64_t n, smelt_iq_grid g), (x, qw, y, n, g))
IQ_VARIANTS(iq2xxs)
IQ_VARIANTS(iq2xs)
#if defined(__x86_64__) || defined(__i386__)
// iq2_s (neighbour lists of one distance: a handful of candidates) measured slower with
// AVX-512 than with AVX2 (83–113 vs 58–61 ms per 884,736 weights, alternating, 2026-12-04):
// AVX2 serves both levels.
__attribute__((noinline)) static void iq2s_portable(const float *x, const float *qw, uint8_t *y, int64_t n, smelt_iq_grid g) { iq2s(x, qw, y, n, g); }
T_AVX2 __attribute__((noinline)) static void iq2s_avx2(const float *x, const float *qw, uint8_t *y, int64_t n, smelt_iq_grid g) { iq2s(x, qw, y, n, g); }
#define iq2s_avx512 iq2s_avx2
#else
IQ_VARIANTS(iq2s)
#endif
IQ_VARIANTS(iq3xxs)
IQ_VARIANTS(iq3s)
IQ_VARIANTS(iq1s)
IQ_VARIANTS(iq1m)

static int detected_level(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) return 2;
    if (__builtin_cpu_supports("avx2")) return 1;
#endif
    return 0;
}

static int cpu_level = -1;   // what the CPU allows (set once)
static int forced_level = -1;

int smelt_quant_cpu_level(void) {
    int l = __atomic_load_n(&cpu_level, __ATOMIC_RELAXED);
    if (l < 0) {
        // SMELT_QUANT_LEVEL=0|1|2 caps the level for the whole process (benchmarks, checks).
        const char *e = getenv("SMELT_QUANT_LEVEL");
        if (e && e[0] >= '0' && e[0] <= '2' && e[1] == 0) {
            int expected = -1;
            __atomic_compare_exchange_n(&forced_level, &expected, e[0] - '0', 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        }
        l = detected_level();
        __atomic_store_n(&cpu_level, l, __ATOMIC_RELAXED);
    }
    return l;
}

int smelt_quant_level(void) {
    const int cpu = smelt_quant_cpu_level();
    const int f = __atomic_load_n(&forced_level, __ATOMIC_RELAXED);
    return f >= 0 && f < cpu ? f : cpu;
}

void smelt_quant_force_level(int level) { __atomic_store_n(&forced_level, level, __ATOMIC_RELAXED); }

#if defined(__x86_64__) || defined(__i386__)
#define DISPATCH(NAME, ARGS)                                  \
    switch (smelt_quant_level()) {                            \
    case 2: return NAME##_avx512 ARGS;                        \
    case 1: return NAME##_avx2 ARGS;                          \
    default: return NAME##_portable ARGS;                     \
    }
#else
#define DISPATCH(NAME, ARGS) return NAME##_portable ARGS;
#endif

void smelt_quantize_row_q4_K(const float *x, void *y, int64_t n) { DISPATCH(q4k, (x, (uint8_t *)y, n)) }
void smelt_quantize_row_q5_K(const float *x, void *y, int64_t n) { DISPATCH(q5k, (x, (uint8_t *)y, n)) }
void smelt_quantize_row_q6_K(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(row_q6_K, (x, qw, (uint8_t *)y, n)) }
int smelt_quantize_row_q8_0(const float *x, void *y, int64_t n) { DISPATCH(row_q8_0, (x, (uint8_t *)y, n)) }
int smelt_quantize_row_q4_0(const float *x, void *y, int64_t n) { DISPATCH(row_q4_0, (x, (uint8_t *)y, n)) }
int64_t smelt_quantize_rows_bf16_q8_0(const uint16_t *x, void *y, int64_t rows, int64_t n) { DISPATCH(rows_bf16_q8_0, (x, (uint8_t *)y, rows, n)) }
int64_t smelt_quantize_rows_bf16_q4_0(const uint16_t *x, void *y, int64_t rows, int64_t n) { DISPATCH(rows_bf16_q4_0, (x, (uint8_t *)y, rows, n)) }
void smelt_quantize_row_iq4_nl(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(iq4nl, (x, qw, (uint8_t *)y, n)) }
void smelt_quantize_row_iq4_xs(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(iq4xs, (x, qw, (uint8_t *)y, n)) }
void smelt_quantize_row_q4_K_weighted(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(q4kw, (x, qw, (uint8_t *)y, n)) }
void smelt_quantize_row_q5_K_weighted(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(q5kw, (x, qw, (uint8_t *)y, n)) }
void smelt_quantize_row_q2_K(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(row_q2_K, (x, qw, (uint8_t *)y, n)) }
void smelt_quantize_row_q3_K(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(row_q3_K, (x, qw, (uint8_t *)y, n)) }
int smelt_quantize_row_q4_1(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(q41, (x, qw, (uint8_t *)y, n)) }
int smelt_quantize_row_q5_0(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(q50, (x, qw, (uint8_t *)y, n)) }
int smelt_quantize_row_q5_1(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(q51, (x, qw, (uint8_t *)y, n)) }
void smelt_quantize_row_q4_0_weighted(const float *x, const float *qw, void *y, int64_t n) { DISPATCH(q40w, (x, qw, (uint8_t *)y, n)) }
void smelt_quantize_row_iq2_xxs(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g) { DISPATCH(iq2xxs, (x, qw, (uint8_t *)y, n, g)) }
void smelt_quantize_row_iq2_xs(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g) { DISPATCH(iq2xs, (x, qw, (uint8_t *)y, n, g)) }
void smelt_quantize_row_iq2_s(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g) { DISPATCH(iq2s, (x, qw, (uint8_t *)y, n, g)) }
void smelt_quantize_row_iq3_xxs(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g) { DISPATCH(iq3xxs, (x, qw, (uint8_t *)y, n, g)) }
void smelt_quantize_row_iq3_s(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g) { DISPATCH(iq3s, (x, qw, (uint8_t *)y, n, g)) }
void smelt_quantize_row_iq1_s(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g) { DISPATCH(iq1s, (x, qw, (uint8_t *)y, n, g)) }
void smelt_quantize_row_iq1_m(const float *x, const float *qw, void *y, int64_t n, smelt_iq_grid g) { DISPATCH(iq1m, (x, qw, (uint8_t *)y, n, g)) }
