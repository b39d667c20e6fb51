import SmeltFormats

/// ggml `q1_0`: blocks of 128 values as `d: f16, qs: [16 bytes]` (18 bytes); bit j
/// (LSB first) set means +d, clear means −d; d is the block's mean |x|.
/// ggml ignores importance weights for this type.
public enum Q1_0: QuantType {
    public static let ggmlType = GGMLType.q1_0
    static let blockSize = 128, blockBytes = 18

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        for ib in 0..<(count / blockSize) {
            quantizeBlock(src + ib * blockSize, dst + ib * blockBytes)
        }
    }

    /// `quantize_row_q1_0_ref` for one block.
    @inline(__always) static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var sumAbs: Float = 0
        for j in 0..<128 { sumAbs += abs(x[j]) }
        let d = sumAbs / 128
        storeU16(y, 0, fp32ToFP16(d))
        let qs = (y + 2).assumingMemoryBound(to: UInt8.self)
        for b in 0..<16 {
            var byte: UInt8 = 0
            for k in 0..<8 where x[8 * b + k] >= 0 { byte |= 1 << UInt8(k) }
            qs[b] = byte
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let negD = -d
            let qs = (b + 2).assumingMemoryBound(to: UInt8.self)
            let y = dst + ib * blockSize
            for j in 0..<128 { y[j] = (qs[j >> 3] >> UInt8(j & 7)) & 1 != 0 ? d : negD }
        }
    }
}
