import SmeltFormats

/// ggml `iq2_s` (2.5625 bpw): super-blocks of 256 as 32 groups of 8 magnitudes
/// from the 1024-point `iq2s_grid` (10-bit index), 8 explicit sign bits per
/// group and a 4-bit scale per 16 values under one f16 scale. Works with or
/// without importance weights.
public enum IQ2_S: QuantType {
    public static var ggmlType: GGMLType { .iq2_s }
    static let blockBytes = 82

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.quantizeRowIQGrid(.iq2_s, src, importance, dst, count) { return }
        iqQuantizeRow("iq2_s", src, dst, count: count, importance: importance, requiresImportance: false,
                      tables: IQGridTables.iq2s, blockBytes: blockBytes) { x, w, y, t, s in quantizeBlock(x, w, y, t, s) }
    }

    /// One super-block, as ggml's `quantize_row_iq2_s_impl` loop body.
    @inline(__always)
    static func quantizeBlock(_ xbl: UnsafePointer<Float>, _ qwbl: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
                              _ T: IQGridTables, _ scratch: UnsafeMutableRawPointer) {
        let f = scratch.bindMemory(to: Float.self, capacity: 80)
        let scales = f, weight = f + 16, xval = f + 32, waux = f + 48
        let b = (scratch + 2048).bindMemory(to: Int8.self, capacity: 32)
        let L = b, Laux = b + 16
        var signs: (UInt8, UInt8) = (0, 0)
        let qs = 2, qh = 66, sc = 74

        for i in 0..<blockBytes { y.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
        iqStoreHalf(y, 0, 0)
        var maxScale: Float = 0
        var sumx2: Float = 0
        for i in 0..<iqQK { sumx2 += xbl[i] * xbl[i] }
        let sigma2 = 2 * sumx2 / Float(iqQK)

        for ib in 0..<(iqQK / 16) {
            let xb = xbl + 16 * ib
            if let qwbl {
                let qw = qwbl + 16 * ib
                for i in 0..<16 { weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).squareRoot() }
            } else {
                for i in 0..<16 { weight[i] = 0.25 * sigma2 + xb[i] * xb[i] }
            }
            for i in 0..<16 { waux[i] = weight[i].squareRoot() }
            for k in 0..<2 {
                var s: UInt8 = 0
                for i in 0..<8 {
                    if xb[8 * k + i] >= 0 {
                        xval[8 * k + i] = xb[8 * k + i]
                    } else {
                        xval[8 * k + i] = -xb[8 * k + i]; s |= UInt8(1 << i)
                    }
                }
                if k == 0 { signs.0 = s } else { signs.1 = s }
            }
            guard var scale = iq2SearchScale16(xval, weight, waux, L, Laux, T, zeroBelow: 1e-8) else {
                scales[ib] = 0
                continue
            }
            if scale < 0 {
                scale = -scale
                signs = (~signs.0, ~signs.1)
            }
            for k in 0..<2 {
                var u = 0
                for i in 0..<8 { u |= Int(L[8 * k + i]) << (2 * i) }
                let gridIndex = Int(Swift.max(T.map[u], 0))  // on the grid (ggml aborts otherwise)
                let i8 = 2 * ib + k
                y.storeBytes(of: UInt8(gridIndex & 255), toByteOffset: qs + i8, as: UInt8.self)
                let h = y.load(fromByteOffset: qh + i8 / 4, as: UInt8.self)
                y.storeBytes(of: h | UInt8(truncatingIfNeeded: (gridIndex >> 8) << (2 * (i8 % 4))),
                             toByteOffset: qh + i8 / 4, as: UInt8.self)
                y.storeBytes(of: k == 0 ? signs.0 : signs.1, toByteOffset: qs + iqQK / 8 + i8, as: UInt8.self)
            }
            scales[ib] = scale
            maxScale = iqMax(maxScale, scale)
        }

        if maxScale == 0 { return }
        let d = maxScale / 31
        iqStoreHalf(y, 0, d * 0.9875)
        let id = 1 / d
        for ib in 0..<(iqQK / 16) {
            let l = UInt8(iqClamp(nearestInt(0.5 * (id * scales[ib] - 1)), 0, 15))
            let off = sc + ib / 2
            if ib % 2 == 0 {
                y.storeBytes(of: l, toByteOffset: off, as: UInt8.self)
            } else {
                y.storeBytes(of: y.load(fromByteOffset: off, as: UInt8.self) | (l << 4), toByteOffset: off, as: UInt8.self)
            }
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let grid = IQDequantTables.iq2s
        for i in 0..<(count / iqQK) {
            let x = src + blockBytes * i
            var y = dst + iqQK * i
            let d = iqLoadHalf(x, 0)
            let qs = x + 2, signs = x + 2 + iqQK / 8, qh = x + 66
            for ib32 in 0..<8 {
                let sc = x.load(fromByteOffset: 74 + ib32, as: UInt8.self)
                let db0 = d * (0.5 + Float(sc & 0xf)) * 0.25
                let db1 = d * (0.5 + Float(sc >> 4)) * 0.25
                let h = Int(qh.load(fromByteOffset: ib32, as: UInt8.self))
                for l in 0..<4 {
                    let dl = l / 2 == 0 ? db0 : db1
                    let idx = Int(qs.load(fromByteOffset: 4 * ib32 + l, as: UInt8.self)) | ((h << (8 - 2 * l)) & 0x300)
                    let g = grid + 8 * idx
                    let s = signs.load(fromByteOffset: 4 * ib32 + l, as: UInt8.self)
                    for j in 0..<8 {
                        y[j] = dl * Float(g[j]) * ((s & UInt8(1 << j)) != 0 ? -1 : 1)
                    }
                    y += 8
                }
            }
        }
    }
}
