import SmeltFormats

/// ggml `iq1_s` (1.5625 bpw): super-blocks of 256 as 32 groups of 8 ternary
/// values from the 2048-point `iq1s_grid` (11-bit index), a ±1/8 shift and a
/// 3-bit scale per 32 values under one f16 scale. Needs importance weights
/// (ggml refuses to quantize without; calling without traps).
public enum IQ1_S: QuantType {
    public static var ggmlType: GGMLType { .iq1_s }
    public static var requiresImportance: Bool { true }
    static let blockBytes = 50
    static let delta: Float = 0.125

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.quantizeRowIQGrid(.iq1_s, src, importance, dst, count) { return }
        iqQuantizeRow("iq1_s", src, dst, count: count, importance: importance, requiresImportance: true,
                      tables: IQGridTables.iq1, blockBytes: blockBytes) { x, w, y, t, s in quantizeBlock(x, w!, y, t, s) }
    }

    /// One super-block, as ggml's `quantize_row_iq1_s_impl` loop body.
    @inline(__always)
    static func quantizeBlock(_ xbl: UnsafePointer<Float>, _ qwbl: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                              _ T: IQGridTables, _ scratch: UnsafeMutableRawPointer) {
        let blockSize = 32
        let f = scratch.bindMemory(to: Float.self, capacity: 192)
        let scales = f, weight = f + 8, sumx = f + 40, sumw = f + 80, val = f + 120, xp = f + 160, xm = f + 164
        let idx = (scratch + 1024).bindMemory(to: Int32.self, capacity: 32)
        let L = (scratch + 2048).bindMemory(to: Int8.self, capacity: 32)
        let shifts = (scratch + 3072).bindMemory(to: Int8.self, capacity: 8)
        let index = (scratch + 3088).bindMemory(to: UInt16.self, capacity: 4)
        xp[0] = -1 + delta; xp[1] = delta; xp[2] = 1 + delta
        xm[0] = -1 - delta; xm[1] = -delta; xm[2] = 1 - delta
        let qsOff = 2, qhOff = 34

        for i in 0..<blockBytes { y.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
        var maxScale: Float = 0
        var sumx2: Float = 0
        for i in 0..<iqQK { sumx2 += xbl[i] * xbl[i] }
        let sigma2 = 2 * sumx2 / Float(iqQK)

        for ib in 0..<(iqQK / blockSize) {
            let xb = xbl + blockSize * ib
            let qw = qwbl + blockSize * ib
            for i in 0..<blockSize { weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).squareRoot() }
            var max = abs(xb[0])
            for i in 1..<blockSize { max = iqMax(max, abs(xb[i])) }
            if max < 1e-12 {
                scales[ib] = 0; shifts[ib] = 1
                for i in 0..<blockSize { L[i] = 1 }
                continue
            }
            iqSortPairs(xb, blockSize, val, idx)
            sumx[0] = 0; sumw[0] = 0
            for j in 0..<blockSize {
                let i = Int(idx[j])
                sumx[j + 1] = sumx[j] + weight[i] * xb[i]
                sumw[j + 1] = sumw[j] + weight[i]
            }
            var bestScore = -Float.greatestFiniteMagnitude, scale = max
            var besti1 = -1, besti2 = -1, bestShift = 0
            for i1 in 0...blockSize {
                for i2 in i1...blockSize {
                    var sumqx = (sumx[i1] - sumx[0]) * xp[0] + (sumx[i2] - sumx[i1]) * xp[1] + (sumx[blockSize] - sumx[i2]) * xp[2]
                    var sumq2 = (sumw[i1] - sumw[0]) * xp[0] * xp[0] + (sumw[i2] - sumw[i1]) * xp[1] * xp[1]
                        + (sumw[blockSize] - sumw[i2]) * xp[2] * xp[2]
                    if sumq2 > 0 && sumqx * sumqx > bestScore * sumq2 {
                        scale = sumqx / sumq2; bestScore = scale * sumqx
                        besti1 = i1; besti2 = i2; bestShift = 1
                    }
                    sumqx = (sumx[i1] - sumx[0]) * xm[0] + (sumx[i2] - sumx[i1]) * xm[1] + (sumx[blockSize] - sumx[i2]) * xm[2]
                    sumq2 = (sumw[i1] - sumw[0]) * xm[0] * xm[0] + (sumw[i2] - sumw[i1]) * xm[1] * xm[1]
                        + (sumw[blockSize] - sumw[i2]) * xm[2] * xm[2]
                    if sumq2 > 0 && sumqx * sumqx > bestScore * sumq2 {
                        scale = sumqx / sumq2; bestScore = scale * sumqx
                        besti1 = i1; besti2 = i2; bestShift = -1
                    }
                }
            }
            if besti1 < 0 || besti2 < 0 || bestShift == 0 {
                scales[ib] = 0; shifts[ib] = 1
                for i in 0..<blockSize { L[i] = 1 }
                continue
            }
            for j in 0..<besti1 { L[Int(idx[j])] = 0 }
            for j in besti1..<besti2 { L[Int(idx[j])] = 1 }
            for j in besti2..<blockSize { L[Int(idx[j])] = 2 }
            if scale < 0 {
                for j in 0..<blockSize { L[j] = 2 - L[j] }
                scale = -scale; bestShift = -bestShift
            }
            var allOnGrid = true
            let xx = bestShift == 1 ? xp : xm
            for k in 0..<(blockSize / 8) {
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
                for k in 0..<(blockSize / 8) {
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
            var h: UInt16 = 0
            for k in 0..<(blockSize / 8) {
                y.storeBytes(of: UInt8(index[k] & 255), toByteOffset: qsOff + (blockSize / 8) * ib + k, as: UInt8.self)
                h |= (index[k] >> 8) << (3 * UInt16(k))
            }
            storeU16(y, qhOff + 2 * ib, h)
            scales[ib] = scale
            shifts[ib] = Int8(bestShift)
            maxScale = iqMax(maxScale, scale)
        }

        if maxScale == 0 { return }
        let d = maxScale / 15
        iqStoreHalf(y, 0, d * 1.125)
        let id = 1 / d
        for ib in 0..<(iqQK / blockSize) {
            var l = iqClamp(nearestInt(0.5 * (id * scales[ib] - 1)), 0, 7)
            if shifts[ib] == -1 { l |= 8 }
            storeU16(y, qhOff + 2 * ib, loadU16(y, qhOff + 2 * ib) | UInt16(l << 12))
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let grid = IQDequantTables.iq1s
        for i in 0..<(count / iqQK) {
            let x = src + blockBytes * i
            var y = dst + iqQK * i
            let d = iqLoadHalf(x, 0)
            for ib in 0..<8 {
                let qh = loadU16(x, 34 + 2 * ib)
                let dl = d * Float(2 * Int32((qh >> 12) & 7) + 1)
                let delta: Float = (qh & 0x8000) != 0 ? -Self.delta : Self.delta
                for l in 0..<4 {
                    let idx = Int(x.load(fromByteOffset: 2 + 4 * ib + l, as: UInt8.self)) | (Int((qh >> (3 * UInt16(l))) & 7) << 8)
                    let g = grid + 8 * idx
                    for j in 0..<8 {
                        y[j] = dl * (Float(Int8(bitPattern: g[j])) + delta)
                    }
                    y += 8
                }
            }
        }
    }
}
