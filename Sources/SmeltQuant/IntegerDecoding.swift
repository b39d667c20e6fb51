import SmeltFormats

/// The integer form of the block types whose dequantized value is `scale × q + min`
/// with an integer `q` and one float scale (and min) per sub-block: the inputs of
/// integer dot products (SmeltEval's native product). `scale × q (+ min)` in float32
/// is exactly the value of the type's `dequantizeRow`, bit for bit.
public enum IntegerDecoding {
    /// Sub-block size, the block size of the activations' `vec_dot_type` (q8_0/q8_1: 32,
    /// q8_K: 256), and whether the type has a min per sub-block.
    public struct Layout: Equatable, Sendable {
        public let sub: Int, activationBlock: Int, hasMin: Bool
    }

    /// The layout of `t`, or nil when it has no such integer form (f16, the grid IQ types, …).
    public static func layout(for t: GGMLType) -> Layout? {
        switch t {
        case .q4_0, .q5_0, .q8_0, .iq4_nl: return Layout(sub: 32, activationBlock: 32, hasMin: false)
        case .q4_1, .q5_1: return Layout(sub: 32, activationBlock: 32, hasMin: true)
        case .q4_K, .q5_K: return Layout(sub: 32, activationBlock: 256, hasMin: true)
        case .iq4_xs: return Layout(sub: 32, activationBlock: 256, hasMin: false)
        case .q2_K: return Layout(sub: 16, activationBlock: 256, hasMin: true)
        case .q3_K, .q6_K: return Layout(sub: 16, activationBlock: 256, hasMin: false)
        default: return nil
        }
    }

    /// Decodes one row of `cols` values of type `t` (which must have a `layout`):
    /// `q[cols]`, `scale[cols/sub]` and `min[cols/sub]` (0 when the type has none).
    public static func decodeRow(_ t: GGMLType, _ src: UnsafeRawPointer, cols: Int, q: UnsafeMutablePointer<Int16>,
                                 scale: UnsafeMutablePointer<Float>, min: UnsafeMutablePointer<Float>) {
        let size = t.bytesPerBlock, blocks = cols / t.blockSize
        let nsub = cols / layout(for: t)!.sub
        min.update(repeating: 0, count: nsub)
        for i in 0..<blocks {
            let x = src + i * size, b = x.assumingMemoryBound(to: UInt8.self)
            let y = q + i * t.blockSize
            switch t {
            case .q4_0, .q4_1:
                scale[i] = fp16ToFP32(loadU16(x, 0))
                if t == .q4_1 { min[i] = fp16ToFP32(loadU16(x, 2)) }
                let qs = b + (t == .q4_0 ? 2 : 4), off: Int16 = t == .q4_0 ? 8 : 0
                for j in 0..<16 { y[j] = Int16(qs[j] & 0xF) - off; y[j + 16] = Int16(qs[j] >> 4) - off }
            case .q5_0, .q5_1:
                scale[i] = fp16ToFP32(loadU16(x, 0))
                if t == .q5_1 { min[i] = fp16ToFP32(loadU16(x, 2)) }
                let h = t == .q5_0 ? 2 : 4
                let qh = x.loadUnaligned(fromByteOffset: h, as: UInt32.self)
                let qs = b + h + 4, off: Int16 = t == .q5_0 ? 16 : 0
                for j in 0..<16 {
                    let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                    let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                    y[j] = Int16((qs[j] & 0x0F) | h0) - off
                    y[j + 16] = Int16((qs[j] >> 4) | h1) - off
                }
            case .q8_0:
                scale[i] = fp16ToFP32(loadU16(x, 0))
                for j in 0..<32 { y[j] = Int16(Int8(bitPattern: b[2 + j])) }
            case .iq4_nl:
                scale[i] = fp16ToFP32(loadU16(x, 0))
                let qs = b + 2, kv = kvaluesIQ4NL
                for j in 0..<16 { y[j] = Int16(kv[Int(qs[j] & 0xF)]); y[j + 16] = Int16(kv[Int(qs[j] >> 4)]) }
            case .q4_K, .q5_K:
                let d = fp16ToFP32(loadU16(x, 0)), dmin = fp16ToFP32(loadU16(x, 2))
                let qh = b + 16, ql = b + (t == .q4_K ? 16 : 48)
                for j in 0..<8 {
                    let (s, m) = getScaleMinK4(j, b + 4)
                    scale[i * 8 + j] = d * Float(s)
                    min[i * 8 + j] = -(dmin * Float(m))
                    let src = ql + (j / 2) * 32, hi = j % 2 == 1
                    for l in 0..<32 {
                        var v = Int16(hi ? src[l] >> 4 : src[l] & 0xF)
                        if t == .q5_K && qh[l] & (UInt8(1) << UInt8(j)) != 0 { v += 16 }
                        y[j * 32 + l] = v
                    }
                }
            case .q6_K:
                let ql = b, qh = b + 128, sc = UnsafeRawPointer(b + 192).assumingMemoryBound(to: Int8.self)
                let d = fp16ToFP32(loadU16(x, 208))
                for s in 0..<16 { scale[i * 16 + s] = d * Float(sc[s]) }
                for n in 0..<2 {
                    let yy = y + n * 128, l0 = ql + n * 64, h0 = qh + n * 32
                    for l in 0..<32 {
                        yy[l] = Int16((l0[l] & 0xF) | ((h0[l] & 3) << 4)) - 32
                        yy[l + 32] = Int16((l0[l + 32] & 0xF) | (((h0[l] >> 2) & 3) << 4)) - 32
                        yy[l + 64] = Int16((l0[l] >> 4) | (((h0[l] >> 4) & 3) << 4)) - 32
                        yy[l + 96] = Int16((l0[l + 32] >> 4) | (((h0[l] >> 6) & 3) << 4)) - 32
                    }
                }
            case .q2_K, .q3_K:
                // 16 sub-blocks of 16: half h, 2-bit plane j, first or second 16 of the 32 bytes
                let d = fp16ToFP32(loadU16(x, t == .q2_K ? 80 : 108))
                let qs = b + (t == .q2_K ? 16 : 32)
                for s in 0..<16 {
                    let h = s / 8, j = (s % 8) / 2, second = s % 2
                    let src = qs + h * 32 + second * 16
                    if t == .q2_K {
                        scale[i * 16 + s] = d * Float(b[s] & 0xF)
                        min[i * 16 + s] = -(fp16ToFP32(loadU16(x, 82)) * Float(b[s] >> 4))
                        for l in 0..<16 { y[s * 16 + l] = Int16((src[l] >> UInt8(2 * j)) & 3) }
                    } else {
                        scale[i * 16 + s] = d * Float(Int32(scaleQ3K(b + 96, s)))
                        let m = UInt8(1) << UInt8(h * 4 + j), hm = b + second * 16
                        for l in 0..<16 { y[s * 16 + l] = Int16((src[l] >> UInt8(2 * j)) & 3) - (hm[l] & m != 0 ? 0 : 4) }
                    }
                }
            case .iq4_xs:
                let d = fp16ToFP32(loadU16(x, 0)), sh = loadU16(x, 2), kv = kvaluesIQ4NL
                for ib in 0..<8 {
                    let ls = Int((b[4 + ib / 2] >> UInt8(4 * (ib % 2))) & 0xF) | (Int((sh >> UInt16(2 * ib)) & 3) << 4)
                    scale[i * 8 + ib] = d * Float(ls - 32)
                    let src = b + 8 + ib * 16
                    for j in 0..<16 { y[ib * 32 + j] = Int16(kv[Int(src[j] & 0xF)]); y[ib * 32 + j + 16] = Int16(kv[Int(src[j] >> 4)]) }
                }
            default:
                preconditionFailure("no integer decoding for \(t)")
            }
        }
    }
}
