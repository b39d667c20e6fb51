import SmeltFormats

/// bfloat16 (ggml `bf16`): the top 16 bits of each float, rounded to nearest even,
/// NaN kept quiet (ggml's `ggml_fp32_to_bf16_row_ref`). Importance weights are ignored.
public enum BF16: QuantType {
    public static let ggmlType = GGMLType.bf16

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        for i in 0..<count { storeU16(dst, 2 * i, FloatFormats.floatToBF16(src[i])) }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = FloatFormats.bf16ToFloat(loadU16(src, 2 * i)) }
    }
}
