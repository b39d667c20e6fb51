import SmeltFormats

/// ggml `q4_1`: blocks of 32 values as `d: f16, m: f16, qs: [16 bytes]` (20 bytes);
/// value j is nibble `qs[j % 16] >> (4 * (j / 16))`, x ≈ d·q + m.
public enum Q4_1: QuantType {
    public static let ggmlType = GGMLType.q4_1
    static let blockSize = 32, blockBytes = 20

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ41(src, importance, dst, count); return }
        let nb = count / blockSize
        guard let qw = importance else {
            for ib in 0..<nb { quantizeBlockRef(src + ib * blockSize, dst + ib * blockBytes) }
            return
        }
        var sumX2: Float = 0
        for j in 0..<count { sumX2 += src[j] * src[j] }
        let sigma2 = sumX2 / Float(count)
        withQuantScratch(floats: 32, bytes: 64) { w, l in
            for ib in 0..<nb {
                quantizeBlockWeighted(src + ib * blockSize, dst + ib * blockBytes, qw + ib * blockSize,
                                      sigma2: sigma2, weight: w, L: l, Laux: l + 32)
            }
        }
    }

    /// `quantize_row_q4_1_ref` for one block.
    @inline(__always) static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var min = Float.greatestFiniteMagnitude
        var max = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            let v = x[j]
            if v < min { min = v }
            if v > max { max = v }
        }
        let d = (max - min) / 15
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(y, 0, fp32ToFP16(d))
        storeU16(y, 2, fp32ToFP16(min))
        let qs = (y + 4).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            let x0 = (x[j] - min) * id
            let x1 = (x[16 + j] - min) * id
            let xi0 = Swift.min(15, Int32(Int8(truncatingIfNeeded: truncToInt32(x0 + 0.5))))
            let xi1 = Swift.min(15, Int32(Int8(truncatingIfNeeded: truncToInt32(x1 + 0.5))))
            qs[j] = UInt8(truncatingIfNeeded: xi0) | UInt8(truncatingIfNeeded: xi1 << 4)
        }
    }

    /// `quantize_row_q4_1_impl` for one block; `sigma2` is the row's mean square.
    @inline(__always) static func quantizeBlockWeighted(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                                        _ qw: UnsafePointer<Float>, sigma2: Float,
                                                        weight: UnsafeMutablePointer<Float>,
                                                        L: UnsafeMutablePointer<UInt8>, Laux: UnsafeMutablePointer<UInt8>) {
        for j in 0..<32 { weight[j] = qw[j] * (sigma2 + x[j] * x[j]).squareRoot() }
        var min: Float = 0
        let d = makeQkxQuants(32, 15, x, weight, L, &min, Laux, -0.9, 0.05, 36, false, strictEqual: false)
        storeU16(y, 0, fp32ToFP16(d))
        storeU16(y, 2, fp32ToFP16(-min))
        let qs = (y + 4).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 { qs[j] = L[j] | (L[j + 16] << 4) }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let m = fp16ToFP32(loadU16(b, 2))
            let qs = (b + 4).assumingMemoryBound(to: UInt8.self)
            let y = dst + ib * blockSize
            for j in 0..<16 {
                y[j] = Float(qs[j] & 0x0F) * d + m
                y[j + 16] = Float(qs[j] >> 4) * d + m
            }
        }
    }
}
