import SmeltFormats

/// ggml `q3_K`: super-blocks of 256 values as `hmask: [32 bytes]` (3rd bit), `qs: [64 bytes]`
/// (low 2 bits), `scales: [12 bytes]` (16 signed 6-bit scales), `d: f16` (110 bytes);
/// x ≈ d·(sc − 32)·(q − 4).
public enum Q3_K: QuantType {
    public static let ggmlType = GGMLType.q3_K
    static let blockSize = 256, blockBytes = 110

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ3K(src, importance, dst, count); return }
        // floats: scales[16] weight[16] sw[16]; bytes: L[256] Ls[16]
        withQuantScratch(floats: 48, bytes: 272) { f, b in
            b.withMemoryRebound(to: Int8.self, capacity: 272) { L in
                for ib in 0..<(count / blockSize) {
                    let x = src + ib * blockSize, y = dst + ib * blockBytes
                    if let qw = importance {
                        quantizeBlockWeighted(x, y, qw + ib * blockSize, scratch: f, L: L)
                    } else {
                        quantizeBlockRef(x, y, scratch: f, L: L)
                    }
                }
            }
        }
    }

    /// Requantizes with the stored scales (keeping the first-pass quants of blocks whose
    /// scale is zero, as ggml does) and packs hmask and qs.
    @inline(__always) static func finish(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                         _ L: UnsafeMutablePointer<Int8>) {
        let p = y.assumingMemoryBound(to: UInt8.self)
        let s = p + 96
        let dAll = fp16ToFP32(loadU16(y, 108))
        for j in 0..<16 {
            let d = dAll * Float(scaleQ3K(s, j))
            if d == 0 { continue }
            for ii in 0..<16 {
                var l = nearestInt(x[16 * j + ii] / d)
                l = Swift.max(-4, Swift.min(3, l))
                L[16 * j + ii] = Int8(truncatingIfNeeded: l + 4)
            }
        }
        let hmask = p
        for j in 0..<32 { hmask[j] = 0 }
        var m = 0
        var hm: UInt8 = 1
        for j in 0..<256 {
            if L[j] > 3 {
                hmask[m] |= hm
                L[j] -= 4
            }
            m += 1
            if m == 32 { m = 0; hm <<= 1 }
        }
        L.withMemoryRebound(to: UInt8.self, capacity: 256) { pack2BitK(p + 32, $0) }
    }

    /// `quantize_row_q3_K_ref` for one super-block.
    static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                 scratch f: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<Int8>) {
        let scales = f
        var maxScale: Float = 0, amax: Float = 0
        for j in 0..<16 {
            scales[j] = makeQ3Quants(16, 4, x + 16 * j, L + 16 * j)
            let scale = abs(scales[j])
            if scale > amax { amax = scale; maxScale = scales[j] }
        }
        let s = (y + 96).assumingMemoryBound(to: UInt8.self)
        for j in 0..<12 { s[j] = 0 }
        if maxScale != 0 {
            let iscale = -32 / maxScale
            for j in 0..<16 {
                var l = Int8(truncatingIfNeeded: nearestInt(iscale * scales[j]))
                l = Swift.max(-32, Swift.min(31, l)) + 32
                packScalesQ3K(s, j, UInt8(bitPattern: l))
            }
            storeU16(y, 108, fp32ToFP16(1 / iscale))
        } else {
            storeU16(y, 108, fp32ToFP16(0))
        }
        finish(x, y, L)
    }

    /// `quantize_row_q3_K_impl` (importance weights) for one super-block.
    static func quantizeBlockWeighted(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                      _ qw: UnsafePointer<Float>,
                                      scratch f: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<Int8>) {
        let scales = f, weight = f + 16, sw = f + 32
        let Ls = L + 256
        var sumx2: Float = 0
        for j in 0..<256 { sumx2 += x[j] * x[j] }
        let sigma2 = 2 * sumx2 / 256
        for j in 0..<16 {
            let q = qw + 16 * j
            for l in 0..<16 { weight[l] = q[l] * (sigma2 + x[16 * j + l] * x[16 * j + l]).squareRoot() }
            var sumw: Float = 0
            for l in 0..<16 { sumw += weight[l] }
            sw[j] = sumw
            scales[j] = makeQxQuants(16, 4, x + 16 * j, L + 16 * j, UnsafePointer(weight))
        }
        let s = (y + 96).assumingMemoryBound(to: UInt8.self)
        for j in 0..<12 { s[j] = 0 }
        let dBlock = makeQxQuants(16, 32, scales, Ls, UnsafePointer(sw))
        for j in 0..<16 { packScalesQ3K(s, j, UInt8(bitPattern: Ls[j])) }
        storeU16(y, 108, fp32ToFP16(dBlock))
        finish(x, y, L)
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src.advanced(by: ib * blockBytes).assumingMemoryBound(to: UInt8.self)
            let dAll = fp16ToFP32(loadU16(UnsafeRawPointer(b), 108))
            let hm = b
            var q = b + 32
            let s = b + 96
            var y = dst + ib * blockSize
            var m: UInt8 = 1
            var isc = 0
            for _ in 0..<2 {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    for half in 0..<2 {
                        let dl = dAll * Float(Int32(scaleQ3K(s, isc)))
                        isc += 1
                        let qq = q + 16 * half, hh = hm + 16 * half
                        for l in 0..<16 {
                            let lo = Int32((qq[l] >> shift) & 3)
                            y[l] = dl * Float(lo - ((hh[l] & m) != 0 ? 0 : 4))
                        }
                        y += 16
                    }
                    shift += 2
                    m <<= 1
                }
                q += 32
            }
        }
    }
}
