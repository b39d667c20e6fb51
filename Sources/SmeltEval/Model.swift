import Foundation
import SmeltFormats

/// Receives the input of every matrix multiplication of the transformer
/// blocks (for the importance matrix): `rows` tokens × `cols` input columns.
public protocol ActivationObserver: AnyObject {
    func observe(weight: String, input: UnsafePointer<Float>, rows: Int, cols: Int)
}

/// A decoder-only transformer loaded for CPU inference: a GGUF file (any
/// ggml type Smelt has a kernel for) or a Hugging Face checkpoint folder.
public final class InferenceModel: @unchecked Sendable {
    /// The hyperparameters in use.
    public let config: ModelConfig
    /// Worker threads of the forward pass.
    public let threads: Int
    /// Where the weights came from (for messages).
    public let source: URL
    /// The GGUF file, when the model is one (tokenizer metadata lives there).
    public let gguf: GGUFFile?
    let tokenEmbedding: WeightMatrix
    let output: WeightMatrix
    let outputNorm: [Float]
    let layers: [LayerWeights]
    let ropeFactors: [Float]?

    /// Rows of the output matrix (the logits' width).
    public var logitCount: Int { output.rows }

    /// Loads `url` (a `.gguf` file or a checkpoint folder). Matrices are
    /// dequantized once to float32 when `cacheFloat32` is true (the default
    /// when they take less than a third of the machine's memory); otherwise a
    /// row block at a time inside each product.
    public init(url: URL, threads: Int = ProcessInfo.processInfo.activeProcessorCount, cacheFloat32: Bool? = nil) throws {
        self.threads = max(1, threads)
        source = url
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SmeltError("\(url.path): no such file or folder")
        }
        let src: TensorSource
        if isDir.boolValue {
            config = try ModelConfig(huggingFaceFolder: url)
            src = try HFTensorSource(folder: url, config: config)
            gguf = nil
        } else {
            let f = try GGUFFile(url: url)
            config = try ModelConfig(gguf: f)
            src = GGUFTensorSource(file: f)
            gguf = f
        }
        let c = config
        tokenEmbedding = try src.matrix("token_embd.weight")
        output = try src.optionalMatrix("output.weight") ?? tokenEmbedding
        outputNorm = try src.vector("output_norm.weight")
        ropeFactors = try src.optionalVector("rope_freqs.weight") ?? src.optionalVector("rope_factors_short.weight")
        var ls: [LayerWeights] = []
        for il in 0..<c.layerCount {
            func n(_ s: String) -> String { "blk.\(il).\(s)" }
            let wqkv = try src.optionalMatrix(n("attn_qkv.weight"))
            let up = try src.matrix(n("ffn_up.weight"))
            let l = LayerWeights(
                attnNorm: try src.vector(n("attn_norm.weight")),
                wq: wqkv == nil ? try src.matrix(n("attn_q.weight")) : nil,
                wk: wqkv == nil ? try src.matrix(n("attn_k.weight")) : nil,
                wv: wqkv == nil ? try src.matrix(n("attn_v.weight")) : nil,
                wqkv: wqkv,
                bq: try src.optionalVector(n("attn_q.bias")), bk: try src.optionalVector(n("attn_k.bias")),
                bv: try src.optionalVector(n("attn_v.bias")), bqkv: try src.optionalVector(n("attn_qkv.bias")),
                qNorm: try src.optionalVector(n("attn_q_norm.weight")), kNorm: try src.optionalVector(n("attn_k_norm.weight")),
                wo: try src.matrix(n("attn_output.weight")), bo: try src.optionalVector(n("attn_output.bias")),
                attnPostNorm: try src.optionalVector(n("post_attention_norm.weight")),
                ffnNorm: try src.vector(n("ffn_norm.weight")),
                gate: try src.optionalMatrix(n("ffn_gate.weight")), up: up, down: try src.matrix(n("ffn_down.weight")),
                bGate: try src.optionalVector(n("ffn_gate.bias")), bUp: try src.optionalVector(n("ffn_up.bias")),
                bDown: try src.optionalVector(n("ffn_down.bias")),
                ffnPostNorm: try src.optionalVector(n("post_ffw_norm.weight")))
            // shape checks
            let qDim = c.headCount * c.headDim, kvDim = c.headCountKV * c.headDim
            if let w = l.wqkv {
                guard w.cols == c.embeddingLength, w.rows == qDim + 2 * kvDim else { throw SmeltError("\(w.name): unexpected shape \(w.cols)×\(w.rows)") }
            } else {
                for (w, r) in [(l.wq!, qDim), (l.wk!, kvDim), (l.wv!, kvDim)] {
                    guard w.cols == c.embeddingLength, w.rows == r else { throw SmeltError("\(w.name): unexpected shape [\(w.cols), \(w.rows)], expected [\(c.embeddingLength), \(r)]") }
                }
            }
            guard l.wo.cols == qDim, l.wo.rows == c.embeddingLength else { throw SmeltError("\(l.wo.name): unexpected shape") }
            let ffRows = l.gate == nil ? 2 * c.feedForwardLength : c.feedForwardLength
            guard l.up.rows == ffRows, l.up.cols == c.embeddingLength, l.down.cols == c.feedForwardLength,
                  l.down.rows == c.embeddingLength else { throw SmeltError("blk.\(il): unexpected feed-forward shapes") }
            ls.append(l)
        }
        layers = ls
        guard tokenEmbedding.cols == c.embeddingLength, output.cols == c.embeddingLength else {
            throw SmeltError("embedding/output width differs from embedding_length \(c.embeddingLength)")
        }
        var all: [WeightMatrix] = [tokenEmbedding]
        if output !== tokenEmbedding { all.append(output) }
        for l in ls { all += [l.wq, l.wk, l.wv, l.wqkv, l.wo, l.gate, l.up, l.down].compactMap { $0 } }
        let total = all.reduce(0) { $0 + ($1.f32 == nil ? $1.floatBytes : 0) }
        let memory = Int(ProcessInfo.processInfo.physicalMemory)
        if cacheFloat32 ?? (total < memory / 3) {
            for m in all { m.cache(threads: self.threads) }
        }
    }

    // MARK: - forward pass

    /// Runs `sequenceCount` independent sequences of `sequenceLength` tokens
    /// (`tokens` holds them one after the other; positions restart at 0 in
    /// each) and returns the logits of positions `firstOutput..<sequenceLength`
    /// of every sequence, row-major `[sequenceCount × outputs, logitCount]`.
    public func forward(tokens: [Int32], sequenceLength: Int, sequenceCount: Int = 1, firstOutput: Int = 0,
                        observer: ActivationObserver? = nil) throws -> [Float] {
        let c = config
        let L = sequenceLength, S = sequenceCount, T = L * S
        guard tokens.count == T, L > 0, firstOutput >= 0, firstOutput < L else {
            throw SmeltError("forward: \(tokens.count) tokens for \(S) sequences of \(L)")
        }
        for t in tokens where t < 0 || Int(t) >= tokenEmbedding.rows {
            throw SmeltError("token id \(t) is outside the embedding table (\(tokenEmbedding.rows) rows)")
        }
        let E = c.embeddingLength, D = c.headDim, H = c.headCount, HKV = c.headCountKV
        let qDim = H * D, kvDim = HKV * D, F = c.feedForwardLength
        let nOutPerSeq = L - firstOutput
        let outRows = (0..<S).flatMap { s in (firstOutput..<L).map { s * L + $0 } }
        let pruneLast = nOutPerSeq < L

        let x = Buffer(T * E), h = Buffer(T * E)
        let q = Buffer(T * qDim), k = Buffer(T * kvDim), v = Buffer(T * kvDim)
        let attn = Buffer(T * qDim), o = Buffer(T * E)
        let fa = Buffer(T * F), fb = Buffer(T * F)
        let qkv = layers.first?.wqkv != nil ? Buffer(T * (qDim + 2 * kvDim)) : nil
        let fused = layers.first?.gate == nil ? Buffer(T * 2 * F) : nil
        defer { [x, h, q, k, v, attn, o, fa, fb].forEach { $0.free() }; qkv?.free(); fused?.free() }

        // embeddings
        Parallel.ranges(T, threads: threads) { _, r in
            for t in r {
                let row = Int(tokens[t])
                self.tokenEmbedding.dequantize(rows: row..<(row + 1), into: x.p + t * E)
                if c.embeddingScale != 1 { for i in 0..<E { x.p[t * E + i] *= c.embeddingScale } }
            }
        }
        let ropeNormal = RopeTable(config: c, length: L, base: c.ropeFreqBase, scale: c.ropeFreqScale, factors: ropeFactors)
        let ropeSWA = c.slidingWindow > 0
            ? RopeTable(config: c, length: L, base: c.ropeFreqBaseSWA, scale: c.ropeFreqScaleSWA, factors: ropeFactors) : ropeNormal
        var rows = T  // rows alive in x (the last layer may keep only the output rows)

        for (il, lw) in layers.enumerated() {
            let last = il == layers.count - 1
            rmsNorm(x.p, rows: T, width: E, weight: lw.attnNorm, eps: c.rmsEpsilon, out: h.p)
            if let w = lw.wqkv, let qkv {
                matmul(h.p, rows: T, w, out: qkv.p, observer: observer)
                let W = qDim + 2 * kvDim
                if let b = lw.bqkv { addBias(qkv.p, rows: T, width: W, bias: b) }
                Parallel.ranges(T, threads: threads) { _, r in
                    for t in r {
                        (q.p + t * qDim).update(from: qkv.p + t * W, count: qDim)
                        (k.p + t * kvDim).update(from: qkv.p + t * W + qDim, count: kvDim)
                        (v.p + t * kvDim).update(from: qkv.p + t * W + qDim + kvDim, count: kvDim)
                    }
                }
            } else {
                matmul(h.p, rows: T, lw.wq!, out: q.p, observer: observer)
                matmul(h.p, rows: T, lw.wk!, out: k.p, observer: observer)
                matmul(h.p, rows: T, lw.wv!, out: v.p, observer: observer)
                if let b = lw.bq { addBias(q.p, rows: T, width: qDim, bias: b) }
                if let b = lw.bk { addBias(k.p, rows: T, width: kvDim, bias: b) }
                if let b = lw.bv { addBias(v.p, rows: T, width: kvDim, bias: b) }
            }
            if let w = lw.qNorm { rmsNorm(q.p, rows: T * H, width: D, weight: w, eps: c.rmsEpsilon, out: q.p) }
            if let w = lw.kNorm { rmsNorm(k.p, rows: T * HKV, width: D, weight: w, eps: c.rmsEpsilon, out: k.p) }
            let rope = c.isSliding(il) ? ropeSWA : ropeNormal
            rope.apply(q.p, tokens: T, heads: H, headDim: D, sequenceLength: L, threads: threads)
            rope.apply(k.p, tokens: T, heads: HKV, headDim: D, sequenceLength: L, threads: threads)
            attention(q: q.p, k: k.p, v: v.p, out: attn.p, sequences: S, length: L,
                      window: c.isSliding(il) ? c.slidingWindow : 0)

            if last && pruneLast {
                // keep only the rows whose logits are wanted (as llama.cpp's inp_out_ids)
                for (i, r) in outRows.enumerated() where i != r {
                    (attn.p + i * qDim).update(from: attn.p + r * qDim, count: qDim)
                    (x.p + i * E).update(from: x.p + r * E, count: E)
                }
                rows = outRows.count
            }
            matmul(attn.p, rows: rows, lw.wo, out: o.p, observer: observer)
            if let b = lw.bo { addBias(o.p, rows: rows, width: E, bias: b) }
            if let w = lw.attnPostNorm { rmsNorm(o.p, rows: rows, width: E, weight: w, eps: c.rmsEpsilon, out: o.p) }
            add(x.p, o.p, count: rows * E)

            rmsNorm(x.p, rows: rows, width: E, weight: lw.ffnNorm, eps: c.rmsEpsilon, out: h.p)
            if let g = lw.gate {
                matmul(h.p, rows: rows, g, out: fa.p, observer: observer)
                matmul(h.p, rows: rows, lw.up, out: fb.p, observer: observer)
                if let b = lw.bGate { addBias(fa.p, rows: rows, width: F, bias: b) }
                if let b = lw.bUp { addBias(fb.p, rows: rows, width: F, bias: b) }
                gatedActivation(fa.p, fb.p, rows: rows, width: F, gateStride: F, upStride: F, out: fa.p)
            } else if let fused {
                matmul(h.p, rows: rows, lw.up, out: fused.p, observer: observer)
                if let b = lw.bUp { addBias(fused.p, rows: rows, width: 2 * F, bias: b) }
                gatedActivation(fused.p, fused.p + F, rows: rows, width: F, gateStride: 2 * F, upStride: 2 * F, out: fa.p)
            }
            matmul(fa.p, rows: rows, lw.down, out: o.p, observer: observer)
            if let b = lw.bDown { addBias(o.p, rows: rows, width: E, bias: b) }
            if let w = lw.ffnPostNorm { rmsNorm(o.p, rows: rows, width: E, weight: w, eps: c.rmsEpsilon, out: o.p) }
            add(x.p, o.p, count: rows * E)
        }
        if !pruneLast || layers.isEmpty {
            for (i, r) in outRows.enumerated() where i != r { (x.p + i * E).update(from: x.p + r * E, count: E) }
        }
        let nOut = outRows.count
        rmsNorm(x.p, rows: nOut, width: E, weight: outputNorm, eps: c.rmsEpsilon, out: h.p)
        let V = output.rows
        var logits = [Float](repeating: 0, count: nOut * V)
        logits.withUnsafeMutableBufferPointer { lp in
            matmul(h.p, rows: nOut, output, out: lp.baseAddress!, observer: observer)
            if c.finalLogitSoftcap > 0 {
                let cap = c.finalLogitSoftcap
                let p = lp.baseAddress!
                Parallel.ranges(nOut * V, threads: threads) { _, r in
                    for i in r { p[i] = tanhf(p[i] / cap) * cap }
                }
            }
        }
        return logits
    }

    // MARK: - kernels

    /// out[rows × w.rows] = a[rows × w.cols] · wᵀ, in row blocks over the workers.
    func matmul(_ a: UnsafePointer<Float>, rows: Int, _ w: WeightMatrix, out: UnsafeMutablePointer<Float>,
                observer: ActivationObserver?) {
        if rows == 0 { return }
        observer?.observe(weight: w.name, input: a, rows: rows, cols: w.cols)
        let N = w.rows, K = w.cols
        var block = (N + threads * 4 - 1) / (threads * 4)
        block = min(1024, max(64, (block + 15) / 16 * 16))
        let nBlocks = (N + block - 1) / block
        if let f = w.f32 {
            Parallel.forEach(nBlocks, threads: threads) { _, b in
                let lo = b * block, n = min(N, lo + block) - lo
                BLAS.gemmNT(m: rows, n: n, k: K, a: a, lda: K, b: f + lo * K, ldb: K, c: out + lo, ldc: N)
            }
        } else {
            let scratch = (0..<threads).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: block * K) }
            defer { scratch.forEach { $0.deallocate() } }
            Parallel.forEach(nBlocks, threads: threads) { worker, b in
                let lo = b * block, n = min(N, lo + block) - lo
                w.dequantize(rows: lo..<(lo + n), into: scratch[worker])
                BLAS.gemmNT(m: rows, n: n, k: K, a: a, lda: K, b: scratch[worker], ldb: K, c: out + lo, ldc: N)
            }
        }
    }

    func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float, out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { wp in
            let w = wp.baseAddress!
            Parallel.ranges(rows, threads: rows * width > 1 << 14 ? threads : 1) { _, r in
                for t in r {
                    let xi = x + t * width, oi = out + t * width
                    var sum: Double = 0
                    for i in 0..<width { sum += Double(xi[i] * xi[i]) }
                    let mean = Float(sum / Double(width))
                    let scale = 1 / (mean + eps).squareRoot()
                    for i in 0..<width { oi[i] = xi[i] * scale * w[i] }
                }
            }
        }
    }

    func addBias(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, bias: [Float]) {
        bias.withUnsafeBufferPointer { bp in
            let b = bp.baseAddress!
            for t in 0..<rows { for i in 0..<width { x[t * width + i] += b[i] } }
        }
    }

    func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        Parallel.ranges(count, threads: count > 1 << 16 ? threads : 1) { _, r in
            for i in r { x[i] += y[i] }
        }
    }

    func gatedActivation(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, rows: Int, width: Int,
                         gateStride: Int, upStride: Int, out: UnsafeMutablePointer<Float>) {
        let gelu = config.activation == .geluTanh
        Parallel.ranges(rows, threads: threads) { _, r in
            for t in r {
                let g = gate + t * gateStride, u = up + t * upStride, o = out + t * width
                if gelu {
                    for i in 0..<width {
                        let xg = g[i]
                        let y = 0.5 * xg * (1 + tanhf(0.7978845608028654 * xg * (1 + 0.044715 * xg * xg)))
                        o[i] = y * u[i]
                    }
                } else {
                    for i in 0..<width {
                        let xg = g[i]
                        o[i] = xg / (1 + expf(-xg)) * u[i]
                    }
                }
            }
        }
    }

    /// Causal (optionally sliding-window) grouped-query attention, per sequence and head.
    func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                   out: UnsafeMutablePointer<Float>, sequences S: Int, length L: Int, window: Int) {
        let c = config
        let D = c.headDim, H = c.headCount, HKV = c.headCountKV
        let ldq = H * D, ldk = HKV * D
        let group = H / HKV
        let scale = c.attentionScale
        let cap = c.attnLogitSoftcap
        let scratch = (0..<threads).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: L * L) }
        defer { scratch.forEach { $0.deallocate() } }
        Parallel.forEach(S * H, threads: threads) { worker, job in
            let s = job / H, head = job % H, g = head / group
            let qh = q + s * L * ldq + head * D
            let kh = k + s * L * ldk + g * D
            let vh = v + s * L * ldk + g * D
            let sc = scratch[worker]
            BLAS.gemmNT(m: L, n: L, k: D, alpha: scale, a: qh, lda: ldq, b: kh, ldb: ldk, c: sc, ldc: L)
            for i in 0..<L {
                let row = sc + i * L
                let lo = window > 0 ? max(0, i - window + 1) : 0
                if cap > 0 { for j in lo...i { row[j] = tanhf(row[j] / cap) * cap } }
                var mx = -Float.infinity
                for j in lo...i { mx = max(mx, row[j]) }
                var sum: Float = 0
                for j in lo...i { let e = expf(row[j] - mx); row[j] = e; sum += e }
                let inv = 1 / sum
                for j in 0..<lo { row[j] = 0 }
                for j in lo...i { row[j] *= inv }
                if i + 1 < L { for j in (i + 1)..<L { row[j] = 0 } }
            }
            BLAS.gemmNN(m: L, n: D, k: L, a: sc, lda: L, b: vh, ldb: ldk, c: out + s * L * ldq + head * D, ldc: ldq)
        }
    }
}

/// A float buffer freed explicitly.
final class Buffer {
    let p: UnsafeMutablePointer<Float>
    init(_ n: Int) { p = .allocate(capacity: max(1, n)); p.initialize(repeating: 0, count: max(1, n)) }
    func free() { p.deallocate() }
}

/// cos/sin of every position and rotated pair, as ggml's rope (no YaRN).
struct RopeTable {
    let cos: [Float], sin: [Float]
    let pairs: Int
    let style: RopeStyle

    init(config c: ModelConfig, length: Int, base: Float, scale: Float, factors: [Float]?) {
        pairs = c.ropeDimensions / 2
        style = c.ropeStyle
        var cs = [Float](repeating: 0, count: length * pairs), sn = cs
        let thetaScale = pow(Double(base), -2.0 / Double(c.ropeDimensions))
        for p in 0..<length {
            var theta = Double(p)
            for i in 0..<pairs {
                let ff = factors.map { Double($0[min(i, $0.count - 1)]) } ?? 1
                let t = Double(scale) * theta / ff
                cs[p * pairs + i] = Float(Foundation.cos(t)) * c.ropeAttnFactor
                sn[p * pairs + i] = Float(Foundation.sin(t)) * c.ropeAttnFactor
                theta *= thetaScale
            }
        }
        cos = cs; sin = sn
    }

    /// Rotates `x` (`tokens × heads × headDim`) in place; position = token index mod `sequenceLength`.
    func apply(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int, sequenceLength: Int, threads: Int) {
        let pairs = self.pairs, style = self.style
        cos.withUnsafeBufferPointer { cp in
            sin.withUnsafeBufferPointer { sp in
                let cb = cp.baseAddress!, sb = sp.baseAddress!
                Parallel.ranges(tokens, threads: threads) { _, r in
                    for t in r {
                        let pos = t % sequenceLength
                        let cr = cb + pos * pairs, sr = sb + pos * pairs
                        for hh in 0..<heads {
                            let v = x + (t * heads + hh) * headDim
                            if style == .normal {
                                for i in 0..<pairs {
                                    let x0 = v[2 * i], x1 = v[2 * i + 1]
                                    v[2 * i] = x0 * cr[i] - x1 * sr[i]
                                    v[2 * i + 1] = x0 * sr[i] + x1 * cr[i]
                                }
                            } else {
                                for i in 0..<pairs {
                                    let x0 = v[i], x1 = v[i + pairs]
                                    v[i] = x0 * cr[i] - x1 * sr[i]
                                    v[i + pairs] = x0 * sr[i] + x1 * cr[i]
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
