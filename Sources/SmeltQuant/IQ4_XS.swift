import SmeltFormats

/// ggml `iq4_xs`: super-blocks of 256 values as `d: f16, scales_h: u16, scales_l: [4 bytes],
/// qs: [128 bytes]` (136 bytes); eight 32-value blocks with 6-bit scales (low 4 bits in
/// scales_l, high 2 in scales_h), nibbles index `kvalues_iq4nl`, x ≈ d·(ls − 32)·kvalue.
public enum IQ4_XS: QuantType {
    public static let ggmlType = GGMLType.iq4_xs
    static let blockSize = 256, blockBytes = 136

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowIQ4XS(src, importance, dst, count); return }
        withQuantScratch(floats: 40, bytes: 256) { f, L in
            for ib in 0..<(count / blockSize) {
                quantizeBlock(src + ib * blockSize, dst + ib * blockBytes,
                              importance.map { $0 + ib * blockSize }, weight: f, scales: f + 32, L: L)
            }
        }
    }

    /// One super-block of `quantize_iq4_xs` (`quant_weights` may be nil).
    @inline(__always) static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                                _ qw: UnsafePointer<Float>?, weight: UnsafeMutablePointer<Float>,
                                                scales: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<UInt8>) {
        quantizeIQ4Impl(superBlockSize: 256, x, dh: y, q4: (y + 8).assumingMemoryBound(to: UInt8.self),
                        scalesH: y + 2, scalesL: (y + 4).assumingMemoryBound(to: UInt8.self),
                        scales: scales, weight: weight, L: L, quantWeights: qw, ntry: 7)
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let kv = kvaluesIQ4NL
        for ibl in 0..<(count / blockSize) {
            let b = src + ibl * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let scalesH = loadU16(b, 2)
            let scalesL = (b + 4).assumingMemoryBound(to: UInt8.self)
            let qs = (b + 8).assumingMemoryBound(to: UInt8.self)
            for ib in 0..<8 {
                let ls = Int32((scalesL[ib / 2] >> UInt8(4 * (ib % 2))) & 0xf)
                    | Int32(((scalesH >> UInt16(2 * ib)) & 3) << 4)
                let dl = d * Float(ls - 32)
                let y = dst + ibl * blockSize + 32 * ib
                let q = qs + 16 * ib
                for j in 0..<16 {
                    y[j] = dl * Float(kv[Int(q[j] & 0xf)])
                    y[j + 16] = dl * Float(kv[Int(q[j] >> 4)])
                }
            }
        }
    }
}
