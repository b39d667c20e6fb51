import SmeltFormats

/// ggml `q5_0`: blocks of 32 values as `d: f16, qh: u32 (5th bits), qs: [16 bytes]`
/// (22 bytes); q = nibble | (bit j of qh) << 4, x ≈ d·(q − 16).
public enum Q5_0: QuantType {
    public static let ggmlType = GGMLType.q5_0
    static let blockSize = 32, blockBytes = 22

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ50(src, importance, dst, count); return }
        let nb = count / blockSize
        guard let qw = importance else {
            for ib in 0..<nb { quantizeBlockRef(src + ib * blockSize, dst + ib * blockBytes) }
            return
        }
        var sumX2: Float = 0
        for j in 0..<count { sumX2 += src[j] * src[j] }
        let sigma2 = sumX2 / Float(count)
        withQuantScratch(floats: 32, bytes: 32) { w, l in
            l.withMemoryRebound(to: Int8.self, capacity: 32) { L in
                for ib in 0..<nb {
                    quantizeBlockWeighted(src + ib * blockSize, dst + ib * blockBytes, qw + ib * blockSize,
                                          sigma2: sigma2, weight: w, L: L)
                }
            }
        }
    }

    @inline(__always) static func pack(_ y: UnsafeMutableRawPointer, _ q: (Int) -> UInt8) {
        let qs = (y + 6).assumingMemoryBound(to: UInt8.self)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let xi0 = q(j), xi1 = q(j + 16)
            qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4)
            qh |= ((UInt32(xi0) & 0x10) >> 4) << UInt32(j)
            qh |= ((UInt32(xi1) & 0x10) >> 4) << UInt32(j + 16)
        }
        storeU32(y, 2, qh)
    }

    /// `quantize_row_q5_0_ref` for one block.
    @inline(__always) static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0, max: Float = 0
        for j in 0..<32 {
            let v = x[j]
            if amax < abs(v) { amax = abs(v); max = v }
        }
        let d = max / -16
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(y, 0, fp32ToFP16(d))
        pack(y) { j in
            UInt8(truncatingIfNeeded: Swift.min(31, Int32(Int8(truncatingIfNeeded: truncToInt32(x[j] * id + 16.5)))))
        }
    }

    /// `quantize_row_q5_0_impl` for one block; `sigma2` is the row's mean square.
    @inline(__always) static func quantizeBlockWeighted(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                                        _ qw: UnsafePointer<Float>, sigma2: Float,
                                                        weight: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<Int8>) {
        for j in 0..<32 { weight[j] = qw[j] * (sigma2 + x[j] * x[j]).squareRoot() }
        let d = makeQxQuants(32, 16, x, L, UnsafePointer(weight))
        storeU16(y, 0, fp32ToFP16(d))
        pack(y) { j in UInt8(bitPattern: L[j]) }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let qh = loadU32(b, 2)
            let qs = (b + 6).assumingMemoryBound(to: UInt8.self)
            let y = dst + ib * blockSize
            for j in 0..<16 {
                let xh0 = ((qh >> UInt32(j)) << 4) & 0x10
                let xh1 = (qh >> UInt32(j + 12)) & 0x10
                let x0 = Int32((UInt32(qs[j] & 0x0F) | xh0)) - 16
                let x1 = Int32((UInt32(qs[j] >> 4) | xh1)) - 16
                y[j] = Float(x0) * d
                y[j + 16] = Float(x1) * d
            }
        }
    }
}
