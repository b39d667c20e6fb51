import Foundation
import CSmeltKernels
import SmeltFormats
import SmeltQuant

/// A quantized matrix decoded to integers for `smelt_gemm_int16` (SmeltQuant's
/// `IntegerDecoding`: `scale × q + min` per sub-block, bit-identical to ggml's
/// dequantization), packed in panels of 16 rows. Products
/// are integer sums per sub-block against activations quantized as ggml's
/// `vec_dot_type` (q8_0 blocks of 32 or q8_K blocks of 256), as in llama.cpp.
final class PackedInt: @unchecked Sendable {
    let rows: Int, cols: Int
    let layout: IntegerDecoding.Layout
    let q: UnsafeMutablePointer<Int16>
    let scales: UnsafeMutablePointer<Float>
    let mins: UnsafeMutablePointer<Float>?

    /// Decodes and packs `rows` rows of type `type` (`rowBytes` apart).
    init?(type: GGMLType, raw: UnsafeRawPointer, rowBytes: Int, rows: Int, cols: Int, threads: Int) {
        guard let l = IntegerDecoding.layout(for: type), cols % l.activationBlock == 0, cols % l.sub == 0 else { return nil }
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
                IntegerDecoding.decodeRow(type, raw + (r0 + i) * rowBytes, cols: cols, q: rq + i * cols, scale: rs, min: rm)
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
        let nblk = K / l.activationBlock, nsub = K / l.sub
        let xqBuf = workspace.get("xq16", (m * K + 1) / 2)
        let xq = UnsafeMutableRawPointer(xqBuf.p).assumingMemoryBound(to: Int16.self)
        let xd = workspace.get("xd", m * nblk).p
        let xs = l.hasMin ? workspace.get("xs", m * nsub).p : nil
        let key = reuse.map { "\($0)|int|\(m)|\(K)|\(l.activationBlock)|\(l.sub)|\(l.hasMin)" }
        if key == nil || key != workspace.activationKey {
            Parallel.ranges(m, threads: m * K > 1 << 15 ? threads : 1) { _, r in
                for t in r {
                    smelt_quantize_activations(x + t * K, Int32(K), Int32(l.activationBlock), xq + t * K, xd + t * nblk,
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
            smelt_gemm_int16(Int32(t1 - t0), Int32(r1 - r0), Int32(K), Int32(l.sub), Int32(l.activationBlock),
                             xq + t0 * K, Int32(K), xd + t0 * nblk, xs.map { $0 + t0 * nsub },
                             q + p0 * pairs * 32, scales + p0 * nsub * 16, mins.map { $0 + p0 * nsub * 16 },
                             out + t0 * ldc + r0, Int32(ldc))
        }
    }
}
