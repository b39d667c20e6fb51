import SmeltFormats

/// ggml `q8_0`: blocks of 32 values as `d: f16, qs: [32 × int8]` (34 bytes); x ≈ d·q.
/// ggml ignores importance weights for this type (always the reference path).
public enum Q8_0: QuantType {
    public static let ggmlType = GGMLType.q8_0
    static let blockSize = 32, blockBytes = 34

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ80(src, dst, count); return }  // importance is ignored (as ggml)
        for ib in 0..<(count / blockSize) {
            quantizeBlock(src + ib * blockSize, dst + ib * blockBytes)
        }
    }

    /// `quantize_row_q8_0_ref` for one block.
    @inline(__always) static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<32 {
            let a = abs(x[j])
            amax = amax > a ? amax : a
        }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(y, 0, fp32ToFP16(d))
        let qs = (y + 2).assumingMemoryBound(to: UInt8.self)
        for j in 0..<32 {
            let x0 = x[j] * id
            qs[j] = UInt8(truncatingIfNeeded: truncToInt32(x0.rounded(.toNearestOrAwayFromZero)))
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let qs = (b + 2).assumingMemoryBound(to: Int8.self)
            let y = dst + ib * blockSize
            for j in 0..<32 { y[j] = Float(qs[j]) * d }
        }
    }
}
