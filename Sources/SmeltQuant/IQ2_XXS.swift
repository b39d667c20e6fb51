import SmeltFormats

/// ggml `iq2_xxs` (2.0625 bpw): super-blocks of 256 as 32 groups of 8 magnitudes
/// from the 256-point `iq2xxs_grid`, 7 sign bits per group (even parity) and a
/// 4-bit scale per 32 values under one f16 scale. Needs importance weights
/// (ggml refuses to quantize without; calling without traps).
public enum IQ2_XXS: QuantType {
    public static var ggmlType: GGMLType { .iq2_xxs }
    public static var requiresImportance: Bool { true }
    static let blockBytes = 66

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.quantizeRowIQGrid(.iq2_xxs, src, importance, dst, count) { return }
        iqQuantizeRow("iq2_xxs", src, dst, count: count, importance: importance, requiresImportance: true,
                      tables: IQGridTables.iq2xxs, blockBytes: blockBytes) { x, w, y, t, s in quantizeBlock(x, w!, y, t, s) }
    }

    /// One super-block, as ggml's `quantize_row_iq2_xxs_impl` loop body.
    @inline(__always)
    static func quantizeBlock(_ xbl: UnsafePointer<Float>, _ qwbl: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                              _ T: IQGridTables, _ scratch: UnsafeMutableRawPointer) {
        let kMaxQ: Int32 = 3
        let f = scratch.bindMemory(to: Float.self, capacity: 136)
        let scales = f, weight = f + 8, xval = f + 40, waux = f + 72
        let q2p = (scratch + 1024).bindMemory(to: UInt32.self, capacity: 16)
        let b = (scratch + 2048).bindMemory(to: Int8.self, capacity: 72)
        let L = b, Laux = b + 32
        let signs = (scratch + 3072).bindMemory(to: UInt8.self, capacity: 4)
        for i in 0..<16 { q2p[i] = 0 }
        iqStoreHalf(y, 0, 0)
        var maxScale: Float = 0
        var sumx2: Float = 0
        for i in 0..<iqQK { sumx2 += xbl[i] * xbl[i] }
        let sigma2 = sumx2 / Float(iqQK)

        for ib in 0..<(iqQK / 32) {
            let xb = xbl + 32 * ib
            let qw = qwbl + 32 * ib
            for i in 0..<32 { weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).squareRoot() }
            for i in 0..<32 { waux[i] = weight[i].squareRoot() }
            for k in 0..<4 {
                signs[k] = iqEvenSigns(xb + 8 * k, weight + 8 * k, xval + 8 * k)
            }
            var max = xval[0]
            for i in 1..<32 { max = iqMax(max, xval[i]) }
            if max < 1e-15 {
                scales[ib] = 0
                for i in 0..<32 { L[i] = 0 }
                continue
            }
            var scale = L.withMemoryRebound(to: UInt8.self, capacity: 32) {
                makeQpQuants(32, kMaxQ + 1, xval, $0, weight)
            }
            let effMax = scale * Float(kMaxQ)
            if effMax <= 0 {
                scales[ib] = 0
                for i in 0..<32 { L[i] = 0 }
                continue
            }
            var best: Float = 0
            for isi in -6...6 {
                let id = (Float(2 * kMaxQ - 1) + Float(isi) * 0.1) / effMax
                let thisScale = 1 / id
                for k in 0..<4 {
                    for i in 0..<8 {
                        let l = nearestInt(0.5 * (id * xval[8 * k + i] - 1))
                        Laux[8 * k + i] = Int8(iqClamp(l, 0, kMaxQ - 1))
                    }
                    var u = 0
                    for i in 0..<8 { u |= Int(Laux[8 * k + i]) << (2 * i) }
                    if T.map[u] < 0 {
                        _ = iqFindBestNeighbour(T.neighbourList(u), T.grid, dim: 8, xval + 8 * k, waux + 8 * k,
                                                thisScale, Laux + 8 * k)
                    }
                }
                var sumqx: Float = 0, sumq2: Float = 0
                for i in 0..<32 {
                    let w = weight[i]
                    let q = Float(2 * Int32(Laux[i]) + 1)
                    sumqx += w * xval[i] * q
                    sumq2 += w * q * q
                }
                if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                    scale = sumqx / sumq2; best = scale * sumqx
                    for i in 0..<32 { L[i] = Laux[i] }
                }
            }
            if scale > 0 {
                let id = 1 / scale
                for k in 0..<4 {
                    var u = 0
                    for i in 0..<8 {
                        let l = iqClamp(nearestInt(0.5 * (id * xval[8 * k + i] - 1)), 0, kMaxQ - 1)
                        u |= Int(l) << (2 * i)
                    }
                    var gridIndex = Int(T.map[u])
                    if gridIndex < 0 {
                        gridIndex = iqFindBestNeighbour(T.neighbourList(u), T.grid, dim: 8, xval + 8 * k,
                                                        waux + 8 * k, scale, L + 8 * k)
                    }
                    let pg = T.grid + 8 * gridIndex
                    for i in 0..<8 { L[8 * k + i] = (pg[i] - 1) / 2 }
                }
                var sumqx: Float = 0, sumq2: Float = 0
                for i in 0..<32 {
                    let w = weight[i]
                    let q = Float(2 * Int32(L[i]) + 1)
                    sumqx += w * xval[i] * q
                    sumq2 += w * q * q
                }
                if sumq2 > 0 { scale = sumqx / sumq2 }
            }
            if scale < 0 {
                scale = -scale
                for k in 0..<4 { signs[k] = (~signs[k]) & 127 }
            }
            for k in 0..<4 {
                var u = 0
                for i in 0..<8 { u |= Int(L[8 * k + i]) << (2 * i) }
                // Always on the grid here (ggml aborts otherwise).
                let gridIndex = UInt32(truncatingIfNeeded: Swift.max(T.map[u], 0))
                q2p[2 * ib + 0] |= gridIndex << (8 * k)
                q2p[2 * ib + 1] |= UInt32(signs[k]) << (7 * k)
            }
            scales[ib] = scale
            maxScale = iqMax(maxScale, scale)
        }

        if maxScale == 0 {
            for i in 0..<64 { y.storeBytes(of: 0, toByteOffset: 2 + i, as: UInt8.self) }
            return
        }
        let d = maxScale / 31
        iqStoreHalf(y, 0, d)
        let id = 1 / d
        for ib in 0..<(iqQK / 32) {
            let l = iqClamp(nearestInt(0.5 * (id * scales[ib] - 1)), 0, 15)
            q2p[2 * ib + 1] |= UInt32(l) << 28
        }
        for i in 0..<16 { storeU32(y, 2 + 4 * i, q2p[i]) }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let grid = IQDequantTables.iq2xxs, ksigns = IQDequantTables.ksigns
        for i in 0..<(count / iqQK) {
            let x = src + blockBytes * i
            var y = dst + iqQK * i
            let d = iqLoadHalf(x, 0)
            for ib32 in 0..<8 {
                let a0 = loadU32(x, 2 + 8 * ib32), a1 = loadU32(x, 6 + 8 * ib32)
                let db = d * (0.5 + Float(a1 >> 28)) * 0.25
                for l in 0..<4 {
                    let g = grid + 8 * Int((a0 >> (8 * UInt32(l))) & 255)
                    let signs = ksigns[Int((a1 >> (7 * UInt32(l))) & 127)]
                    for j in 0..<8 {
                        y[j] = db * Float(g[j]) * ((signs & UInt8(1 << j)) != 0 ? -1 : 1)
                    }
                    y += 8
                }
            }
        }
    }
}
