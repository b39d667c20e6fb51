import SmeltFormats

/// ggml `iq3_xxs` (3.0625 bpw): super-blocks of 256 as 64 groups of 4 magnitudes
/// from the 256-point `iq3xxs_grid`, 7 sign bits per 8 values (even parity) and
/// a 4-bit scale per 32 values under one f16 scale. Works with or without
/// importance weights.
public enum IQ3_XXS: QuantType {
    public static var ggmlType: GGMLType { .iq3_xxs }
    static let blockBytes = 98

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.quantizeRowIQGrid(.iq3_xxs, src, importance, dst, count) { return }
        iqQuantizeRow("iq3_xxs", src, dst, count: count, importance: importance, requiresImportance: false,
                      tables: IQGridTables.iq3xxs, blockBytes: blockBytes) { x, w, y, t, s in quantizeBlock(x, w, y, t, s) }
    }

    /// One super-block, as ggml's `quantize_row_iq3_xxs_impl` (grid_size 256) loop body.
    @inline(__always)
    static func quantizeBlock(_ xbl: UnsafePointer<Float>, _ qwbl: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
                              _ T: IQGridTables, _ scratch: UnsafeMutableRawPointer) {
        let kMaxQ: Int32 = 8
        let f = scratch.bindMemory(to: Float.self, capacity: 136)
        let scales = f, weight = f + 8, xval = f + 40, waux = f + 72
        let q3 = (scratch + 1024).bindMemory(to: UInt8.self, capacity: 96)
        let b = (scratch + 2048).bindMemory(to: Int8.self, capacity: 64)
        let L = b, Laux = b + 32
        let signs = (scratch + 3072).bindMemory(to: UInt8.self, capacity: 8)
        let onGrid = (scratch + 3088).bindMemory(to: Bool.self, capacity: 8)
        let onGridAux = (scratch + 3104).bindMemory(to: Bool.self, capacity: 8)

        iqStoreHalf(y, 0, 0)
        for i in 0..<96 { q3[i] = 0 }
        var maxScale: Float = 0
        var sumx2: Float = 0
        for i in 0..<iqQK { sumx2 += xbl[i] * xbl[i] }
        let sigma2 = 2 * sumx2 / Float(iqQK)

        for ib in 0..<(iqQK / 32) {
            let xb = xbl + 32 * ib
            if let qwbl {
                let qw = qwbl + 32 * ib
                for i in 0..<32 { weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).squareRoot() }
            } else {
                for i in 0..<32 { weight[i] = xb[i] * xb[i] }
            }
            for i in 0..<32 { waux[i] = weight[i].squareRoot() }
            for k in 0..<4 { signs[k] = iqEvenSigns(xb + 8 * k, weight + 8 * k, xval + 8 * k) }
            var max = xval[0]
            for i in 1..<32 { max = iqMax(max, xval[i]) }
            for i in 0..<32 { L[i] = 0 }
            if max < 1e-8 {
                scales[ib] = 0
                continue
            }
            var best: Float = 0
            var scale = max / Float(2 * kMaxQ - 1)
            for k in 0..<8 { onGrid[k] = true }
            for isi in -15...15 {
                let id = (Float(2 * kMaxQ - 1) + Float(isi) * 0.2) / max
                let thisScale = 1 / id
                for k in 0..<8 {
                    for i in 0..<4 {
                        let l = nearestInt(0.5 * (id * xval[4 * k + i] - 1))
                        Laux[4 * k + i] = Int8(iqClamp(l, 0, kMaxQ - 1))
                    }
                    var u = 0
                    for i in 0..<4 { u |= Int(Laux[4 * k + i]) << (3 * i) }
                    onGridAux[k] = true
                    if T.map[u] < 0 {
                        onGridAux[k] = false
                        _ = iqFindBestNeighbour(T.neighbourList(u), T.grid, dim: 4, xval + 4 * k, waux + 4 * k,
                                                thisScale, Laux + 4 * k)
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
                    for k in 0..<8 { onGrid[k] = onGridAux[k] }
                }
            }
            var nNotOnGrid = 0
            for k in 0..<8 where !onGrid[k] { nNotOnGrid += 1 }
            if nNotOnGrid > 0 && scale > 0 {
                let id = 1 / scale
                for k in 0..<8 {
                    if onGrid[k] { continue }
                    var u = 0
                    for i in 0..<4 {
                        let l = iqClamp(nearestInt(0.5 * (id * xval[4 * k + i] - 1)), 0, kMaxQ - 1)
                        u |= Int(l) << (3 * i)
                    }
                    var gridIndex = Int(T.map[u])
                    if gridIndex < 0 {
                        gridIndex = iqFindBestNeighbour(T.neighbourList(u), T.grid, dim: 4, xval + 4 * k,
                                                        waux + 4 * k, scale, L + 4 * k)
                    }
                    let pg = T.grid + 4 * gridIndex
                    for i in 0..<4 { L[4 * k + i] = (pg[i] - 1) / 2 }
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
            for k in 0..<8 {
                var u = 0
                for i in 0..<4 { u |= Int(L[4 * k + i]) << (3 * i) }
                let gridIndex = Swift.max(T.map[u], 0)  // on the grid (ggml aborts otherwise)
                q3[8 * ib + k] = UInt8(truncatingIfNeeded: gridIndex)
            }
            let ss = UInt32(signs[0]) | (UInt32(signs[1]) << 7) | (UInt32(signs[2]) << 14) | (UInt32(signs[3]) << 21)
            storeU32(UnsafeMutableRawPointer(q3), 64 + 4 * ib, ss)
            scales[ib] = scale
            maxScale = iqMax(maxScale, scale)
        }

        if maxScale == 0 {
            for i in 0..<96 { y.storeBytes(of: 0, toByteOffset: 2 + i, as: UInt8.self) }
            return
        }
        let d = maxScale / 31
        iqStoreHalf(y, 0, d * 1.0125)
        let id = 1 / d
        for ib in 0..<(iqQK / 32) {
            let l = iqClamp(nearestInt(0.5 * (id * scales[ib] - 1)), 0, 15)
            let q3raw = UnsafeMutableRawPointer(q3)
            storeU32(q3raw, 64 + 4 * ib, loadU32(q3raw, 64 + 4 * ib) | (UInt32(l) << 28))
        }
        for i in 0..<96 { y.storeBytes(of: q3[i], toByteOffset: 2 + i, as: UInt8.self) }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let grid = IQDequantTables.iq3xxs, ksigns = IQDequantTables.ksigns
        for i in 0..<(count / iqQK) {
            let x = src + blockBytes * i
            var y = dst + iqQK * i
            let d = iqLoadHalf(x, 0)
            for ib32 in 0..<8 {
                let aux32 = loadU32(x, 2 + 64 + 4 * ib32)
                let db = d * (0.5 + Float(aux32 >> 28)) * 0.5
                let qs = x + 2 + 8 * ib32
                for l in 0..<4 {
                    let signs = ksigns[Int((aux32 >> (7 * UInt32(l))) & 127)]
                    let g1 = grid + 4 * Int(qs.load(fromByteOffset: 2 * l, as: UInt8.self))
                    let g2 = grid + 4 * Int(qs.load(fromByteOffset: 2 * l + 1, as: UInt8.self))
                    for j in 0..<4 {
                        y[j + 0] = db * Float(g1[j]) * ((signs & UInt8(1 << j)) != 0 ? -1 : 1)
                        y[j + 4] = db * Float(g2[j]) * ((signs & UInt8(1 << (j + 4))) != 0 ? -1 : 1)
                    }
                    y += 8
                }
            }
        }
    }
}
