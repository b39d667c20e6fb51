import SmeltFormats

/// IEEE half precision (ggml `f16`): one little-endian binary16 per value, rounded to
/// nearest even as `GGML_FP32_TO_FP16`. Importance weights are ignored.
public enum F16: QuantType {
    public static let ggmlType = GGMLType.f16

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        for i in 0..<count { storeU16(dst, 2 * i, fp32ToFP16(src[i])) }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = fp16ToFP32(loadU16(src, 2 * i)) }
    }
}
