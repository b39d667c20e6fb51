import SmeltFormats

/// ggml `iq2_xs` (2.3125 bpw): super-blocks of 256 as 32 groups of 8 magnitudes
/// from the 512-point `iq2xs_grid` (9-bit index + 7 sign bits per group) and a
/// 4-bit scale per 16 values under one f16 scale. Needs importance weights
/// (ggml refuses to quantize without; calling without traps).
public enum IQ2_XS: QuantType {
    public static var ggmlType: GGMLType { .iq2_xs }
    public static var requiresImportance: Bool { true }
    static let blockBytes = 74

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.quantizeRowIQGrid(.iq2_xs, src, importance, dst, count) { return }
        iqQuantizeRow("iq2_xs", src, dst, count: count, importance: importance, requiresImportance: true,
                      tables: IQGridTables.iq2xs, blockBytes: blockBytes) { x, w, y, t, s in quantizeBlock(x, w!, y, t, s) }
    }

    /// One super-block, as ggml's `quantize_row_iq2_xs_impl` loop body.
    @inline(__always)
    static func quantizeBlock(_ xbl: UnsafePointer<Float>, _ qwbl: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                              _ T: IQGridTables, _ scratch: UnsafeMutableRawPointer) {
        let f = scratch.bindMemory(to: Float.self, capacity: 80)
        let scales = f, weight = f + 16, xval = f + 32, waux = f + 48
        let q2 = (scratch + 1024).bindMemory(to: UInt16.self, capacity: 32)
        let b = (scratch + 2048).bindMemory(to: Int8.self, capacity: 32)
        let L = b, Laux = b + 16
        let signs = (scratch + 3072).bindMemory(to: UInt8.self, capacity: 2)

        iqStoreHalf(y, 0, 0)
        for i in 0..<32 { q2[i] = 0 }
        for i in 0..<8 { y.storeBytes(of: 0, toByteOffset: 66 + i, as: UInt8.self) }
        var maxScale: Float = 0
        var sumx2: Float = 0
        for i in 0..<iqQK { sumx2 += xbl[i] * xbl[i] }
        let sigma2 = sumx2 / Float(iqQK)

        for ib in 0..<(iqQK / 16) {
            let xb = xbl + 16 * ib
            let qw = qwbl + 16 * ib
            for i in 0..<16 { weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).squareRoot() }
            for i in 0..<16 { waux[i] = weight[i].squareRoot() }
            for k in 0..<2 { signs[k] = iqEvenSigns(xb + 8 * k, weight + 8 * k, xval + 8 * k) }
            guard var scale = iq2SearchScale16(xval, weight, waux, L, Laux, T, zeroBelow: 1e-15) else {
                scales[ib] = 0
                continue
            }
            if scale < 0 {
                scale = -scale
                for k in 0..<2 { signs[k] = (~signs[k]) & 127 }
            }
            for k in 0..<2 {
                var u = 0
                for i in 0..<8 { u |= Int(L[8 * k + i]) << (2 * i) }
                let gridIndex = UInt16(truncatingIfNeeded: Swift.max(T.map[u], 0))  // on the grid (ggml aborts otherwise)
                q2[2 * ib + k] = gridIndex | (UInt16(signs[k]) << 9)
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
        for ib in 0..<(iqQK / 16) {
            let l = UInt8(iqClamp(nearestInt(0.5 * (id * scales[ib] - 1)), 0, 15))
            let off = 66 + ib / 2
            if ib % 2 == 0 {
                y.storeBytes(of: l, toByteOffset: off, as: UInt8.self)
            } else {
                y.storeBytes(of: y.load(fromByteOffset: off, as: UInt8.self) | (l << 4), toByteOffset: off, as: UInt8.self)
            }
        }
        for i in 0..<32 { storeU16(y, 2 + 2 * i, q2[i]) }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let grid = IQDequantTables.iq2xs, ksigns = IQDequantTables.ksigns
        for i in 0..<(count / iqQK) {
            let x = src + blockBytes * i
            var y = dst + iqQK * i
            let d = iqLoadHalf(x, 0)
            for ib32 in 0..<8 {
                let sc = x.load(fromByteOffset: 66 + ib32, as: UInt8.self)
                let db0 = d * (0.5 + Float(sc & 0xf)) * 0.25
                let db1 = d * (0.5 + Float(sc >> 4)) * 0.25
                for l in 0..<4 {
                    let q = loadU16(x, 2 + 2 * (4 * ib32 + l))
                    let g = grid + 8 * Int(q & 511)
                    let signs = ksigns[Int(q >> 9)]
                    let db = l / 2 == 0 ? db0 : db1
                    for j in 0..<8 {
                        y[j] = db * Float(g[j]) * ((signs & UInt8(1 << j)) != 0 ? -1 : 1)
                    }
                    y += 8
                }
            }
        }
    }
}
