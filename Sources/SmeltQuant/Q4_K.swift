import SmeltFormats

/// ggml `q4_K`: super-blocks of 256 values as `d: f16, dmin: f16, scales: [12 bytes]`
/// (eight 6-bit scales and mins), `qs: [128 bytes]` (4-bit quants) (144 bytes);
/// x ≈ d·sc·q − dmin·m per 32-value block.
public enum Q4_K: QuantType {
    public static let ggmlType = GGMLType.q4_K
    static let blockSize = 256, blockBytes = 144

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ4K(src, importance, dst, count); return }
        // floats: weights[32] mins[8] scales[8] sw[8]; bytes: L[256] Laux[32] Ls[8] Lm[8]
        withQuantScratch(floats: 56, bytes: 304) { f, b in
            for ib in 0..<(count / blockSize) {
                let x = src + ib * blockSize, y = dst + ib * blockBytes
                if let qw = importance {
                    KQuant45.quantizeBlockWeighted(x, y, qw + ib * blockSize, nmax: 15, scratch: f, bytes: b)
                } else {
                    KQuant45.quantizeBlockRef(x, y, nmax: 15, scratch: f, bytes: b)
                }
                KQuant45.pack4(y, L: b)
            }
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let min = fp16ToFP32(loadU16(b, 2))
            let scales = (b + 4).assumingMemoryBound(to: UInt8.self)
            var q = (b + 16).assumingMemoryBound(to: UInt8.self)
            var y = dst + ib * blockSize
            for j in 0..<4 {
                var (sc, m) = getScaleMinK4(2 * j, scales)
                let d1 = d * Float(sc), m1 = min * Float(m)
                (sc, m) = getScaleMinK4(2 * j + 1, scales)
                let d2 = d * Float(sc), m2 = min * Float(m)
                for l in 0..<32 { y[l] = d1 * Float(q[l] & 0xF) - m1 }
                for l in 0..<32 { y[32 + l] = d2 * Float(q[l] >> 4) - m2 }
                y += 64
                q += 32
            }
        }
    }
}

/// The parts q4_K and q5_K share (they differ only in nmax = 15 / 31, the ref search
/// parameters and the bit packing).
enum KQuant45 {
    /// Requantizes all 256 values with the stored 6-bit scales/mins into `L`
    /// (blocks with a zero scale keep the first-pass quants, as in ggml).
    @inline(__always) static func requantize(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                             nmax: Int32, _ L: UnsafeMutablePointer<UInt8>) {
        let scales = (y + 4).assumingMemoryBound(to: UInt8.self)
        let dAll = fp16ToFP32(loadU16(y, 0))
        let mAll = fp16ToFP32(loadU16(y, 2))
        for j in 0..<8 {
            let (sc, m) = getScaleMinK4(j, scales)
            let d = dAll * Float(sc)
            if d == 0 { continue }
            let dm = mAll * Float(m)
            for ii in 0..<32 {
                var l = nearestInt((x[32 * j + ii] + dm) / d)
                l = Swift.max(0, Swift.min(nmax, l))
                L[32 * j + ii] = UInt8(truncatingIfNeeded: l)
            }
        }
    }

    /// `quantize_row_q4_K_ref` / `quantize_row_q5_K_ref` up to the final packing
    /// (the quants are left in the first 256 bytes of `b`).
    static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, nmax: Int32,
                                 scratch f: UnsafeMutablePointer<Float>, bytes b: UnsafeMutablePointer<UInt8>) {
        let weights = f, mins = f + 32, scales = f + 40
        let L = b, Laux = b + 256
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0..<8 {
            var sumX2: Float = 0
            for l in 0..<32 { sumX2 += x[32 * j + l] * x[32 * j + l] }
            let avX = (sumX2 / 32).squareRoot()
            for l in 0..<32 { weights[l] = avX + abs(x[32 * j + l]) }
            scales[j] = nmax == 15
                ? makeQkxQuants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1, 0.1, 20, false, strictEqual: true)
                : makeQkxQuants(32, 31, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.5, 0.1, 15, false, strictEqual: true)
            let scale = scales[j]
            if scale > maxScale { maxScale = scale }
            let min = mins[j]
            if min > maxMin { maxMin = min }
        }
        let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
        let s = (y + 4).assumingMemoryBound(to: UInt8.self)
        for j in 0..<8 {
            var ls = UInt8(truncatingIfNeeded: nearestInt(invScale * scales[j]))
            var lm = UInt8(truncatingIfNeeded: nearestInt(invMin * mins[j]))
            ls = Swift.min(63, ls)
            lm = Swift.min(63, lm)
            packScaleMinK4(s, j, ls, lm)
        }
        storeU16(y, 0, fp32ToFP16(maxScale / 63))
        storeU16(y, 2, fp32ToFP16(maxMin / 63))
        requantize(x, y, nmax: nmax, L)
    }

    /// `quantize_row_q4_K_impl` / `quantize_row_q5_K_impl` with importance weights, up to
    /// the final packing.
    static func quantizeBlockWeighted(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                      _ qw: UnsafePointer<Float>, nmax: Int32,
                                      scratch f: UnsafeMutablePointer<Float>, bytes b: UnsafeMutablePointer<UInt8>) {
        let weights = f, mins = f + 32, scales = f + 40, sw = f + 48
        let L = b, Laux = b + 256, Ls = b + 288, Lm = b + 296
        var sumX2: Float = 0
        for l in 0..<256 { sumX2 += x[l] * x[l] }
        let sigma2 = 2 * sumX2 / 256
        for j in 0..<8 {
            let q = qw + 32 * j
            for l in 0..<32 { weights[l] = q[l] * (sigma2 + x[32 * j + l] * x[32 * j + l]).squareRoot() }
            var sumw: Float = 0
            for l in 0..<32 { sumw += weights[l] }
            sw[j] = sumw
            scales[j] = makeQkxQuants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                      -0.9, 0.05, 36, false, strictEqual: false)
        }
        let dBlock = makeQpQuants(8, 63, scales, Ls, sw)
        let mBlock = makeQpQuants(8, 63, mins, Lm, sw)
        let s = (y + 4).assumingMemoryBound(to: UInt8.self)
        for j in 0..<8 {
            var ls = Ls[j], lm = Lm[j]
            if nmax == 31 {  // q5_K clamps, q4_K does not
                ls = Swift.min(63, ls)
                lm = Swift.min(63, lm)
            }
            packScaleMinK4(s, j, ls, lm)
        }
        storeU16(y, 0, fp32ToFP16(dBlock))
        storeU16(y, 2, fp32ToFP16(mBlock))
        requantize(x, y, nmax: nmax, L)
    }

    /// q4_K packing: for each 64 values, 32 bytes of (low 32 | high 32 << 4).
    @inline(__always) static func pack4(_ y: UnsafeMutableRawPointer, L: UnsafePointer<UInt8>) {
        var q = (y + 16).assumingMemoryBound(to: UInt8.self)
        for j in stride(from: 0, to: 256, by: 64) {
            for l in 0..<32 { q[l] = L[j + l] | (L[j + l + 32] << 4) }
            q += 32
        }
    }

    /// q5_K packing: low nibbles as q4_K, the 5th bits in qh (two bits per 64 values).
    @inline(__always) static func pack5(_ y: UnsafeMutableRawPointer, L: UnsafePointer<UInt8>) {
        let qh = (y + 16).assumingMemoryBound(to: UInt8.self)
        var ql = (y + 48).assumingMemoryBound(to: UInt8.self)
        for j in 0..<32 { qh[j] = 0 }
        var m1: UInt8 = 1, m2: UInt8 = 2
        for n in stride(from: 0, to: 256, by: 64) {
            for j in 0..<32 {
                var l1 = L[n + j]
                if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                var l2 = L[n + j + 32]
                if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                ql[j] = l1 | (l2 << 4)
            }
            m1 <<= 2
            m2 <<= 2
            ql += 32
        }
    }
}
