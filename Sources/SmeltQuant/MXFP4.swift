import SmeltFormats

/// ggml `mxfp4` (OCP microscaling FP4): blocks of 32 values as `e: E8M0, qs: [16 bytes]`
/// (17 bytes); nibble j%16 of qs (low nibbles first half) indexes the E2M1 table,
/// x ≈ kvalue·2^(e−128). ggml ignores importance weights for this type.
public enum MXFP4: QuantType {
    public static let ggmlType = GGMLType.mxfp4
    static let blockSize = 32, blockBytes = 17

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        for ib in 0..<(count / blockSize) {
            quantizeBlock(src + ib * blockSize, dst + ib * blockBytes)
        }
    }

    /// `quantize_row_mxfp4_ref` for one block.
    @inline(__always) static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<32 where amax < abs(x[j]) { amax = abs(x[j]) }
        let e: UInt8 = amax > 0
            ? UInt8(truncatingIfNeeded: truncToInt32(cLog2f(amax).rounded(.down) - 2 + 127)) : 0
        let d = e8m0ToFP32Half(e)
        let p = y.assumingMemoryBound(to: UInt8.self)
        p[0] = e
        for j in 0..<16 {
            p[1 + j] = bestIndexFP4(x[j], d) | (bestIndexFP4(x[16 + j], d) << 4)
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        do { let kv = kvaluesFP4
            for ib in 0..<(count / blockSize) {
                let b = src.advanced(by: ib * blockBytes).assumingMemoryBound(to: UInt8.self)
                let d = e8m0ToFP32Half(b[0])
                let y = dst + ib * blockSize
                for j in 0..<16 {
                    y[j] = Float(kv[Int(b[1 + j] & 0x0F)]) * d
                    y[j + 16] = Float(kv[Int(b[1 + j] >> 4)]) * d
                }
            }
        }
    }
}
