import SmeltFormats

/// ggml `q4_0`: blocks of 32 values as `d: f16, qs: [16 bytes]` (18 bytes); value j is
/// nibble `qs[j % 16] >> (4 * (j / 16))`, x ≈ d·(q − 8).
public enum Q4_0: QuantType {
    public static let ggmlType = GGMLType.q4_0
    static let blockSize = 32, blockBytes = 18

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ40Weighted(src, importance, dst, count); return }
        let nb = count / blockSize
        guard let qw = importance else {
            for ib in 0..<nb { quantizeBlockRef(src + ib * blockSize, dst + ib * blockBytes) }
            return
        }
        var sumX2: Float = 0
        for j in 0..<count { sumX2 += src[j] * src[j] }
        let sigma2 = sumX2 / Float(count)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { w in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 32) { L in
                for ib in 0..<nb {
                    quantizeBlockWeighted(src + ib * blockSize, dst + ib * blockBytes, qw + ib * blockSize,
                                          sigma2: sigma2, weight: w.baseAddress!, L: L.baseAddress!)
                }
            }
        }
    }

    /// `quantize_row_q4_0_ref` for one block.
    @inline(__always) static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0, max: Float = 0
        for j in 0..<32 {
            let v = x[j]
            if amax < abs(v) { amax = abs(v); max = v }
        }
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(y, 0, fp32ToFP16(d))
        let qs = (y + 2).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            let x0 = x[j] * id
            let x1 = x[16 + j] * id
            let xi0 = Swift.min(15, Int32(Int8(truncatingIfNeeded: truncToInt32(x0 + 8.5))))
            let xi1 = Swift.min(15, Int32(Int8(truncatingIfNeeded: truncToInt32(x1 + 8.5))))
            qs[j] = UInt8(truncatingIfNeeded: xi0) | UInt8(truncatingIfNeeded: xi1 << 4)
        }
    }

    /// `quantize_row_q4_0_impl` for one block; `sigma2` is the row's mean square.
    @inline(__always) static func quantizeBlockWeighted(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                                        _ qw: UnsafePointer<Float>, sigma2: Float,
                                                        weight: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<Int8>) {
        for j in 0..<32 { weight[j] = qw[j] * (sigma2 + x[j] * x[j]).squareRoot() }
        let d = makeQxQuants(32, 8, x, L, UnsafePointer(weight))
        storeU16(y, 0, fp32ToFP16(d))
        let qs = (y + 2).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            qs[j] = UInt8(bitPattern: L[j]) | (UInt8(bitPattern: L[j + 16]) << 4)
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let qs = (b + 2).assumingMemoryBound(to: UInt8.self)
            let y = dst + ib * blockSize
            for j in 0..<16 {
                y[j] = Float(Int32(qs[j] & 0x0F) - 8) * d
                y[j + 16] = Float(Int32(qs[j] >> 4) - 8) * d
            }
        }
    }
}
