import SmeltFormats

/// ggml `q5_1`: blocks of 32 values as `d: f16, m: f16, qh: u32 (5th bits), qs: [16 bytes]`
/// (24 bytes); q = nibble | (bit j of qh) << 4, x ≈ d·q + m.
public enum Q5_1: QuantType {
    public static let ggmlType = GGMLType.q5_1
    static let blockSize = 32, blockBytes = 24

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ51(src, importance, dst, count); return }
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

    @inline(__always) static func pack(_ y: UnsafeMutableRawPointer, _ q: (Int) -> UInt8) {
        let qs = (y + 8).assumingMemoryBound(to: UInt8.self)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let xi0 = q(j), xi1 = q(j + 16)
            qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4)
            qh |= ((UInt32(xi0) & 0x10) >> 4) << UInt32(j)
            qh |= ((UInt32(xi1) & 0x10) >> 4) << UInt32(j + 16)
        }
        storeU32(y, 4, qh)
    }

    /// `quantize_row_q5_1_ref` for one block.
    @inline(__always) static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var min = Float.greatestFiniteMagnitude
        var max = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            let v = x[j]
            if v < min { min = v }
            if v > max { max = v }
        }
        let d = (max - min) / 31
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(y, 0, fp32ToFP16(d))
        storeU16(y, 2, fp32ToFP16(min))
        pack(y) { j in UInt8(truncatingIfNeeded: truncToInt32((x[j] - min) * id + 0.5)) }
    }

    /// `quantize_row_q5_1_impl` for one block; `sigma2` is the row's mean square.
    @inline(__always) static func quantizeBlockWeighted(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                                        _ qw: UnsafePointer<Float>, sigma2: Float,
                                                        weight: UnsafeMutablePointer<Float>,
                                                        L: UnsafeMutablePointer<UInt8>, Laux: UnsafeMutablePointer<UInt8>) {
        for j in 0..<32 { weight[j] = qw[j] * (sigma2 + x[j] * x[j]).squareRoot() }
        var min: Float = 0
        let d = makeQkxQuants(32, 31, x, weight, L, &min, Laux, -0.9, 0.05, 36, false, strictEqual: false)
        storeU16(y, 0, fp32ToFP16(d))
        storeU16(y, 2, fp32ToFP16(-min))
        pack(y) { j in L[j] }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let m = fp16ToFP32(loadU16(b, 2))
            let qh = loadU32(b, 4)
            let qs = (b + 8).assumingMemoryBound(to: UInt8.self)
            let y = dst + ib * blockSize
            for j in 0..<16 {
                let xh0 = ((qh >> UInt32(j)) << 4) & 0x10
                let xh1 = (qh >> UInt32(j + 12)) & 0x10
                let x0 = Int32(UInt32(qs[j] & 0x0F) | xh0)
                let x1 = Int32(UInt32(qs[j] >> 4) | xh1)
                y[j] = Float(x0) * d + m
                y[j + 16] = Float(x1) * d + m
            }
        }
    }
}
