import SmeltFormats

/// ggml `tq2_0` (ternary, 2.0625 bpw): blocks of 256 values as `qs: [64 bytes]` (four
/// 2-bit codes per byte, code = t + 1), `d: f16` (66 bytes); x ≈ d·t.
/// ggml ignores importance weights for this type.
public enum TQ2_0: QuantType {
    public static let ggmlType = GGMLType.tq2_0
    static let blockSize = 256, blockBytes = 66

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        for ib in 0..<(count / blockSize) {
            quantizeBlock(src + ib * blockSize, dst + ib * blockBytes)
        }
    }

    /// `quantize_row_tq2_0_ref` for one block.
    @inline(__always) static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<256 {
            let a = abs(x[j])
            amax = amax > a ? amax : a
        }
        let d = amax
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(y, 64, fp32ToFP16(d))
        let qs = y.assumingMemoryBound(to: UInt8.self)
        for j in stride(from: 0, to: 64, by: 32) {
            let xb = x + 4 * j
            for m in 0..<32 {
                var q: UInt8 = 0
                for n in 0..<4 {
                    let xi = lroundToInt(xb[m + n * 32] * id) &+ 1
                    q = q &+ UInt8(truncatingIfNeeded: (xi & 3) << (2 * n))
                }
                qs[j + m] = q
            }
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src.advanced(by: ib * blockBytes).assumingMemoryBound(to: UInt8.self)
            let d = fp16ToFP32(loadU16(UnsafeRawPointer(b), 64))
            var y = dst + ib * blockSize
            for j in stride(from: 0, to: 64, by: 32) {
                for l in 0..<4 {
                    for m in 0..<32 {
                        let q = Int8((b[j + m] >> UInt8(l * 2)) & 3)
                        y[0] = Float(q - 1) * d
                        y += 1
                    }
                }
            }
        }
    }
}
