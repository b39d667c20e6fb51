import SmeltFormats

/// ggml `q6_K`: super-blocks of 256 values as `ql: [128 bytes]` (low 4 bits), `qh: [64 bytes]`
/// (high 2 bits), `scales: [16 × int8]`, `d: f16` (210 bytes); x ≈ d·sc·(q − 32) per
/// 16-value block.
public enum Q6_K: QuantType {
    public static let ggmlType = GGMLType.q6_K
    static let blockSize = 256, blockBytes = 210

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ6K(src, importance, dst, count); return }
        withQuantScratch(floats: 16, bytes: 256) { f, b in
            b.withMemoryRebound(to: Int8.self, capacity: 256) { L in
                for ib in 0..<(count / blockSize) {
                    quantizeBlock(src + ib * blockSize, dst + ib * blockBytes,
                                  importance.map { $0 + ib * blockSize }, scales: f, L: L)
                }
            }
        }
    }

    /// `quantize_row_q6_K_ref` (qw nil) / `quantize_row_q6_K_impl` for one super-block.
    static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ qw: UnsafePointer<Float>?,
                              scales: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<Int8>) {
        var maxScale: Float = 0, maxAbsScale: Float = 0
        for ib in 0..<16 {
            let scale = makeQxQuants(16, 32, x + 16 * ib, L + 16 * ib, qw.map { $0 + 16 * ib })
            scales[ib] = scale
            let absScale = abs(scale)
            if absScale > maxAbsScale { maxAbsScale = absScale; maxScale = scale }
        }
        let p = y.assumingMemoryBound(to: UInt8.self)
        if maxAbsScale < groupMaxEps {
            for j in 0..<210 { p[j] = 0 }
            storeU16(y, 208, fp32ToFP16(0))
            return
        }
        let iscale = -128 / maxScale
        storeU16(y, 208, fp32ToFP16(1 / iscale))
        let sc = (y + 192).assumingMemoryBound(to: Int8.self)
        for ib in 0..<16 {
            sc[ib] = Int8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * scales[ib])))
        }
        let dAll = fp16ToFP32(loadU16(y, 208))
        for j in 0..<16 {
            let d = dAll * Float(sc[j])
            if d == 0 { continue }
            for ii in 0..<16 {
                var l = nearestInt(x[16 * j + ii] / d)
                l = Swift.max(-32, Swift.min(31, l))
                L[16 * j + ii] = Int8(truncatingIfNeeded: l + 32)
            }
        }
        var ql = p
        var qh = p + 128
        L.withMemoryRebound(to: UInt8.self, capacity: 256) { L in
            for j in stride(from: 0, to: 256, by: 128) {
                for l in 0..<32 {
                    let q1 = L[j + l] & 0xF
                    let q2 = L[j + l + 32] & 0xF
                    let q3 = L[j + l + 64] & 0xF
                    let q4 = L[j + l + 96] & 0xF
                    ql[l] = q1 | (q3 << 4)
                    ql[l + 32] = q2 | (q4 << 4)
                    qh[l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4)
                        | ((L[j + l + 96] >> 4) << 6)
                }
                ql += 64
                qh += 32
            }
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 208))
            var ql = b.assumingMemoryBound(to: UInt8.self)
            var qh = ql + 128
            var sc = (b + 192).assumingMemoryBound(to: Int8.self)
            var y = dst + ib * blockSize
            for _ in 0..<2 {
                for l in 0..<32 {
                    let isc = l / 16
                    let q1 = Int8(bitPattern: (ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32
                    let q2 = Int8(bitPattern: (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32
                    let q3 = Int8(bitPattern: (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                    let q4 = Int8(bitPattern: (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                    y[l] = d * Float(sc[isc]) * Float(q1)
                    y[l + 32] = d * Float(sc[isc + 2]) * Float(q2)
                    y[l + 64] = d * Float(sc[isc + 4]) * Float(q3)
                    y[l + 96] = d * Float(sc[isc + 6]) * Float(q4)
                }
                y += 128
                ql += 64
                qh += 32
                sc += 8
            }
        }
    }
}
