import SmeltFormats

/// ggml `iq3_s` (3.4375 bpw): super-blocks of 256 as 64 groups of 4 magnitudes
/// from the 512-point `iq3s_grid` (9-bit index), 8 explicit sign bits per 8
/// values and a 4-bit scale per 32 values under one f16 scale. Works with or
/// without importance weights.
public enum IQ3_S: QuantType {
    public static var ggmlType: GGMLType { .iq3_s }
    static let blockBytes = 110

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.quantizeRowIQGrid(.iq3_s, src, importance, dst, count) { return }
        iqQuantizeRow("iq3_s", src, dst, count: count, importance: importance, requiresImportance: false,
                      tables: IQGridTables.iq3s, blockBytes: blockBytes) { x, w, y, t, s in quantizeBlock(x, w, y, t, s) }
    }

    /// One super-block, as ggml's `quantize_row_iq3_s_impl` (block_size 32) loop body.
    @inline(__always)
    static func quantizeBlock(_ xbl: UnsafePointer<Float>, _ qwbl: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
                              _ T: IQGridTables, _ scratch: UnsafeMutableRawPointer) {
        let kMaxQ: Int32 = 8
        let f = scratch.bindMemory(to: Float.self, capacity: 136)
        let scales = f, weight = f + 8, xval = f + 40, waux = f + 72
        let b = (scratch + 2048).bindMemory(to: Int8.self, capacity: 64)
        let L = b, Laux = b + 32
        let signs = (scratch + 3072).bindMemory(to: UInt8.self, capacity: 4)
        let onGrid = (scratch + 3088).bindMemory(to: Bool.self, capacity: 8)
        let onGridAux = (scratch + 3104).bindMemory(to: Bool.self, capacity: 8)
        let qsOff = 2, qhOff = 66, signsOff = 74, scalesOff = 106

        for i in 0..<blockBytes { y.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
        // ggml advances its qs/signs pointers only past groups it did not skip
        // (`continue` on an all-zero group jumps over the increments): replicate.
        var qsPos = qsOff, signsPos = signsOff
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
            for k in 0..<4 {
                var s: UInt8 = 0
                for i in 0..<8 {
                    if xb[8 * k + i] >= 0 {
                        xval[8 * k + i] = xb[8 * k + i]
                    } else {
                        xval[8 * k + i] = -xb[8 * k + i]; s |= UInt8(1 << i)
                    }
                }
                signs[k] = s
            }
            var max = xval[0]
            for i in 1..<32 { max = iqMax(max, xval[i]) }
            for i in 0..<32 { L[i] = 0 }
            if max == 0 {
                scales[ib] = 0
                continue
            }
            var best: Float = 0
            var scale = max / Float(2 * kMaxQ - 1)
            for k in 0..<8 { onGrid[k] = false }
            for isi in -9...9 {
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
                    // ggml re-derives every group here (its on-grid skip is commented out).
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
                for k in 0..<4 { signs[k] = ~signs[k] }
            }
            for k in 0..<8 {
                var u = 0
                for i in 0..<4 { u |= Int(L[4 * k + i]) << (3 * i) }
                let gridIndex = Int(Swift.max(T.map[u], 0))  // on the grid (ggml aborts otherwise)
                y.storeBytes(of: UInt8(gridIndex & 255), toByteOffset: qsPos + k, as: UInt8.self)
                let h = y.load(fromByteOffset: qhOff + ib, as: UInt8.self)
                y.storeBytes(of: h | UInt8(truncatingIfNeeded: (gridIndex >> 8) << k), toByteOffset: qhOff + ib, as: UInt8.self)
            }
            qsPos += 8
            for k in 0..<4 { y.storeBytes(of: signs[k], toByteOffset: signsPos + k, as: UInt8.self) }
            signsPos += 4
            scales[ib] = scale
            maxScale = iqMax(maxScale, scale)
        }

        if maxScale == 0 { return }
        let d = maxScale / 31
        iqStoreHalf(y, 0, d * 1.033)
        let id = 1 / d
        for ib in stride(from: 0, to: iqQK / 32, by: 2) {
            let l1 = iqClamp(nearestInt(0.5 * (id * scales[ib + 0] - 1)), 0, 15)
            let l2 = iqClamp(nearestInt(0.5 * (id * scales[ib + 1] - 1)), 0, 15)
            y.storeBytes(of: UInt8(l1 | (l2 << 4)), toByteOffset: scalesOff + ib / 2, as: UInt8.self)
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let grid = IQDequantTables.iq3s
        for i in 0..<(count / iqQK) {
            let x = src + blockBytes * i
            var y = dst + iqQK * i
            let d = iqLoadHalf(x, 0)
            var qs = x + 2, qh = x + 66, signs = x + 74
            for ib32 in stride(from: 0, to: 8, by: 2) {
                let sc = x.load(fromByteOffset: 106 + ib32 / 2, as: UInt8.self)
                let db1 = d * Float(1 + 2 * Int32(sc & 0xf))
                let db2 = d * Float(1 + 2 * Int32(sc >> 4))
                for half in 0..<2 {
                    let h = Int(qh.load(fromByteOffset: half, as: UInt8.self))
                    let db = half == 0 ? db1 : db2
                    for l in 0..<4 {
                        let g1 = grid + 4 * (Int(qs.load(fromByteOffset: 2 * l, as: UInt8.self)) | ((h << (8 - 2 * l)) & 256))
                        let g2 = grid + 4 * (Int(qs.load(fromByteOffset: 2 * l + 1, as: UInt8.self)) | ((h << (7 - 2 * l)) & 256))
                        let s = signs.load(fromByteOffset: l, as: UInt8.self)
                        for j in 0..<4 {
                            y[j + 0] = db * Float(g1[j]) * ((s & UInt8(1 << j)) != 0 ? -1 : 1)
                            y[j + 4] = db * Float(g2[j]) * ((s & UInt8(1 << (j + 4))) != 0 ? -1 : 1)
                        }
                        y += 8
                    }
                    qs += 8
                    signs += 4
                }
                qh += 2
            }
        }
    }
}
