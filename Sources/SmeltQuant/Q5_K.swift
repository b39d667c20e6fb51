import SmeltFormats

/// ggml `q5_K`: super-blocks of 256 values as `d: f16, dmin: f16, scales: [12 bytes]`
/// (eight 6-bit scales and mins), `qh: [32 bytes]` (5th bits), `qs: [128 bytes]` (low
/// nibbles) (176 bytes); x ≈ d·sc·q − dmin·m per 32-value block.
public enum Q5_K: QuantType {
    public static let ggmlType = GGMLType.q5_K
    static let blockSize = 256, blockBytes = 176

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowQ5K(src, importance, dst, count); return }
        withQuantScratch(floats: 56, bytes: 304) { f, b in
            for ib in 0..<(count / blockSize) {
                let x = src + ib * blockSize, y = dst + ib * blockBytes
                if let qw = importance {
                    KQuant45.quantizeBlockWeighted(x, y, qw + ib * blockSize, nmax: 31, scratch: f, bytes: b)
                } else {
                    KQuant45.quantizeBlockRef(x, y, nmax: 31, scratch: f, bytes: b)
                }
                KQuant45.pack5(y, L: b)
            }
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let min = fp16ToFP32(loadU16(b, 2))
            let scales = (b + 4).assumingMemoryBound(to: UInt8.self)
            let qh = (b + 16).assumingMemoryBound(to: UInt8.self)
            var ql = (b + 48).assumingMemoryBound(to: UInt8.self)
            var y = dst + ib * blockSize
            var u1: UInt8 = 1, u2: UInt8 = 2
            for j in 0..<4 {
                var (sc, m) = getScaleMinK4(2 * j, scales)
                let d1 = d * Float(sc), m1 = min * Float(m)
                (sc, m) = getScaleMinK4(2 * j + 1, scales)
                let d2 = d * Float(sc), m2 = min * Float(m)
                for l in 0..<32 { y[l] = d1 * Float(Int32(ql[l] & 0xF) + (qh[l] & u1 != 0 ? 16 : 0)) - m1 }
                for l in 0..<32 { y[32 + l] = d2 * Float(Int32(ql[l] >> 4) + (qh[l] & u2 != 0 ? 16 : 0)) - m2 }
                y += 64
                ql += 32
                u1 <<= 2
                u2 <<= 2
            }
        }
    }
}
