import Foundation

/// Vectorised float math for the forward pass (8 lanes; ~2 ulp).
enum VectorMath {
    typealias V8 = SIMD8<Float>

    /// exp(x), the polynomial ggml's `ggml_v_expf` uses; inputs clamped to [-87, 88]
    /// (exp(-87) ≈ 1.6e-38, so results below that become tiny, never garbage).
    @inline(__always) static func exp(_ x: V8) -> V8 {
        let lo = V8(repeating: -87), hi = V8(repeating: 88)
        let xc = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        let r = V8(repeating: 0x1.8p23)
        let z = xc * 0x1.715476p+0 + r
        let n = z - r
        let b = (xc - n * 0x1.62e4p-1) - n * 0x1.7f7d1cp-20
        let e = unsafeBitCast(z, to: SIMD8<UInt32>.self) &<< 23
        let k = unsafeBitCast(e &+ SIMD8<UInt32>(repeating: (1 as Float).bitPattern), to: V8.self)
        let u = b * b
        let j = ((0x1.0e4020p-7 * b + 0x1.573e2ep-5) * u + (0x1.555e66p-3 * b + 0x1.fffdb6p-2)) * u + 0x1.ffffecp-1 * b
        return j * k + k
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V8 {
        UnsafeRawPointer(p).loadUnaligned(as: V8.self)
    }

    @inline(__always) static func store(_ v: V8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
    }

    /// Scalar exp through the same polynomial (for tails).
    @inline(__always) static func exp(_ x: Float) -> Float { exp(V8(repeating: x))[0] }

    /// max over row[lo..<hi].
    @inline(__always) static func max(_ row: UnsafePointer<Float>, _ lo: Int, _ hi: Int) -> Float {
        var j = lo
        var acc = V8(repeating: -.infinity)
        while j + 8 <= hi { let v = load(row + j); acc = acc.replacing(with: v, where: acc .< v); j += 8 }
        var m = acc.max()
        while j < hi { m = Swift.max(m, row[j]); j += 1 }
        return m
    }

    /// out = gelu_tanh(g) · u over n values (tanh(y) = 1 − 2/(exp(2y)+1)).
    @inline(__always) static func geglu(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        @inline(__always) func gelu(_ x: V8) -> V8 {
            let y = 0.7978845608028654 * x * (1 + 0.044715 * x * x)
            let t = 1 - 2 / (exp(2 * y) + 1)
            return 0.5 * x * (1 + t)
        }
        var i = 0
        while i + 8 <= n {
            store(gelu(load(g + i)) * load(u + i), out + i)
            i += 8
        }
        while i < n { out[i] = gelu(V8(repeating: g[i]))[0] * u[i]; i += 1 }
    }

    /// ggml-cpu's `ggml_table_gelu_f16` (vec.h, `GGML_GELU_FP16`): for every float16 value x,
    /// `ggml_gelu_f32(x)` (`0.5·x·(1 + tanhf(√(2/π)·x·(1 + 0.044715·x²)))`) rounded to float16,
    /// kept here as float32. Built once, on first use (256 KB).
    static let geluF16Table: [Float] = (0..<65536).map { i in
        let x = Float(Float16(bitPattern: UInt16(i)))
        // float operations in ggml_gelu_f32's order, with the multiply-add GCC contracts there
        // (-ffp-contract=fast with FMA: `1.0f + GELU_COEF_A*x*x` becomes fmaf(A·x, x, 1))
        let sqrt2OverPi: Float = 0.79788456080286535587989211986876, coefA: Float = 0.044715
        let inner: Float = Float(1).addingProduct(coefA * x, x)
        let t: Float = tanhf(sqrt2OverPi * x * inner)
        let g: Float = 0.5 * x * (1 + t)
        // NaN results as ggml's table holds them: the default quiet NaN, with the sign of x or of the NaN
        return g.isNaN ? Float(Float16(bitPattern: g.sign == .minus || x.sign == .minus ? 0xfe00 : 0x7e00)) : Float(Float16(g))
    }

    /// out = gelu_tanh(g) · u as llama.cpp's CPU backend computes it (`ggml_vec_geglu_f32` with
    /// `GGML_GELU_FP16`): g ≤ −10 gives 0, g ≥ 10 gives g·u, otherwise g is rounded to float16 and
    /// looked up in `geluF16Table` (a float16 result) before the product with u.
    static func gegluF16(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        geluF16Table.withUnsafeBufferPointer { table in
            for i in 0..<n {
                let x = g[i]
                if x <= -10 {
                    out[i] = 0
                } else if x >= 10 {
                    out[i] = x * u[i]
                } else {
                    out[i] = table[Int(Float16(x).bitPattern)] * u[i]
                }
            }
        }
    }
}
