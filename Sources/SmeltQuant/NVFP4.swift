import SmeltFormats

/// ggml `nvfp4`: blocks of 64 values as `d: [4 × UE4M3], qs: [32 bytes]` (36 bytes); each
/// 16-value sub-block s has scale d[s] and 8 bytes of E2M1 nibbles (low nibbles = first 8
/// values). ggml ignores importance weights for this type.
public enum NVFP4: QuantType {
    public static let ggmlType = GGMLType.nvfp4
    static let blockSize = 64, blockBytes = 36

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        for ib in 0..<(count / blockSize) {
            quantizeBlock(src + ib * blockSize, dst + ib * blockBytes)
        }
    }

    /// `quantize_row_nvfp4_ref` for one block.
    @inline(__always) static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let p = y.assumingMemoryBound(to: UInt8.self)
        for s in 0..<4 {
            let xb = x + 16 * s
            var amax: Float = 0
            for j in 0..<16 where amax < abs(xb[j]) { amax = abs(xb[j]) }
            let ue = fp32ToUE4M3(amax / 6)
            p[s] = ue
            let d = ue4m3ToFP32(ue)
            for j in 0..<8 {
                p[4 + 8 * s + j] = bestIndexFP4(xb[j], d) | (bestIndexFP4(xb[8 + j], d) << 4)
            }
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        do { let kv = kvaluesFP4
            for ib in 0..<(count / blockSize) {
                let b = src.advanced(by: ib * blockBytes).assumingMemoryBound(to: UInt8.self)
                for s in 0..<4 {
                    let d = ue4m3ToFP32(b[s])
                    let y = dst + ib * blockSize + 16 * s
                    for j in 0..<8 {
                        let q = b[4 + 8 * s + j]
                        y[j] = Float(kv[Int(q & 0x0F)]) * d
                        y[j + 8] = Float(kv[Int(q >> 4)]) * d
                    }
                }
            }
        }
    }
}
