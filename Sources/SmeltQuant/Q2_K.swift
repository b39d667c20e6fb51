import SmeltFormats

/// ggml `q2_K`: super-blocks of 256 values as `scales: [16 bytes]` (4-bit scale | 4-bit min
/// per 16 values), `qs: [64 bytes]` (2-bit quants), `d: f16`, `dmin: f16` (84 bytes);
/// x ≈ d·sc·q − dmin·m.
public enum Q2_K: QuantType {
    public static let ggmlType = GGMLType.q2_K
    static let blockSize = 256, blockBytes = 84

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ2K(src, importance, dst, count); return }
        // floats: weights[16] mins[16] scales[16] sw[16]; bytes: L[256] Laux[16] Ls[16] Lm[16]
        withQuantScratch(floats: 64, bytes: 304) { f, b in
            for ib in 0..<(count / blockSize) {
                let x = src + ib * blockSize, y = dst + ib * blockBytes
                if let qw = importance {
                    quantizeBlockWeighted(x, y, qw + ib * blockSize, scratch: f, bytes: b)
                } else {
                    quantizeBlockRef(x, y, scratch: f, bytes: b)
                }
            }
        }
    }

    @inline(__always) static func finish(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                         _ L: UnsafeMutablePointer<UInt8>) {
        let sc = y.assumingMemoryBound(to: UInt8.self)
        let dAll = fp16ToFP32(loadU16(y, 80))
        let mAll = fp16ToFP32(loadU16(y, 82))
        for j in 0..<16 {
            let d = dAll * Float(sc[j] & 0xF)
            if d == 0 { continue }
            let dm = mAll * Float(sc[j] >> 4)
            for ii in 0..<16 {
                var l = nearestInt((x[16 * j + ii] + dm) / d)
                l = Swift.max(0, Swift.min(3, l))
                L[16 * j + ii] = UInt8(truncatingIfNeeded: l)
            }
        }
        pack2BitK(sc + 16, L)
    }

    /// `quantize_row_q2_K_ref` for one super-block.
    static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                 scratch f: UnsafeMutablePointer<Float>, bytes b: UnsafeMutablePointer<UInt8>) {
        let weights = f, mins = f + 16, scales = f + 32
        let L = b, Laux = b + 256
        let q4scale: Float = 15
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0..<16 {
            for l in 0..<16 { weights[l] = abs(x[16 * j + l]) }
            scales[j] = makeQkxQuants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                      -0.5, 0.1, 15, true, strictEqual: true)
            let scale = scales[j]
            if scale > maxScale { maxScale = scale }
            let min = mins[j]
            if min > maxMin { maxMin = min }
        }
        let sc = y.assumingMemoryBound(to: UInt8.self)
        if maxScale > 0 {
            let iscale = q4scale / maxScale
            for j in 0..<16 { sc[j] = UInt8(truncatingIfNeeded: nearestInt(iscale * scales[j])) }
            storeU16(y, 80, fp32ToFP16(maxScale / q4scale))
        } else {
            for j in 0..<16 { sc[j] = 0 }
            storeU16(y, 80, fp32ToFP16(0))
        }
        if maxMin > 0 {
            let iscale = q4scale / maxMin
            for j in 0..<16 {
                let l = nearestInt(iscale * mins[j])
                sc[j] = UInt8(truncatingIfNeeded: Int32(sc[j]) | (l << 4))
            }
            storeU16(y, 82, fp32ToFP16(maxMin / q4scale))
        } else {
            storeU16(y, 82, fp32ToFP16(0))
        }
        finish(x, y, L)
    }

    /// `quantize_row_q2_K_impl` (importance weights) for one super-block.
    static func quantizeBlockWeighted(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                      _ qw: UnsafePointer<Float>,
                                      scratch f: UnsafeMutablePointer<Float>, bytes b: UnsafeMutablePointer<UInt8>) {
        let weight = f, mins = f + 16, scales = f + 32, sw = f + 48
        let L = b, Laux = b + 256, Ls = b + 272, Lm = b + 288
        for j in 0..<16 { sw[j] = 0 }
        var sumx2: Float = 0
        for j in 0..<256 { sumx2 += x[j] * x[j] }
        let sigma2 = sumx2 / 256
        for j in 0..<16 {
            let q = qw + 16 * j
            for l in 0..<16 { weight[l] = q[l] * (sigma2 + x[16 * j + l] * x[16 * j + l]).squareRoot() }
            for l in 0..<16 { sw[j] += weight[l] }
            scales[j] = makeQkxQuants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux,
                                      -0.9, 0.05, 36, false, strictEqual: false)
        }
        let dm = makeQpQuants(16, 15, scales, Ls, sw)
        let mm = makeQpQuants(16, 15, mins, Lm, sw)
        storeU16(y, 80, fp32ToFP16(dm))
        storeU16(y, 82, fp32ToFP16(mm))
        let sc = y.assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 { sc[j] = Ls[j] | (Lm[j] << 4) }
        finish(x, y, L)
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 80))
            let min = fp16ToFP32(loadU16(b, 82))
            let scales = b.assumingMemoryBound(to: UInt8.self)
            var q = scales + 16
            var y = dst + ib * blockSize
            var isc = 0
            for _ in 0..<2 {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    var sc = scales[isc]; isc += 1
                    var dl = d * Float(sc & 0xF), ml = min * Float(sc >> 4)
                    for l in 0..<16 { y[l] = dl * Float((q[l] >> shift) & 3) - ml }
                    y += 16
                    sc = scales[isc]; isc += 1
                    dl = d * Float(sc & 0xF); ml = min * Float(sc >> 4)
                    for l in 0..<16 { y[l] = dl * Float((q[l + 16] >> shift) & 3) - ml }
                    y += 16
                    shift += 2
                }
                q += 32
            }
        }
    }
}
