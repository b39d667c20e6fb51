import Foundation
import SmeltFormats

/// llama.cpp's CPU backend does not multiply float32 activations with a
/// quantized or 16-bit weight matrix directly: it first converts the
/// activations to the weight type's `vec_dot_type` (float16, bfloat16,
/// Q8_0/Q8_1 blocks of 32, or Q8_K blocks of 256) and takes dot products in
/// that form. Rounding the activations the same way before the float32
/// product reproduces llama.cpp's numbers (perplexity, KLD) closely.
enum ActivationRounding {
    enum Format { case none, f16, bf16, q8_0, q8_K }

    /// The `vec_dot_type` of ggml-cpu's type traits.
    static func format(for t: GGMLType) -> Format {
        switch t {
        case .f32: return .none
        case .f16: return .f16
        case .bf16: return .bf16
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .mxfp4, .nvfp4, .q1_0: return .q8_0
        default: return t.isQuantized ? .q8_K : .none
        }
    }

    /// Rounds `rows × cols` values from `x` into `out`.
    static func round(_ x: UnsafePointer<Float>, rows: Int, cols: Int, format: Format, out: UnsafeMutablePointer<Float>, threads: Int) {
        Parallel.ranges(rows, threads: rows * cols > 1 << 15 ? threads : 1) { _, r in
            for t in r {
                let xi = x + t * cols, oi = out + t * cols
                NativeKernels.round(format, xi, oi, cols)
            }
        }
    }

    /// ggml-cpu's x86 `quantize_row_q8_0` (id = 127/amax, round half to even, fp16 scale), dequantized.
    /// The reference for the native `smelt_round_q8_0` used in the forward pass (tests compare them).
    static func roundQ8_0(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var b = 0
        while b + 32 <= n {
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(x[b + j])) }
            let d = FloatFormats.halfToFloat(FloatFormats.floatToHalf(amax / 127))
            let id: Float = amax != 0 ? 127 / amax : 0
            for j in 0..<32 { out[b + j] = d * (x[b + j] * id).rounded(.toNearestOrEven) }
            b += 32
        }
        if b < n { (out + b).update(from: x + b, count: n - b) }
    }

    /// ggml's `quantize_row_q8_K_ref` (scale from the signed extreme, −127/max), dequantized.
    /// The reference for the native `smelt_round_q8_K` used in the forward pass (tests compare them).
    static func roundQ8_K(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var b = 0
        while b + 256 <= n {
            var amax: Float = 0, mx: Float = 0
            for j in 0..<256 { let a = abs(x[b + j]); if a > amax { amax = a; mx = x[b + j] } }
            if amax == 0 {
                (out + b).update(repeating: 0, count: 256)
            } else {
                let iscale = -127 / mx
                let d = 1 / iscale
                for j in 0..<256 {
                    let v = min(127, KLDBaseFile.nearestInt(iscale * x[b + j]))
                    out[b + j] = d * Float(v)
                }
            }
            b += 256
        }
        if b < n { (out + b).update(from: x + b, count: n - b) }
    }
}
