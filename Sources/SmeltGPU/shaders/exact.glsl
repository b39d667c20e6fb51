// Exact arithmetic for Smelt's quantization shaders: the CPU path's (and ggml's) results, bit for bit.
//
// Vulkan rounds only +, -, * correctly, and only when a result is not contracted into an fma:
// every float variable in these shaders is `precise` (SPIR-V NoContraction; the SPIR-V test checks
// that every float add/sub/mul carries it). Division and square root are emulated in 32-bit integer
// arithmetic with round-to-nearest-even and x86's NaN rules (a NaN operand is returned quieted, the
// first one first; invalid operations give the default NaN 0xFFC00000), as are the conversions to
// f16/bf16 (ggml's rounding), C's truncating float→int cast (x86 cvttss2si: INT_MIN when out of
// range) and roundf. Specialization constant 0 (HW_OPS) swaps in the hardware operations: a debug
// switch that shows the emulation tests can fail.
//
// LOOP BUDGET. Mesa's llvmpipe (lavapipe, the Vulkan driver CI and machines without a GPU use)
// gives each group of SIMD lanes (8 invocations on AVX2) 65,535 loop iterations in all, counted
// over every loop of the shader (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS, one counter shared by all
// loops); past that, every loop silently stops after its current iteration, so a shader that
// iterates too much writes partial or no results without any error. Real GPUs have no such limit.
// The shaders therefore keep their loop iterations per invocation well under that (the division
// and square root below take 9 iterations, three bits each), and the quantization shaders end
// with a canary loop (quant_main.glsl) that reports an exhausted budget so that the host
// re-quantizes those rows on the CPU.
#extension GL_EXT_control_flow_attributes : enable

layout(constant_id = 0) const bool HW_OPS = false;

#define F precise float

// Rounds (q + sticky·ε)·2^E to a float32 (RNE, subnormals, overflow to inf); q < 2^31, q ≠ 0,
// and q has at least two more significant bits than the result when `sticky` may be set.
uint exact_round_pack(uint sign, uint q, int E, bool sticky) {
    int len = findMSB(q) + 1;
    int lead = E + len - 1;
    int ulpExp = max(lead - 23, -149);
    int shift = ulpExp - E;
    uint m;
    if (shift <= 0) {
        m = q << uint(-shift);
    } else if (shift >= 32) {
        m = 0u;
    } else {
        uint rem = q & ((1u << uint(shift)) - 1u);
        uint half_ = 1u << uint(shift - 1);
        m = q >> uint(shift);
        if (rem > half_ || (rem == half_ && (sticky || (m & 1u) != 0u))) m += 1u;
    }
    uint bits = (uint(ulpExp + 149) << 23) + m;
    if (bits >= 0x7f800000u) return sign | 0x7f800000u;
    return sign | bits;
}

// a / b, correctly rounded, as bits.
uint exact_div_bits(uint a, uint b) {
    uint sign = (a ^ b) & 0x80000000u;
    uint ea = (a >> 23) & 0xffu, eb = (b >> 23) & 0xffu;
    uint ma = a & 0x7fffffu, mb = b & 0x7fffffu;
    if (ea == 255u && ma != 0u) return a | 0x400000u;
    if (eb == 255u && mb != 0u) return b | 0x400000u;
    if (ea == 255u) return eb == 255u ? 0xffc00000u : (sign | 0x7f800000u);
    if (eb == 255u) return sign;
    if ((a & 0x7fffffffu) == 0u) return (b & 0x7fffffffu) == 0u ? 0xffc00000u : sign;
    if ((b & 0x7fffffffu) == 0u) return sign | 0x7f800000u;
    int xa = -149, xb = -149;
    if (ea != 0u) { ma |= 0x800000u; xa = int(ea) - 150; }
    if (eb != 0u) { mb |= 0x800000u; xb = int(eb) - 150; }
    int sa = 23 - findMSB(ma); ma <<= uint(sa); xa -= sa;
    int sb = 23 - findMSB(mb); mb <<= uint(sb); xb -= sb;
    // q = floor(ma·2^26 / mb), one bit per step, three steps per loop iteration (see LOOP BUDGET
    // above); r < 2·mb < 2^25.
    uint r = ma, q = 0u;
    [[dont_unroll]] for (int i = 0; i < 9; i++) {
        [[unroll]] for (int t = 0; t < 3; t++) {
            q <<= 1;
            if (r >= mb) { r -= mb; q |= 1u; }
            r <<= 1;
        }
    }
    return exact_round_pack(sign, q, xa - xb - 26, r != 0u);
}

// sqrt(a), correctly rounded, as bits (x86: sqrt of a negative number is 0xFFC00000).
uint exact_sqrt_bits(uint a) {
    uint e = (a >> 23) & 0xffu, m = a & 0x7fffffu;
    if (e == 255u) {
        if (m != 0u) return a | 0x400000u;
        return (a >> 31) != 0u ? 0xffc00000u : a;
    }
    if ((a & 0x7fffffffu) == 0u) return a;
    if ((a >> 31) != 0u) return 0xffc00000u;
    int x = -149;
    if (e != 0u) { m |= 0x800000u; x = int(e) - 150; }
    int s = 23 - findMSB(m); m <<= uint(s); x -= s;
    if ((x & 1) != 0) { m <<= 1; x -= 1; }
    // root = floor(sqrt(m·2^28)), digit by digit over 27 bit pairs, three per loop iteration.
    uint rem = 0u, root = 0u;
    [[dont_unroll]] for (int o = 0; o < 9; o++) [[unroll]] for (int t = 0; t < 3; t++) {
        int k = 2 * (26 - 3 * o - t);
        uint two = k >= 28 ? (m >> uint(k - 28)) & 3u : 0u;
        rem = (rem << 2) | two;
        uint trial = (root << 2) | 1u;
        root <<= 1;
        if (rem >= trial) { rem -= trial; root |= 1u; }
    }
    return exact_round_pack(0u, root, (x - 28) / 2, rem != 0u);
}

// ggml_compute_fp32_to_fp16: RNE, overflow to inf, NaN → sign|0x7E00.
uint exact_f16_bits(uint w) {
    uint sign = (w >> 16) & 0x8000u;
    uint e = (w >> 23) & 0xffu, m = w & 0x7fffffu;
    if (e == 255u) return sign | (m != 0u ? 0x7e00u : 0x7c00u);
    if (e == 0u && m == 0u) return sign;
    uint q = m; int E = -149;
    if (e != 0u) { q = m | 0x800000u; E = int(e) - 150; }
    int len = findMSB(q) + 1;
    int ulpExp = max(E + len - 1 - 10, -24);
    int shift = ulpExp - E;
    uint r;
    if (shift >= 32) {
        r = 0u;
    } else {
        uint rem = q & ((1u << uint(shift)) - 1u);
        uint half_ = 1u << uint(shift - 1);
        r = q >> uint(shift);
        if (rem > half_ || (rem == half_ && (r & 1u) != 0u)) r += 1u;
    }
    uint bits = (uint(ulpExp + 24) << 10) + r;
    if (bits >= 0x7c00u) return sign | 0x7c00u;
    return sign | bits;
}

// ggml_compute_fp32_to_bf16: RNE, NaN quieted.
uint exact_bf16_bits(uint u) {
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 64u;
    return (u + (0x7fffu + ((u >> 16) & 1u))) >> 16;
}

// The operations the kernels use.
float fdiv(float a, float b) {
    if (HW_OPS) { F r = a / b; return r; }
    return uintBitsToFloat(exact_div_bits(floatBitsToUint(a), floatBitsToUint(b)));
}
float fsqrt(float a) {
    if (HW_OPS) { F r = sqrt(a); return r; }
    return uintBitsToFloat(exact_sqrt_bits(floatBitsToUint(a)));
}
uint f16_bits(float f) {
    if (HW_OPS) return packHalf2x16(vec2(f, 0.0)) & 0xffffu;
    return exact_f16_bits(floatBitsToUint(f));
}
uint bf16_bits(float f) {
    if (HW_OPS) return floatBitsToUint(f) >> 16;   // no bf16 conversion in core GLSL: what a naive port does
    return exact_bf16_bits(floatBitsToUint(f));
}

// ggml_compute_fp16_to_fp32, exact.
float f16_to_f32(uint h) {
    uint sign = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 31u) return uintBitsToFloat(sign | 0x7f800000u | (m << 13));
    if (e == 0u) {
        if (m == 0u) return uintBitsToFloat(sign);
        int p = findMSB(m);
        return uintBitsToFloat(sign | (uint(p + 103) << 23) | ((m << uint(23 - p)) & 0x7fffffu));
    }
    return uintBitsToFloat(sign | ((e + 112u) << 23) | (m << 13));
}

float fabs_(float x) { return uintBitsToFloat(floatBitsToUint(x) & 0x7fffffffu); }

// ggml's nearest_int (round half to even through 1.5·2^23).
int nearest_int(float f) {
    F v = f + 12582912.0;
    return (floatBitsToInt(v) & 0x7fffff) - 0x400000;
}

// C's (int)f as x86 does it: truncation, INT_MIN for NaN and out-of-range values.
int trunc_i32(float f) {
    if (f > -2147483904.0 && f < 2147483648.0) return int(f);
    return int(0x80000000u);
}

// C roundf: half away from zero.
float round_away(float x) {
    F ax = fabs_(x);
    if (!(ax < 8388608.0)) return x;
    F t = float(int(ax));
    F frac = ax - t;
    if (frac >= 0.5) t = t + 1.0;
    F r = x < 0.0 ? -t : t;
    return r;
}
