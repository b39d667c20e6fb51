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

    /// The layout of `t`, or nil when it has no such integer form (f32, f16, bf16: every quantized type has one).
    public static func layout(for t: GGMLType) -> Layout? {
        switch t {
        case .q4_0, .q5_0, .q8_0, .iq4_nl: return Layout(sub: 32, activationBlock: 32, hasMin: false)
        case .q4_1, .q5_1: return Layout(sub: 32, activationBlock: 32, hasMin: true)
        case .q4_K, .q5_K: return Layout(sub: 32, activationBlock: 256, hasMin: true)
        case .iq4_xs: return Layout(sub: 32, activationBlock: 256, hasMin: false)
        case .q2_K: return Layout(sub: 16, activationBlock: 256, hasMin: true)
        case .q3_K, .q6_K: return Layout(sub: 16, activationBlock: 256, hasMin: false)
        case .iq2_xxs, .iq3_xxs, .iq3_s, .iq1_s: return Layout(sub: 32, activationBlock: 256, hasMin: false)
        case .iq2_xs, .iq2_s, .iq1_m: return Layout(sub: 16, activationBlock: 256, hasMin: false)
        case .tq1_0, .tq2_0: return Layout(sub: 256, activationBlock: 256, hasMin: false)
        case .mxfp4, .q1_0: return Layout(sub: 32, activationBlock: 32, hasMin: false)
        case .nvfp4: return Layout(sub: 16, activationBlock: 32, hasMin: false)
        default: return nil
        }
    }

    /// `n` grid values (unsigned bytes at `g`), negated where bit j of `signs` is set.
    @inline(__always) static func signed(_ y: UnsafeMutablePointer<Int16>, _ g: UnsafePointer<UInt8>, _ signs: UInt8, _ n: Int) {
        for j in 0..<n { y[j] = (signs >> UInt8(j)) & 1 != 0 ? -Int16(g[j]) : Int16(g[j]) }
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
            case .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s:
                // db × grid value × ±1 (ggml's order; the sign flip is exact)
                let d = fp16ToFP32(loadU16(x, 0)), ks = IQDequantTables.ksigns
                for ib in 0..<8 {
                    let yb = y + ib * 32
                    switch t {
                    case .iq2_xxs:
                        let a0 = loadU32(x, 2 + 8 * ib), a1 = loadU32(x, 6 + 8 * ib)
                        scale[i * 8 + ib] = d * (0.5 + Float(a1 >> 28)) * 0.25
                        for l in 0..<4 {
                            let g = IQDequantTables.iq2xxs + 8 * Int((a0 >> (8 * UInt32(l))) & 255)
                            signed(yb + 8 * l, g, ks[Int((a1 >> (7 * UInt32(l))) & 127)], 8)
                        }
                    case .iq2_xs, .iq2_s:
                        let sc = b[(t == .iq2_xs ? 66 : 74) + ib]
                        scale[i * 16 + 2 * ib] = d * (0.5 + Float(sc & 0xf)) * 0.25
                        scale[i * 16 + 2 * ib + 1] = d * (0.5 + Float(sc >> 4)) * 0.25
                        for l in 0..<4 {
                            if t == .iq2_xs {
                                let q = loadU16(x, 2 + 2 * (4 * ib + l))
                                signed(yb + 8 * l, IQDequantTables.iq2xs + 8 * Int(q & 511), ks[Int(q >> 9)], 8)
                            } else {
                                let idx = Int(b[2 + 4 * ib + l]) | ((Int(b[66 + ib]) << (8 - 2 * l)) & 0x300)
                                signed(yb + 8 * l, IQDequantTables.iq2s + 8 * idx, b[34 + 4 * ib + l], 8)
                            }
                        }
                    case .iq3_xxs:
                        let aux = loadU32(x, 66 + 4 * ib)
                        scale[i * 8 + ib] = d * (0.5 + Float(aux >> 28)) * 0.5
                        for l in 0..<4 {
                            let s = ks[Int((aux >> (7 * UInt32(l))) & 127)]
                            signed(yb + 8 * l, IQDequantTables.iq3xxs + 4 * Int(b[2 + 8 * ib + 2 * l]), s, 4)
                            signed(yb + 8 * l + 4, IQDequantTables.iq3xxs + 4 * Int(b[2 + 8 * ib + 2 * l + 1]), s >> 4, 4)
                        }
                    default:  // iq3_s: per 32 values 8 grid bytes, 1 byte of high bits, 4 sign bytes
                        let sc = b[106 + ib / 2]
                        scale[i * 8 + ib] = d * Float(1 + 2 * Int32(ib % 2 == 0 ? sc & 0xf : sc >> 4))
                        let h = Int(b[66 + ib]), qs = b + 2 + 8 * ib
                        for l in 0..<4 {
                            let s = b[74 + 4 * ib + l]
                            signed(yb + 8 * l, IQDequantTables.iq3s + 4 * (Int(qs[2 * l]) | ((h << (8 - 2 * l)) & 256)), s, 4)
                            signed(yb + 8 * l + 4, IQDequantTables.iq3s + 4 * (Int(qs[2 * l + 1]) | ((h << (7 - 2 * l)) & 256)), s >> 4, 4)
                        }
                    }
                }
            case .iq1_s, .iq1_m:
                // dl × (grid ± 1/8) = (dl / 8) × (8·grid ± 1): exact, dl / 8 being a power-of-two step of a normal float
                let g1 = IQDequantTables.iq1s
                if t == .iq1_s {
                    let d = fp16ToFP32(loadU16(x, 0))
                    for ib in 0..<8 {
                        let qh = loadU16(x, 34 + 2 * ib)
                        scale[i * 8 + ib] = d * Float(2 * Int32((qh >> 12) & 7) + 1) * 0.125
                        let delta: Int16 = qh & 0x8000 != 0 ? -1 : 1
                        for l in 0..<4 {
                            let g = g1 + 8 * (Int(b[2 + 4 * ib + l]) | (Int((qh >> (3 * UInt16(l))) & 7) << 8))
                            for j in 0..<8 { y[ib * 32 + 8 * l + j] = 8 * Int16(Int8(bitPattern: g[j])) + delta }
                        }
                    }
                } else {
                    let sc0 = loadU16(x, 48), sc1 = loadU16(x, 50), sc2 = loadU16(x, 52), sc3 = loadU16(x, 54)
                    let d = fp16ToFP32((sc0 >> 12) | ((sc1 >> 8) & 0x00f0) | ((sc2 >> 4) & 0x0f00) | (sc3 & 0xf000))
                    for ib in 0..<8 {
                        let sc = loadU16(x, 48 + 2 * (ib / 2))
                        for h in 0..<2 {
                            scale[i * 16 + 2 * ib + h] = d * Float(2 * Int32((sc >> UInt16(6 * (ib % 2) + 3 * h)) & 0x7) + 1) * 0.125
                        }
                        for l in 0..<4 {
                            let qh = Int(b[32 + 2 * ib + l / 2]), shift = l % 2 == 0 ? 8 : 4
                            let g = g1 + 8 * (Int(b[4 * ib + l]) | ((qh << shift) & 0x700))
                            let delta: Int16 = qh & (l % 2 == 0 ? 0x08 : 0x80) != 0 ? -1 : 1
                            for j in 0..<8 { y[ib * 32 + 8 * l + j] = 8 * Int16(Int8(bitPattern: g[j])) + delta }
                        }
                    }
                }
            case .tq1_0:
                // base-3 digits: 5 per byte of the first 48, 4 per byte of the last 4
                scale[i] = fp16ToFP32(loadU16(x, 52))
                var k = 0
                for (start, count, digits) in [(0, 32, 5), (32, 16, 5), (48, 4, 4)] {
                    var p3: UInt8 = 1
                    for _ in 0..<digits {
                        for m in 0..<count { y[k + m] = Int16((UInt16(b[start + m] &* p3) * 3) >> 8) - 1 }
                        k += count
                        p3 &*= 3
                    }
                }
            case .tq2_0:
                scale[i] = fp16ToFP32(loadU16(x, 64))
                for j in stride(from: 0, to: 64, by: 32) {
                    for l in 0..<4 { for m in 0..<32 { y[j * 4 + l * 32 + m] = Int16((b[j + m] >> UInt8(l * 2)) & 3) - 1 } }
                }
            case .mxfp4:
                scale[i] = e8m0ToFP32Half(b[0])
                for j in 0..<16 { y[j] = Int16(kvaluesFP4[Int(b[1 + j] & 0x0F)]); y[j + 16] = Int16(kvaluesFP4[Int(b[1 + j] >> 4)]) }
            case .nvfp4:
                for s in 0..<4 {
                    scale[i * 4 + s] = ue4m3ToFP32(b[s])
                    for j in 0..<8 {
                        let q = b[4 + 8 * s + j]
                        y[16 * s + j] = Int16(kvaluesFP4[Int(q & 0x0F)]); y[16 * s + j + 8] = Int16(kvaluesFP4[Int(q >> 4)])
                    }
                }
            case .q1_0:
                let d = fp16ToFP32(loadU16(x, 0))
                for s in 0..<4 { scale[i * 4 + s] = d }
                for j in 0..<128 { y[j] = (b[2 + (j >> 3)] >> UInt8(j & 7)) & 1 != 0 ? 1 : -1 }
            default:
                preconditionFailure("no integer decoding for \(t)")
            }
        }
    }
}
