import CSmeltKernels

/// Scalar float conversions with ggml's rounding (round to nearest even),
/// used by the readers (F16/BF16/F8 sources) and by the f16/bf16 "quant" types.
public enum FloatFormats {
    /// IEEE half → float (exact).
    @inline(__always) public static func halfToFloat(_ h: UInt16) -> Float {
        Float(Float16(bitPattern: h))
    }

    /// float → IEEE half, round to nearest even (ggml's `GGML_FP32_TO_FP16`).
    @inline(__always) public static func floatToHalf(_ f: Float) -> UInt16 {
        Float16(f).bitPattern
    }

    /// `count` bfloat16 values at `src` (any alignment) → float (exact), vectorized
    /// (CSmeltKernels' `smelt_bf16_to_f32`, AVX2/AVX-512 chosen at run time).
    @inline(__always) public static func bf16ToFloat(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        if count > 0 { smelt_bf16_to_f32(src, dst, count) }
    }

    /// bfloat16 → float (exact).
    @inline(__always) public static func bf16ToFloat(_ h: UInt16) -> Float {
        Float(bitPattern: UInt32(h) << 16)
    }

    /// float → bfloat16 as ggml's `ggml_compute_fp32_to_bf16`: NaN is kept quiet,
    /// everything else rounds to nearest even (no flush of subnormals).
    @inline(__always) public static func floatToBF16(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if (u & 0x7fff_ffff) > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 64) }
        return UInt16(truncatingIfNeeded: (u &+ (0x7fff &+ ((u >> 16) & 1))) >> 16)
    }

    /// OCP FP8 E4M3 (finite-only, NaN = S.1111.111) → float.
    public static func e4m3ToFloat(_ b: UInt8) -> Float {
        let sign: Float = (b & 0x80) != 0 ? -1 : 1
        let e = Int((b >> 3) & 0xF), m = Int(b & 7)
        if e == 15 && m == 7 { return .nan }
        if e == 0 { return sign * Float(m) / 8 * Float(sign: .plus, exponent: -6, significand: 1) }
        return sign * (1 + Float(m) / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
    }

    /// OCP FP8 E5M2 (IEEE-like, with inf and NaN) → float.
    public static func e5m2ToFloat(_ b: UInt8) -> Float {
        halfToFloat(UInt16(b) << 8)
    }
}
