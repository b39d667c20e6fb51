import Foundation
import CSmeltKernels
import SmeltFormats
import SmeltQuant

/// A quantized matrix multiplied in integers by `smelt_gemm_int8` (SmeltQuant's
/// `IntegerDecoding`: `scale × q + min` per sub-block, bit-identical to ggml's
/// dequantization). The rows stay as mapped from the file: each product decodes one
/// block of 48 rows at a time into a per-worker buffer (int8 panels of 16 rows, with each
/// sub-block's correction for the unsigned activations) that every token then uses, so no
/// decoded copy of the matrix is kept. Products are exact integer sums per sub-block against
/// activations quantized as ggml's `vec_dot_type` (q8_0 blocks of 32 or q8_K blocks of 256),
/// as in llama.cpp.
final class PackedInt: @unchecked Sendable {
    let rows: Int, cols: Int
    let type: GGMLType
    let layout: IntegerDecoding.Layout
    private let raw: UnsafeRawPointer
    private let rowBytes: Int
    /// Panels of 16 rows decoded per block.
    static let blockPanels = 3

    /// The `rows` rows of type `type` at `raw` (`rowBytes` apart), which must stay mapped
    /// as long as this value is used; nil when the type has no integer decoding or the row
    /// length is not a whole number of its activation blocks and sub-blocks.
    init?(type: GGMLType, raw: UnsafeRawPointer, rowBytes: Int, rows: Int, cols: Int) {
        guard let l = IntegerDecoding.layout(for: type), cols % l.activationBlock == 0, cols % l.sub == 0, l.sub % 4 == 0 else { return nil }
        self.rows = rows
        self.cols = cols
        self.type = type
        self.raw = raw
        self.rowBytes = rowBytes
        layout = l
    }

    /// Per panel: int8 values and sub-block counts (corrections, scales, mins).
    private var panelCounts: (q: Int, s: Int) { (cols * 16, cols / layout.sub * 16) }

    /// Decodes panels [p0, p1) into `q` / `corrections` / `scales` / `mins` (panel p0 first;
    /// lanes of missing rows get 0), through `rq` (16 rows of int16) and `rs` / `rm` (one row's
    /// scales and mins).
    private func decode(panels p0: Int, _ p1: Int, q: UnsafeMutablePointer<Int8>, corrections: UnsafeMutablePointer<Int32>,
                        scales: UnsafeMutablePointer<Float>, mins: UnsafeMutablePointer<Float>?, rowQ rq: UnsafeMutablePointer<Int16>,
                        rowScale rs: UnsafeMutablePointer<Float>, rowMin rm: UnsafeMutablePointer<Float>) {
        let nsub = cols / layout.sub, c = panelCounts
        for p in p0..<p1 {
            let r0 = p * 16, n = min(16, rows - r0), pp = p - p0
            for i in 0..<n {
                let src = raw + (r0 + i) * rowBytes
                if smelt_decode_row_int(Int32(type.rawValue), src, Int32(cols), rq + i * cols, rs, rm) == 0 {
                    IntegerDecoding.decodeRow(type, src, cols: cols, q: rq + i * cols, scale: rs, min: rm)
                }
                for s in 0..<nsub {
                    scales[(pp * nsub + s) * 16 + i] = rs[s]
                    mins?[(pp * nsub + s) * 16 + i] = rm[s]
                }
            }
            for i in n..<16 {
                for s in 0..<nsub { scales[(pp * nsub + s) * 16 + i] = 0; mins?[(pp * nsub + s) * 16 + i] = 0 }
            }
            smelt_int8_pack(rq, Int32(cols), Int32(n), Int32(cols), Int32(layout.sub), q + pp * c.q, corrections + pp * c.s)
        }
    }

    /// The whole matrix decoded in the products' layout (panels of 16 rows; corrections,
    /// scales and mins per panel and sub-block), for tests.
    func decodedPanels() -> (q: [Int8], corrections: [Int32], scales: [Float], mins: [Float]?) {
        let panels = (rows + 15) / 16, nsub = cols / layout.sub, c = panelCounts
        var q = [Int8](repeating: 0, count: panels * c.q), corrections = [Int32](repeating: 0, count: panels * c.s)
        var scales = [Float](repeating: 0, count: panels * c.s), mins = scales
        var rq = [Int16](repeating: 0, count: 16 * cols), rs = [Float](repeating: 0, count: nsub), rm = rs
        q.withUnsafeMutableBufferPointer { qp in corrections.withUnsafeMutableBufferPointer { cp in
            scales.withUnsafeMutableBufferPointer { sp in mins.withUnsafeMutableBufferPointer { mp in
                rq.withUnsafeMutableBufferPointer { rqp in rs.withUnsafeMutableBufferPointer { rsp in rm.withUnsafeMutableBufferPointer { rmp in
                    decode(panels: 0, panels, q: qp.baseAddress!, corrections: cp.baseAddress!, scales: sp.baseAddress!,
                           mins: layout.hasMin ? mp.baseAddress! : nil, rowQ: rqp.baseAddress!, rowScale: rsp.baseAddress!, rowMin: rmp.baseAddress!)
                } } }
            } }
        } }
        return (q, corrections, scales, layout.hasMin ? mins : nil)
    }

    /// out[m × rows] = x[m × cols] · Wᵀ: the activations are quantized first (ggml's
    /// `vec_dot_type` rounding), then multiplied in integers over `threads` workers, each
    /// decoding its blocks of rows into scratch from `workspace`.
    /// `reuse` (see `InferenceModel.matmul`) skips quantizing activations that the
    /// previous call quantized the same way.
    func multiply(_ x: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>, ldc: Int, threads: Int,
                  workspace: Workspace, reuse: String? = nil) {
        let K = cols, l = layout
        let nblk = K / l.activationBlock, nsub = K / l.sub
        // one int16 row per worker, moved to unsigned bytes at once (no m × K int16 copy)
        let xq = UnsafeMutableRawPointer(workspace.get("xq16", (threads * K + 1) / 2).p).assumingMemoryBound(to: Int16.self)
        let xu = UnsafeMutableRawPointer(workspace.get("xu8", (m * K + 3) / 4).p).assumingMemoryBound(to: UInt8.self)
        let xd = workspace.get("xd", m * nblk).p
        let xs = l.hasMin ? workspace.get("xs", m * nsub).p : nil
        let key = reuse.map { "\($0)|int|\(m)|\(K)|\(l.activationBlock)|\(l.sub)|\(l.hasMin)" }
        if key == nil || key != workspace.activationKey {
            Parallel.ranges(m, threads: m * K > 1 << 15 ? threads : 1) { w, r in
                let row = xq + w * K
                for t in r {
                    smelt_quantize_activations(x + t * K, Int32(K), Int32(l.activationBlock), row, xd + t * nblk,
                                               Int32(l.sub), xs.map { $0 + t * nsub })
                    smelt_activations_u8(row, Int32(K), xu + t * K)
                }
            }
        }
        workspace.activationKey = key
        let panels = (rows + 15) / 16
        let groups = (panels + Self.blockPanels - 1) / Self.blockPanels
        let t = max(1, min(threads, groups))
        let c = panelCounts, bq = Self.blockPanels * c.q, bs = Self.blockPanels * c.s
        let sq = UnsafeMutableRawPointer(workspace.get("intBlockQ", t * bq / 4).p).assumingMemoryBound(to: Int8.self)
        let sc = UnsafeMutableRawPointer(workspace.get("intBlockCorrections", t * bs).p).assumingMemoryBound(to: Int32.self)
        let srq = UnsafeMutableRawPointer(workspace.get("intRowQ", t * 16 * K / 2).p).assumingMemoryBound(to: Int16.self)
        let ss = workspace.get("intBlockScales", t * bs).p
        let sm = l.hasMin ? workspace.get("intBlockMins", t * bs).p : nil
        let srs = workspace.get("intRowScales", t * nsub).p, srm = workspace.get("intRowMins", t * nsub).p
        let rows = self.rows
        Parallel.forEach(groups, threads: t) { w, g in
            let p0 = g * Self.blockPanels, p1 = min(panels, p0 + Self.blockPanels)
            let r0 = p0 * 16, r1 = min(rows, p1 * 16)
            let q = sq + w * bq, corr = sc + w * bs, scales = ss + w * bs, mins = sm.map { $0 + w * bs }
            self.decode(panels: p0, p1, q: q, corrections: corr, scales: scales, mins: mins, rowQ: srq + w * 16 * K,
                        rowScale: srs + w * nsub, rowMin: srm + w * nsub)
            smelt_gemm_int8(Int32(m), Int32(r1 - r0), Int32(K), Int32(l.sub), Int32(l.activationBlock),
                            xu, Int32(K), xd, xs, q, corr, scales, mins, out + r0, Int32(ldc))
        }
    }
}
