import SmeltFormats

/// ggml `iq4_nl`: blocks of 32 values as `d: f16, qs: [16 bytes]` (18 bytes); each nibble
/// indexes the non-linear table `kvalues_iq4nl`, x ≈ d·kvalue. With and without
/// importance weights this is ggml's `quantize_iq4_nl` (7 scale trials).
public enum IQ4_NL: QuantType {
    public static let ggmlType = GGMLType.iq4_nl
    static let blockSize = 32, blockBytes = 18

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        if FastKernels.enabled { FastKernels.quantizeRowIQ4NL(src, importance, dst, count); return }
        withQuantScratch(floats: 33, bytes: 32) { f, L in
            for ib in 0..<(count / blockSize) {
                quantizeBlock(src + ib * blockSize, dst + ib * blockBytes,
                              importance.map { $0 + ib * blockSize }, weight: f, scale: f + 32, L: L)
            }
        }
    }

    /// One block of `quantize_iq4_nl` (`quant_weights` may be nil).
    @inline(__always) static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                                _ qw: UnsafePointer<Float>?, weight: UnsafeMutablePointer<Float>,
                                                scale: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<UInt8>) {
        quantizeIQ4Impl(superBlockSize: 32, x, dh: y, q4: (y + 2).assumingMemoryBound(to: UInt8.self),
                        scalesH: nil, scalesL: nil, scales: scale, weight: weight, L: L,
                        quantWeights: qw, ntry: 7)
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let kv = kvaluesIQ4NL
        for ib in 0..<(count / blockSize) {
            let b = src + ib * blockBytes
            let d = fp16ToFP32(loadU16(b, 0))
            let qs = (b + 2).assumingMemoryBound(to: UInt8.self)
            let y = dst + ib * blockSize
            for j in 0..<16 {
                y[j] = d * Float(kv[Int(qs[j] & 0xf)])
                y[j + 16] = d * Float(kv[Int(qs[j] >> 4)])
            }
        }
    }
}
