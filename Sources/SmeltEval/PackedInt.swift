import Foundation
import CSmeltKernels
import SmeltFormats
import SmeltQuant

/// A quantized matrix multiplied in integers by `smelt_gemm_int16` (SmeltQuant's
/// `IntegerDecoding`: `scale × q + min` per sub-block, bit-identical to ggml's
/// dequantization). The rows stay as mapped from the file: each product decodes one
/// block of 48 rows at a time into a per-worker buffer (int16 panels of 16 rows) that every
/// token then uses, so no decoded copy of the matrix is kept. Products are integer sums per
/// sub-block against activations quantized as ggml's `vec_dot_type` (q8_0 blocks of 32 or
/// q8_K blocks of 256), as in llama.cpp.
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
        guard let l = IntegerDecoding.layout(for: type), cols % l.activationBlock == 0, cols % l.sub == 0 else { return nil }
        self.rows = rows
        self.cols = cols
        self.type = type
        self.raw = raw
        self.rowBytes = rowBytes
        layout = l
    }

    /// Scratch sizes of one worker, in elements: packed int16 values, scales (and as many mins),
    /// one decoded row group (16 rows of int16), one row's scales.
    private var scratchCounts: (q: Int, s: Int, rowQ: Int, rowS: Int) {
        let nsub = cols / layout.sub
        return (smelt_bf16_packed_count(Int32(Self.blockPanels * 16), Int32(cols)), Self.blockPanels * nsub * 16, 16 * cols, nsub)
    }

    /// Decodes panels [p0, p1) into `q` / `scales` / `mins` (panel p0 first; lanes of missing rows get 0).
    private func decode(panels p0: Int, _ p1: Int, q: UnsafeMutablePointer<Int16>, scales: UnsafeMutablePointer<Float>,
                        mins: UnsafeMutablePointer<Float>?, rowQ rq: UnsafeMutablePointer<Int16>,
                        rowScale rs: UnsafeMutablePointer<Float>, rowMin rm: UnsafeMutablePointer<Float>) {
        let nsub = cols / layout.sub, pairs = cols / 2
        for p in p0..<p1 {
            let r0 = p * 16, n = min(16, rows - r0), pp = p - p0
            for i in 0..<n {
                IntegerDecoding.decodeRow(type, raw + (r0 + i) * rowBytes, cols: cols, q: rq + i * cols, scale: rs, min: rm)
                for s in 0..<nsub {
                    scales[(pp * nsub + s) * 16 + i] = rs[s]
                    mins?[(pp * nsub + s) * 16 + i] = rm[s]
                }
            }
            for i in n..<16 {
                for s in 0..<nsub { scales[(pp * nsub + s) * 16 + i] = 0; mins?[(pp * nsub + s) * 16 + i] = 0 }
            }
            smelt_int16_pack(rq, Int32(cols), Int32(n), Int32(cols), q + pp * pairs * 32)
        }
    }

    /// The whole matrix decoded in the products' layout (panels of 16 rows; scales and mins
    /// per panel and sub-block), for tests and the portable product.
    func decodedPanels() -> (q: [Int16], scales: [Float], mins: [Float]?) {
        let panels = (rows + 15) / 16, nsub = cols / layout.sub, pairs = cols / 2
        var q = [Int16](repeating: 0, count: panels * pairs * 32)
        var scales = [Float](repeating: 0, count: panels * nsub * 16), mins = scales
        var rq = [Int16](repeating: 0, count: 16 * cols), rs = [Float](repeating: 0, count: nsub), rm = rs
        q.withUnsafeMutableBufferPointer { qp in scales.withUnsafeMutableBufferPointer { sp in mins.withUnsafeMutableBufferPointer { mp in
            rq.withUnsafeMutableBufferPointer { rqp in rs.withUnsafeMutableBufferPointer { rsp in rm.withUnsafeMutableBufferPointer { rmp in
                decode(panels: 0, panels, q: qp.baseAddress!, scales: sp.baseAddress!, mins: layout.hasMin ? mp.baseAddress! : nil,
                       rowQ: rqp.baseAddress!, rowScale: rsp.baseAddress!, rowMin: rmp.baseAddress!)
            } } }
        } } }
        return (q, scales, layout.hasMin ? mins : nil)
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
        let panels = (rows + 15) / 16
        let groups = (panels + Self.blockPanels - 1) / Self.blockPanels
        let t = max(1, min(threads, groups))
        let c = scratchCounts
        func int16s(_ name: String, _ n: Int) -> UnsafeMutablePointer<Int16> {
            UnsafeMutableRawPointer(workspace.get(name, (n + 1) / 2).p).assumingMemoryBound(to: Int16.self)
        }
        let sq = int16s("intBlockQ", t * c.q), srq = int16s("intRowQ", t * c.rowQ)
        let ss = workspace.get("intBlockScales", t * c.s).p
        let sm = l.hasMin ? workspace.get("intBlockMins", t * c.s).p : nil
        let srs = workspace.get("intRowScales", t * c.rowS).p, srm = workspace.get("intRowMins", t * c.rowS).p
        let rows = self.rows
        Parallel.forEach(groups, threads: t) { w, g in
            let p0 = g * Self.blockPanels, p1 = min(panels, p0 + Self.blockPanels)
            let r0 = p0 * 16, r1 = min(rows, p1 * 16)
            let q = sq + w * c.q, scales = ss + w * c.s, mins = sm.map { $0 + w * c.s }
            self.decode(panels: p0, p1, q: q, scales: scales, mins: mins, rowQ: srq + w * c.rowQ,
                        rowScale: srs + w * c.rowS, rowMin: srm + w * c.rowS)
            smelt_gemm_int16(Int32(m), Int32(r1 - r0), Int32(K), Int32(l.sub), Int32(l.activationBlock),
                             xq, Int32(K), xd, xs, q, scales, mins, out + r0, Int32(ldc))
        }
    }
}
