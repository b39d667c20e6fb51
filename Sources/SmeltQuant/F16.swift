import CSmeltKernels
import SmeltFormats

/// IEEE half precision (ggml `f16`): one little-endian binary16 per value, rounded to
/// nearest even as `GGML_FP32_TO_FP16`. Importance weights are ignored.
public enum F16: QuantType {
    public static let ggmlType = GGMLType.f16

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        // `fp32ToFP16`'s rounding, vectorized (F16C / AVX-512) in CSmeltKernels
        if count > 0 { smelt_f32_to_f16(src, dst.assumingMemoryBound(to: UInt16.self), count) }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        // `fp16ToFP32`'s bits, vectorized (F16C / AVX-512) in CSmeltKernels
        if count > 0 { smelt_f16_to_f32(src, dst, count) }
    }
}
