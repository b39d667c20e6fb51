import SmeltFormats

/// FP8 E4M3 ("float8_e4m3fn": finite only, NaN = S.1111.111, max 448) with torch's cast semantics.
public enum CTFloat8 {
    /// The largest finite value, 448.
    public static let max: Float = 448

    /// float → E4M3 bits as torch's `tensor.to(torch.float8_e4m3fn)` casts: round to nearest even,
    /// subnormals (steps of 2^-9) kept, no saturation — a magnitude of 480 or more (or NaN) becomes NaN
    /// (0x7F with the sign); ±inf too. compressed-tensors clamps to ±448 before casting, so NaN never
    /// comes from a finite input there.
    @inline(__always) public static func bits(_ f: Float) -> UInt8 {
        let u = f.bitPattern
        let sign = UInt8(truncatingIfNeeded: (u >> 24) & 0x80)
        let a = u & 0x7fff_ffff
        if a >= 0x43f0_0000 { return sign | 0x7f }                // ≥ 480, inf, NaN
        if a < 0x3c80_0000 {                                      // < 2^-6: subnormal range, steps of 2^-9
            // Adding 2^-9 · 2^23 … a float whose ulp is 2^-9 rounds to a multiple of 2^-9 (nearest even).
            let magic = Float(bitPattern: 141 << 23)              // 2^14: ulp = 2^-9
            let r = (Float(bitPattern: a) + magic).bitPattern &- magic.bitPattern
            return sign | UInt8(truncatingIfNeeded: r)
        }
        // normal: rebias the exponent (127 → 7), round the 23-bit mantissa to 3 bits, nearest even
        let odd = (a >> 20) & 1
        let r = (a &+ (UInt32(bitPattern: Int32(7 - 127)) << 23) &+ 0x7ffff &+ odd) >> 20
        return sign | UInt8(truncatingIfNeeded: r)
    }

    /// E4M3 bits → float (exact).
    @inline(__always) public static func value(_ b: UInt8) -> Float { FloatFormats.e4m3ToFloat(b) }

    /// Rounds to the nearest E4M3 value (as `x.to(float8_e4m3fn).to(float)`).
    @inline(__always) public static func round(_ f: Float) -> Float { value(bits(f)) }
}
