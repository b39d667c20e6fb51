import SmeltFormats

/// ggml `iq1_m` (1.75 bpw): super-blocks of 256 as 32 groups of 8 ternary
/// values from the 2048-point `iq1s_grid`, a ±1/8 shift per 8 values, 3-bit
/// scales per 16 values and an f16 super-scale spread over the scale nibbles.
/// Works with or without importance weights (ggml allows both).
public enum IQ1_M: QuantType {
    public static var ggmlType: GGMLType { .iq1_m }
    static let blockBytes = 56
    static let delta: Float = 0.125

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.quantizeRowIQGrid(.iq1_m, src, importance, dst, count) { return }
        iqQuantizeRow("iq1_m", src, dst, count: count, importance: importance, requiresImportance: false,
                      tables: IQGridTables.iq1, blockBytes: blockBytes) { x, w, y, t, s in quantizeBlock(x, w, y, t, s) }
    }

    /// One super-block, as ggml's `quantize_row_iq1_m_impl` loop body.
    @inline(__always)
    static func quantizeBlock(_ xbl: UnsafePointer<Float>, _ qwbl: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
                              _ T: IQGridTables, _ scratch: UnsafeMutableRawPointer) {
        let blockSize = 16
        let f = scratch.bindMemory(to: Float.self, capacity: 64)
        let scales = f, weight = f + 16, val = f + 32, xp = f + 48, xm = f + 52
        let idx = (scratch + 1024).bindMemory(to: Int32.self, capacity: 16)
        let L = (scratch + 2048).bindMemory(to: Int8.self, capacity: 16)
        let shifts = (scratch + 3072).bindMemory(to: Int8.self, capacity: 16)
        let index = (scratch + 3088).bindMemory(to: UInt16.self, capacity: 2)
        xp[0] = -1 + delta; xp[1] = delta; xp[2] = 1 + delta
        xm[0] = -1 - delta; xm[1] = -delta; xm[2] = 1 - delta
        let masks: (UInt8, UInt8, UInt8, UInt8) = (0x00, 0x80, 0x08, 0x88)
        let qsOff = 0, qhOff = 32, scOff = 48

        for i in 0..<blockBytes { y.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
        var maxScale: Float = 0
        var sumx2: Float = 0
        for i in 0..<iqQK { sumx2 += xbl[i] * xbl[i] }
        let sigma2 = 2 * sumx2 / Float(iqQK)

        @inline(__always) func computeWeights(_ ib: Int, _ xb: UnsafePointer<Float>) {
            if let qwbl {
                let qw = qwbl + blockSize * ib
                for i in 0..<blockSize { weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).squareRoot() }
            } else {
                for i in 0..<blockSize { weight[i] = xb[i] * xb[i] }
            }
        }

        for ib in 0..<(iqQK / blockSize) {
            let xb = xbl + blockSize * ib
            computeWeights(ib, xb)
            var max = abs(xb[0])
            for i in 1..<blockSize { max = iqMax(max, abs(xb[i])) }
            if max < 1e-7 {
                scales[ib] = 0; shifts[ib] = 0
                for i in 0..<blockSize { L[i] = 1 }
                continue
            }
            iqSortPairs(xb, blockSize, val, idx)
            var bestScore = -Float.greatestFiniteMagnitude, scale = max
            var besti1 = -1, besti2 = -1, bestK = -1
            // k: 0 = (+,+), 1 = (+,-), 2 = (-,+), 3 = (-,-) shifts of the two groups of 8.
            for i1 in 0...blockSize {
                for i2 in i1...blockSize {
                    var qx0: Float = 0, qx1: Float = 0, qx2: Float = 0, qx3: Float = 0
                    var q20: Float = 0, q21: Float = 0, q22: Float = 0, q23: Float = 0
                    for j in 0..<blockSize {
                        let g = j < i1 ? 0 : (j < i2 ? 1 : 2)
                        let i = Int(idx[j])
                        let w = weight[i]
                        let a = w * xp[g] * xb[i], b = w * xm[g] * xb[i]
                        let qa = w * xp[g] * xp[g], qb = w * xm[g] * xm[g]
                        if i < blockSize / 2 {
                            qx0 += a; qx1 += a; qx2 += b; qx3 += b
                            q20 += qa; q21 += qa; q22 += qb; q23 += qb
                        } else {
                            qx0 += a; qx2 += a; qx1 += b; qx3 += b
                            q20 += qa; q22 += qa; q21 += qb; q23 += qb
                        }
                    }
                    if q20 > 0 && qx0 * qx0 > bestScore * q20 {
                        scale = qx0 / q20; bestScore = scale * qx0; besti1 = i1; besti2 = i2; bestK = 0
                    }
                    if q21 > 0 && qx1 * qx1 > bestScore * q21 {
                        scale = qx1 / q21; bestScore = scale * qx1; besti1 = i1; besti2 = i2; bestK = 1
                    }
                    if q22 > 0 && qx2 * qx2 > bestScore * q22 {
                        scale = qx2 / q22; bestScore = scale * qx2; besti1 = i1; besti2 = i2; bestK = 2
                    }
                    if q23 > 0 && qx3 * qx3 > bestScore * q23 {
                        scale = qx3 / q23; bestScore = scale * qx3; besti1 = i1; besti2 = i2; bestK = 3
                    }
                }
            }
            if besti1 < 0 || besti2 < 0 || bestK < 0 {
                scales[ib] = 0; shifts[ib] = 0
                for i in 0..<blockSize { L[i] = 1 }
                continue
            }
            for j in 0..<besti1 { L[Int(idx[j])] = 0 }
            for j in besti1..<besti2 { L[Int(idx[j])] = 1 }
            for j in besti2..<blockSize { L[Int(idx[j])] = 2 }
            if scale < 0 {
                for j in 0..<blockSize { L[j] = 2 - L[j] }
                scale = -scale
                bestK = 3 - bestK
            }
            var allOnGrid = true
            for k in 0..<2 {
                let xx = k == 0 ? (bestK < 2 ? xp : xm) : (bestK % 2 == 0 ? xp : xm)
                var u = 0
                for j in 0..<8 { u |= Int(L[8 * k + j]) << (2 * j) }
                var gridIndex = Int(T.map[u])
                if gridIndex < 0 {
                    allOnGrid = false
                    gridIndex = iqFindBestNeighbour1(T.neighbourList(u), T.grid, T.gridSize, xb + 8 * k, weight + 8 * k,
                                                     scale, xx, L + 8 * k)
                }
                index[k] = UInt16(gridIndex)
            }
            if !allOnGrid {
                var sumqx: Float = 0, sumq2: Float = 0
                for k in 0..<2 {
                    let xx = k == 0 ? (bestK < 2 ? xp : xm) : (bestK % 2 == 0 ? xp : xm)
                    let pg = T.grid + 8 * Int(index[k])
                    for j in 0..<8 {
                        let w = weight[8 * k + j]
                        let q = xx[Int((pg[j] - 1) / 2)]
                        sumqx += w * q * xb[8 * k + j]
                        sumq2 += w * q * q
                    }
                }
                if sumqx > 0 && sumq2 > 0 { scale = sumqx / sumq2 }
            }
            y.storeBytes(of: UInt8(index[0] & 255), toByteOffset: qsOff + 2 * ib, as: UInt8.self)
            y.storeBytes(of: UInt8(index[1] & 255), toByteOffset: qsOff + 2 * ib + 1, as: UInt8.self)
            y.storeBytes(of: UInt8((index[0] >> 8) | ((index[1] >> 8) << 4)), toByteOffset: qhOff + ib, as: UInt8.self)
            scales[ib] = scale
            shifts[ib] = Int8(bestK)
            maxScale = iqMax(maxScale, scale)
        }

        if maxScale == 0 { return }
        var d = maxScale / 15
        let id = 1 / d
        var sumqx: Float = 0, sumq2: Float = 0
        for ib in 0..<(iqQK / blockSize) {
            let l = iqClamp(nearestInt(0.5 * (id * scales[ib] - 1)), 0, 7)
            let scOffset = scOff + 2 * (ib / 4)
            storeU16(y, scOffset, loadU16(y, scOffset) | UInt16(l << (3 * Int32(ib % 4))))
            let sh = Int(shifts[ib])
            let mask = sh == 0 ? masks.0 : sh == 1 ? masks.1 : sh == 2 ? masks.2 : masks.3
            let qh = y.load(fromByteOffset: qhOff + ib, as: UInt8.self) | mask
            y.storeBytes(of: qh, toByteOffset: qhOff + ib, as: UInt8.self)
            let xb = xbl + blockSize * ib
            computeWeights(ib, xb)
            let fl = Float(2 * l + 1)
            for k in 0..<2 {
                let xx = k == 0 ? (sh < 2 ? xp : xm) : (sh % 2 == 0 ? xp : xm)
                let gi = Int(y.load(fromByteOffset: qsOff + 2 * ib + k, as: UInt8.self)) + ((Int(qh) << (8 - 4 * k)) & 0x700)
                let pg = T.grid + 8 * gi
                for j in 0..<8 {
                    let w = weight[8 * k + j]
                    let q = xx[Int((pg[j] - 1) / 2)] * fl
                    sumqx += w * q * xb[8 * k + j]
                    sumq2 += w * q * q
                }
            }
        }
        if sumq2 > 0 { d = sumqx / sumq2 }
        let s = FloatFormats.floatToHalf(d * 1.1125)
        for (j, part) in [(s & 0x000f) << 12, (s & 0x00f0) << 8, (s & 0x0f00) << 4, s & 0xf000].enumerated() {
            storeU16(y, scOff + 2 * j, loadU16(y, scOff + 2 * j) | part)
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let grid = IQDequantTables.iq1s
        for i in 0..<(count / iqQK) {
            let x = src + blockBytes * i
            var y = dst + iqQK * i
            let sc0 = loadU16(x, 48), sc1 = loadU16(x, 50), sc2 = loadU16(x, 52), sc3 = loadU16(x, 54)
            let u16 = (sc0 >> 12) | ((sc1 >> 8) & 0x00f0) | ((sc2 >> 4) & 0x0f00) | (sc3 & 0xf000)
            let d = FloatFormats.halfToFloat(u16)
            for ib in 0..<8 {
                let sc = loadU16(x, 48 + 2 * (ib / 2))
                let dl1 = d * Float(2 * Int32((sc >> UInt16(6 * (ib % 2) + 0)) & 0x7) + 1)
                let dl2 = d * Float(2 * Int32((sc >> UInt16(6 * (ib % 2) + 3)) & 0x7) + 1)
                let qh0 = Int(x.load(fromByteOffset: 32 + 2 * ib, as: UInt8.self))
                let qh1 = Int(x.load(fromByteOffset: 32 + 2 * ib + 1, as: UInt8.self))
                let qs = x + 4 * ib
                let idx = (Int(qs.load(fromByteOffset: 0, as: UInt8.self)) | ((qh0 << 8) & 0x700),
                           Int(qs.load(fromByteOffset: 1, as: UInt8.self)) | ((qh0 << 4) & 0x700),
                           Int(qs.load(fromByteOffset: 2, as: UInt8.self)) | ((qh1 << 8) & 0x700),
                           Int(qs.load(fromByteOffset: 3, as: UInt8.self)) | ((qh1 << 4) & 0x700))
                let delta: (Float, Float, Float, Float) = ((qh0 & 0x08) != 0 ? -Self.delta : Self.delta,
                                                           (qh0 & 0x80) != 0 ? -Self.delta : Self.delta,
                                                           (qh1 & 0x08) != 0 ? -Self.delta : Self.delta,
                                                           (qh1 & 0x80) != 0 ? -Self.delta : Self.delta)
                for l in 0..<4 {
                    let gi = l == 0 ? idx.0 : l == 1 ? idx.1 : l == 2 ? idx.2 : idx.3
                    let dt = l == 0 ? delta.0 : l == 1 ? delta.1 : l == 2 ? delta.2 : delta.3
                    let dl = l < 2 ? dl1 : dl2
                    let g = grid + 8 * gi
                    for j in 0..<8 {
                        y[j] = dl * (Float(Int8(bitPattern: g[j])) + dt)
                    }
                    y += 8
                }
            }
        }
    }
}
