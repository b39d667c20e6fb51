import Foundation
import CSmeltKernels
import SmeltFormats

/// A quantized matrix decoded to integers for `smelt_gemm_int16`: every weight is
/// `scale × q + min` with an integer `q` and one scale (and min) per sub-block of
/// `sub` inputs, exactly the float operations of ggml's dequantization. Products
/// are integer sums per sub-block against activations quantized as ggml's
/// `vec_dot_type` (q8_0 blocks of 32 or q8_K blocks of 256), as in llama.cpp.
final class PackedInt: @unchecked Sendable {
    /// Sub-block size, activation block size, and whether the type has mins.
    struct Layout: Equatable {
        let sub: Int, block: Int, hasMin: Bool
    }

    /// The types with an integer decoding (others use float32 products).
    static func layout(for t: GGMLType) -> Layout? {
        switch t {
        case .q4_0, .q5_0, .q8_0: return Layout(sub: 32, block: 32, hasMin: false)
        case .q4_1, .q5_1: return Layout(sub: 32, block: 32, hasMin: true)
        case .q4_K, .q5_K: return Layout(sub: 32, block: 256, hasMin: true)
        case .q6_K, .q3_K: return Layout(sub: 16, block: 256, hasMin: false)
        case .q2_K: return Layout(sub: 16, block: 256, hasMin: true)
        case .iq4_nl: return Layout(sub: 32, block: 32, hasMin: false)
        case .iq4_xs: return Layout(sub: 32, block: 256, hasMin: false)
        default: return nil
        }
    }

    let rows: Int, cols: Int
    let layout: Layout
    let q: UnsafeMutablePointer<Int16>
    let scales: UnsafeMutablePointer<Float>
    let mins: UnsafeMutablePointer<Float>?

    /// Decodes and packs `rows` rows of type `type` (`rowBytes` apart).
    init?(type: GGMLType, raw: UnsafeRawPointer, rowBytes: Int, rows: Int, cols: Int, threads: Int) {
        guard let l = Self.layout(for: type), cols % l.block == 0, cols % l.sub == 0 else { return nil }
        self.rows = rows
        self.cols = cols
        layout = l
        let panels = (rows + 15) / 16, nsub = cols / l.sub
        q = .allocate(capacity: smelt_bf16_packed_count(Int32(rows), Int32(cols)))
        scales = .allocate(capacity: panels * nsub * 16)
        scales.initialize(repeating: 0, count: panels * nsub * 16)
        mins = l.hasMin ? .allocate(capacity: panels * nsub * 16) : nil
        mins?.initialize(repeating: 0, count: panels * nsub * 16)
        let pairs = cols / 2
        let q = self.q, scales = self.scales, mins = self.mins
        Parallel.forEach(panels, threads: threads) { _, p in
            let r0 = p * 16, n = min(16, rows - r0)
            let rq = UnsafeMutablePointer<Int16>.allocate(capacity: 16 * cols)
            rq.initialize(repeating: 0, count: 16 * cols)
            let rs = UnsafeMutablePointer<Float>.allocate(capacity: nsub), rm = UnsafeMutablePointer<Float>.allocate(capacity: nsub)
            defer { rq.deallocate(); rs.deallocate(); rm.deallocate() }
            for i in 0..<n {
                Self.decodeRow(type, raw + (r0 + i) * rowBytes, cols: cols, q: rq + i * cols, scale: rs, min: rm)
                for s in 0..<nsub {
                    scales[(p * nsub + s) * 16 + i] = rs[s]
                    mins?[(p * nsub + s) * 16 + i] = rm[s]
                }
            }
            smelt_int16_pack(rq, Int32(cols), Int32(n), Int32(cols), q + p * pairs * 32)
        }
    }

    deinit { q.deallocate(); scales.deallocate(); mins?.deallocate() }

    /// Bytes taken.
    var byteCount: Int { (rows + 15) / 16 * 16 * (cols * 2 + cols / layout.sub * (layout.hasMin ? 8 : 4)) }

    /// out[m × rows] = x[m × cols] · Wᵀ: the activations are quantized first (ggml's
    /// `vec_dot_type` rounding), then multiplied in integers over `threads` workers.
    /// `reuse` (see `InferenceModel.matmul`) skips quantizing activations that the
    /// previous call quantized the same way.
    func multiply(_ x: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>, ldc: Int, threads: Int,
                  workspace: Workspace, reuse: String? = nil) {
        let K = cols, l = layout
        let nblk = K / l.block, nsub = K / l.sub
        let xqBuf = workspace.get("xq16", (m * K + 1) / 2)
        let xq = UnsafeMutableRawPointer(xqBuf.p).assumingMemoryBound(to: Int16.self)
        let xd = workspace.get("xd", m * nblk).p
        let xs = l.hasMin ? workspace.get("xs", m * nsub).p : nil
        let key = reuse.map { "\($0)|int|\(m)|\(K)|\(l.block)|\(l.sub)|\(l.hasMin)" }
        if key == nil || key != workspace.activationKey {
            Parallel.ranges(m, threads: m * K > 1 << 15 ? threads : 1) { _, r in
                for t in r {
                    smelt_quantize_activations(x + t * K, Int32(K), Int32(l.block), xq + t * K, xd + t * nblk,
                                               Int32(l.sub), xs.map { $0 + t * nsub })
                }
            }
        }
        workspace.activationKey = key
        let panelGroup = 3  // 48 output features per job
        let groups = ((rows + 15) / 16 + panelGroup - 1) / panelGroup
        let tokenBlock = 96
        let tokenBlocks = (m + tokenBlock - 1) / tokenBlock
        let pairs = K / 2
        let rows = self.rows, q = self.q, scales = self.scales, mins = self.mins
        Parallel.forEach(groups * tokenBlocks, threads: threads) { _, job in
            let g = job / tokenBlocks, tb = job % tokenBlocks
            let p0 = g * panelGroup, r0 = p0 * 16, r1 = min(rows, r0 + panelGroup * 16)
            let t0 = tb * tokenBlock, t1 = min(m, t0 + tokenBlock)
            smelt_gemm_int16(Int32(t1 - t0), Int32(r1 - r0), Int32(K), Int32(l.sub), Int32(l.block),
                             xq + t0 * K, Int32(K), xd + t0 * nblk, xs.map { $0 + t0 * nsub },
                             q + p0 * pairs * 32, scales + p0 * nsub * 16, mins.map { $0 + p0 * nsub * 16 },
                             out + t0 * ldc + r0, Int32(ldc))
        }
    }

    // MARK: - decoding (the integer and scale parts of ggml's dequantize_row_*)

    @inline(__always) static func f16(_ p: UnsafeRawPointer, _ o: Int) -> Float {
        FloatFormats.halfToFloat(p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
    }

    /// One row: `q[cols]`, `scale[cols/sub]`, `min[cols/sub]` (0 when the type has none),
    /// such that `scale·q + min` (or `scale·q`) is ggml's dequantized value, bit for bit.
    static func decodeRow(_ t: GGMLType, _ src: UnsafeRawPointer, cols: Int, q: UnsafeMutablePointer<Int16>,
                          scale: UnsafeMutablePointer<Float>, min: UnsafeMutablePointer<Float>) {
        let b = src.assumingMemoryBound(to: UInt8.self)
        switch t {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0:
            let size: Int = [GGMLType.q4_0: 18, .q4_1: 20, .q5_0: 22, .q5_1: 24, .q8_0: 34][t]!
            for i in 0..<(cols / 32) {
                let x = b + i * size, y = q + i * 32
                scale[i] = f16(x, 0)
                min[i] = (t == .q4_1 || t == .q5_1) ? f16(x, 2) : 0
                switch t {
                case .q4_0, .q4_1:
                    let qs = x + (t == .q4_0 ? 2 : 4), off: Int16 = t == .q4_0 ? 8 : 0
                    for j in 0..<16 { y[j] = Int16(qs[j] & 0xF) - off; y[j + 16] = Int16(qs[j] >> 4) - off }
                case .q5_0, .q5_1:
                    let h = t == .q5_0 ? 2 : 4
                    let qh = UnsafeRawPointer(x + h).loadUnaligned(as: UInt32.self)
                    let qs = x + h + 4, off: Int16 = t == .q5_0 ? 16 : 0
                    for j in 0..<16 {
                        let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                        let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                        y[j] = Int16((qs[j] & 0x0F) | h0) - off
                        y[j + 16] = Int16((qs[j] >> 4) | h1) - off
                    }
                default:  // q8_0
                    for j in 0..<32 { y[j] = Int16(Int8(bitPattern: x[2 + j])) }
                }
            }
        case .q4_K, .q5_K:
            let size = t == .q4_K ? 144 : 176
            for i in 0..<(cols / 256) {
                let x = b + i * size
                let d = f16(x, 0), dmin = f16(x, 2), sc = x + 4
                let qh = x + 16, ql = x + (t == .q4_K ? 16 : 48)
                for j in 0..<8 {
                    var s: UInt8, m: UInt8
                    if j < 4 { s = sc[j] & 63; m = sc[j + 4] & 63 } else {
                        s = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4)
                        m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4)
                    }
                    scale[i * 8 + j] = d * Float(s)
                    min[i * 8 + j] = -(dmin * Float(m))
                    let chunk = j / 2, hi = j % 2 == 1
                    let y = q + i * 256 + j * 32
                    for l in 0..<32 {
                        let byte = ql[chunk * 32 + l]
                        var v = Int16(hi ? byte >> 4 : byte & 0xF)
                        if t == .q5_K && qh[l] & (UInt8(1) << UInt8(j)) != 0 { v += 16 }
                        y[l] = v
                    }
                }
            }
        case .q6_K:
            for i in 0..<(cols / 256) {
                let x = b + i * 210
                let ql = x, qh = x + 128, sc = UnsafeRawPointer(x + 192).assumingMemoryBound(to: Int8.self)
                let d = f16(x, 208)
                for s in 0..<16 { scale[i * 16 + s] = d * Float(sc[s]); min[i * 16 + s] = 0 }
                for n in 0..<2 {
                    let y = q + i * 256 + n * 128, l0 = ql + n * 64, h0 = qh + n * 32
                    for l in 0..<32 {
                        y[l] = Int16((l0[l] & 0xF) | (((h0[l] >> 0) & 3) << 4)) - 32
                        y[l + 32] = Int16((l0[l + 32] & 0xF) | (((h0[l] >> 2) & 3) << 4)) - 32
                        y[l + 64] = Int16((l0[l] >> 4) | (((h0[l] >> 4) & 3) << 4)) - 32
                        y[l + 96] = Int16((l0[l + 32] >> 4) | (((h0[l] >> 6) & 3) << 4)) - 32
                    }
                }
            }
        case .q2_K:
            for i in 0..<(cols / 256) {
                let x = b + i * 84
                let sc = x, qs = x + 16, d = f16(x, 80), dmin = f16(x, 82)
                for s in 0..<16 {
                    scale[i * 16 + s] = d * Float(sc[s] & 0xF)
                    min[i * 16 + s] = -(dmin * Float(sc[s] >> 4))
                    let h = s / 8, j = (s % 8) / 2, second = s % 2
                    let y = q + i * 256 + s * 16, src = qs + h * 32 + second * 16
                    for l in 0..<16 { y[l] = Int16((src[l] >> UInt8(2 * j)) & 3) }
                }
            }
        case .q3_K:
            for i in 0..<(cols / 256) {
                let x = b + i * 110
                let hm = x, qs = x + 32, d = f16(x, 108)
                var aux = [UInt32](repeating: 0, count: 4)
                for w in 0..<3 { aux[w] = UnsafeRawPointer(x + 96 + 4 * w).loadUnaligned(as: UInt32.self) }
                let kmask1: UInt32 = 0x0303_0303, kmask2: UInt32 = 0x0f0f_0f0f, tmp = aux[2]
                aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
                aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
                aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4)
                aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4)
                for s in 0..<16 {
                    let sc = Int8(bitPattern: UInt8(truncatingIfNeeded: aux[s / 4] >> UInt32(8 * (s % 4))))
                    scale[i * 16 + s] = d * Float(Int(sc) - 32)
                    min[i * 16 + s] = 0
                    let h = s / 8, j = (s % 8) / 2, second = s % 2
                    let m = UInt8(1) << UInt8(h * 4 + j)
                    let y = q + i * 256 + s * 16, src = qs + h * 32 + second * 16, hsrc = hm + second * 16
                    for l in 0..<16 {
                        y[l] = Int16((src[l] >> UInt8(2 * j)) & 3) - (hsrc[l] & m != 0 ? 0 : 4)
                    }
                }
            }
        case .iq4_nl, .iq4_xs:
            let kvalues: [Int16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
            if t == .iq4_nl {
                for i in 0..<(cols / 32) {
                    let x = b + i * 18, qs = x + 2, y = q + i * 32
                    scale[i] = f16(x, 0)
                    min[i] = 0
                    for j in 0..<16 { y[j] = kvalues[Int(qs[j] & 0xF)]; y[j + 16] = kvalues[Int(qs[j] >> 4)] }
                }
            } else {
                for i in 0..<(cols / 256) {
                    let x = b + i * 136
                    let d = f16(x, 0), sh = UnsafeRawPointer(x + 2).loadUnaligned(as: UInt16.self)
                    let sl = x + 4, qs = x + 8
                    for ib in 0..<8 {
                        let ls = Int((sl[ib / 2] >> UInt8(4 * (ib % 2))) & 0xF) | (Int((sh >> UInt16(2 * ib)) & 3) << 4)
                        scale[i * 8 + ib] = d * Float(ls - 32)
                        min[i * 8 + ib] = 0
                        let y = q + i * 256 + ib * 32, src = qs + ib * 16
                        for j in 0..<16 { y[j] = kvalues[Int(src[j] & 0xF)]; y[j + 16] = kvalues[Int(src[j] >> 4)] }
                    }
                }
            }
        default:
            preconditionFailure("no integer decoding for \(t)")
        }
    }
}
