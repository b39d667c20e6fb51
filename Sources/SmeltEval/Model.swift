import Foundation
import SmeltFormats
import SmeltQuant

/// Receives the input of every matrix multiplication of the transformer
/// blocks (for the importance matrix): `rows` tokens × `cols` input columns.
public protocol ActivationObserver: AnyObject {
    func observe(weight: String, input: UnsafePointer<Float>, rows: Int, cols: Int)
    /// The input rows routed to expert `expert` of the 3-D tensor `weight` (llama.cpp's
    /// MUL_MAT_ID), gathered in llama-imatrix's order: by top-k slot, then by token.
    func observe(weight: String, expert: Int, of experts: Int, input: UnsafePointer<Float>, rows: Int, cols: Int)
}

extension ActivationObserver {
    public func observe(weight: String, expert: Int, of experts: Int, input: UnsafePointer<Float>, rows: Int, cols: Int) {}
}

/// A decoder-only transformer loaded for CPU inference: a GGUF file (any
/// ggml type Smelt has a kernel for) or a Hugging Face checkpoint folder.
public final class InferenceModel: @unchecked Sendable {
    /// The hyperparameters in use.
    public internal(set) var config: ModelConfig
    /// Worker threads of the forward pass.
    public let threads: Int
    /// Where the weights came from (for messages).
    public let source: URL
    /// The GGUF file, when the model is one (tokenizer metadata lives there).
    public let gguf: GGUFFile?
    /// GGUF tensor name → the checkpoint's tensor name, when the model is a Hugging Face folder.
    public let checkpointNames: [String: String]
    let tokenEmbedding: WeightMatrix
    let output: WeightMatrix
    let outputNorm: [Float]
    var layers: [LayerWeights]
    let ropeFactors: [Float]?
    let workspace = Workspace()
    let lock = NSLock()

    /// Whether activations are rounded to the weight type's `vec_dot_type` before each
    /// product, as llama.cpp's CPU backend does (see `ActivationRounding`).
    public let llamaRounding: Bool

    /// Rows of the output matrix (the logits' width).
    public var logitCount: Int { output.rows }

    /// Loads `url` (a `.gguf` file or a checkpoint folder). Matrices are
    /// dequantized once to float32 when `cacheFloat32` is true (the default
    /// when they take less than a third of the machine's memory); otherwise a
    /// row block at a time inside each product. `llamaRounding` rounds the
    /// activations as llama.cpp does before multiplying by 16-bit or quantized
    /// matrices (false: plain float32 products).
    /// `nativeKernels` (with `llamaRounding`) multiplies bfloat16 matrices with
    /// CSmeltKernels' AVX-512 BF16 kernel and the matrices `IntegerDecoding.layout` knows
    /// (q4_0…q8_0, iq4_nl, q2_K…q6_K, iq4_xs) with its integer kernel when the CPU has them (`NativeKernels`).
    /// Errors name `url` (docs/RELIABILITY.md).
    public convenience init(url: URL, threads: Int = ProcessInfo.processInfo.activeProcessorCount, cacheFloat32: Bool? = nil,
                            llamaRounding: Bool = true, nativeKernels: Bool = true) throws {
        do {
            try self.init(loading: url, threads: threads, cacheFloat32: cacheFloat32, llamaRounding: llamaRounding,
                          nativeKernels: nativeKernels)
        } catch let e as SmeltError {
            throw e.naming(url.path)
        }
    }

    init(loading url: URL, threads: Int, cacheFloat32: Bool?, llamaRounding: Bool, nativeKernels: Bool) throws {
        self.threads = max(1, threads)
        self.llamaRounding = llamaRounding
        source = url
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SmeltError("\(url.path): no such file or folder")
        }
        let src: TensorSource
        if isDir.boolValue {
            config = try ModelConfig(huggingFaceFolder: url)
            let hf = try HFTensorSource(folder: url, config: config)
            src = hf
            checkpointNames = hf.map
            gguf = nil
        } else {
            let f = try GGUFFile(url: url)
            config = try ModelConfig(gguf: f)
            src = GGUFTensorSource(file: f)
            checkpointNames = [:]
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
            let moe = c.expertCount > 0 && src.has(n("ffn_gate_inp.weight")) ? try Self.loadMoE(src, layer: il, config: c) : nil
            let up = moe == nil ? try src.matrix(n("ffn_up.weight")) : nil
            var l = LayerWeights(
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
                gate: moe == nil ? try src.optionalMatrix(n("ffn_gate.weight")) : nil, up: up,
                down: moe == nil ? try src.matrix(n("ffn_down.weight")) : nil,
                bGate: try src.optionalVector(n("ffn_gate.bias")), bUp: try src.optionalVector(n("ffn_up.bias")),
                bDown: try src.optionalVector(n("ffn_down.bias")),
                ffnPostNorm: try src.optionalVector(n("post_ffw_norm.weight")))
            l.moe = moe
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
            let ffn = l.gate == nil ? 2 * c.feedForwardLength : c.feedForwardLength
            let vectors: [(String, [Float]?, Int)] = [
                ("attn_norm.weight", l.attnNorm, c.embeddingLength), ("ffn_norm.weight", l.ffnNorm, c.embeddingLength),
                ("post_attention_norm.weight", l.attnPostNorm, c.embeddingLength), ("post_ffw_norm.weight", l.ffnPostNorm, c.embeddingLength),
                ("attn_q_norm.weight", l.qNorm, c.headDim), ("attn_k_norm.weight", l.kNorm, c.headDim),
                ("attn_q.bias", l.bq, qDim), ("attn_k.bias", l.bk, kvDim), ("attn_v.bias", l.bv, kvDim),
                ("attn_qkv.bias", l.bqkv, qDim + 2 * kvDim), ("attn_output.bias", l.bo, c.embeddingLength),
                ("ffn_gate.bias", l.bGate, c.feedForwardLength), ("ffn_up.bias", l.bUp, ffn), ("ffn_down.bias", l.bDown, c.embeddingLength),
            ]
            for (name, v, count) in vectors {
                if let v, v.count != count { throw SmeltError("\(url.path): tensor blk.\(il).\(name) has \(v.count) values, expected \(count)") }
            }
            if let up = l.up, let down = l.down {
                let ffRows = l.gate == nil ? 2 * c.feedForwardLength : c.feedForwardLength
                guard up.rows == ffRows, up.cols == c.embeddingLength, down.cols == c.feedForwardLength,
                      down.rows == c.embeddingLength else { throw SmeltError("blk.\(il): unexpected feed-forward shapes") }
            }
            ls.append(l)
        }
        layers = ls
        guard outputNorm.count == c.embeddingLength else {
            throw SmeltError("\(url.path): tensor output_norm.weight has \(outputNorm.count) values, expected \(c.embeddingLength)")
        }
        if let f = ropeFactors, f.count < Swift.max(1, c.ropeDimensions / 2) {
            throw SmeltError("\(url.path): RoPE frequency factors have \(f.count) values, expected \(c.ropeDimensions / 2)")
        }
        guard tokenEmbedding.cols == c.embeddingLength, output.cols == c.embeddingLength else {
            throw SmeltError("embedding/output width differs from embedding_length \(c.embeddingLength)")
        }
        if let hf = src as? HFTensorSource, let ct = hf.compressed {
            try installInputQuantizers(ct, names: hf.map)
        }
        var all: [WeightMatrix] = [tokenEmbedding]
        if output !== tokenEmbedding { all.append(output) }
        for l in ls { all += [l.wq, l.wk, l.wv, l.wqkv, l.wo, l.gate, l.up, l.down].compactMap { $0 } + (l.moe?.all ?? []) }
        let memory = Int(ProcessInfo.processInfo.physicalMemory)
        let native = nativeKernels && llamaRounding && cacheFloat32 != false
        if native && NativeKernels.bf16Dot {
            // bfloat16 × bfloat16 dot products with float32 sums, as llama.cpp on this CPU,
            // on the rows as mapped: no copy of those matrices at all
            for m in all where m.type == .bf16 { m.useBF16Product() }
            all.removeAll { $0.bf16Product != nil }
        }
        if native && NativeKernels.intDot {
            // integer dot products on activations quantized to the type's vec_dot_type, on the
            // rows as mapped (blocks of rows decoded during each product)
            for m in all { m.useIntProduct() }
            all.removeAll { $0.packedInt != nil }
        }
        if native && cacheFloat32 != true && NativeKernels.f16Dot {
            // float16 rows multiplied where they are mapped (F16C conversion inside the FMA kernel)
            for m in all where m.type == .f16 { m.useF16Product() }
            all.removeAll { $0.f16Product != nil }
        }
        if native && cacheFloat32 == nil {
            // float16 rows convert to float32 at memory speed (F16C): converted block by block during
            // each product instead of a float32 copy of the matrix (4 bytes per weight)
            all.removeAll { $0.type == .f16 }
        }
        let total = all.reduce(0) { $0 + ($1.f32 == nil ? $1.floatBytes : 0) }
        if cacheFloat32 ?? (total < memory / 3) {
            for m in all { m.cache(threads: self.threads) }
        }
    }

    /// A mixture-of-experts layer's tensors, shapes checked against the metadata.
    static func loadMoE(_ src: TensorSource, layer il: Int, config c: ModelConfig) throws -> MoEWeights {
        func n(_ s: String) -> String { "blk.\(il).\(s)" }
        let E = c.embeddingLength
        let m = MoEWeights(
            router: try src.matrix(n("ffn_gate_inp.weight")),
            gate: try src.experts(n("ffn_gate_exps.weight")), up: try src.experts(n("ffn_up_exps.weight")),
            down: try src.experts(n("ffn_down_exps.weight")),
            sharedGate: try src.optionalMatrix(n("ffn_gate_shexp.weight")), sharedUp: try src.optionalMatrix(n("ffn_up_shexp.weight")),
            sharedDown: try src.optionalMatrix(n("ffn_down_shexp.weight")),
            sharedExpertGate: try src.optionalMatrix(n("ffn_gate_inp_shexp.weight")))
        let F = m.width
        guard m.router.rows == c.expertCount, m.router.cols == E else {
            throw SmeltError("\(m.router.name): shape [\(m.router.cols), \(m.router.rows)], expected [\(E), \(c.expertCount)]")
        }
        guard m.gate.count == c.expertCount, m.up.count == c.expertCount, m.down.count == c.expertCount, F > 0,
              m.gate.allSatisfy({ $0.rows == F && $0.cols == E }), m.up.allSatisfy({ $0.cols == E }),
              m.down.allSatisfy({ $0.rows == E && $0.cols == F }) else {
            throw SmeltError("blk.\(il): expert tensors do not have the shapes [\(E), n_ff, \(c.expertCount)] / [n_ff, \(E), \(c.expertCount)]")
        }
        if m.sharedUp != nil || m.sharedGate != nil || m.sharedDown != nil {
            guard let g = m.sharedGate, let u = m.sharedUp, let d = m.sharedDown, g.cols == E, u.cols == E, g.rows == u.rows,
                  d.cols == u.rows, d.rows == E else { throw SmeltError("blk.\(il): incomplete or misshapen shared expert") }
            if let sg = m.sharedExpertGate, sg.rows != 1 || sg.cols != E {
                throw SmeltError("\(sg.name): shape [\(sg.cols), \(sg.rows)], expected [\(E), 1]")
            }
        }
        return m
    }

    // MARK: - forward pass

    /// Runs `sequenceCount` independent sequences of `sequenceLength` tokens
    /// (`tokens` holds them one after the other; positions restart at 0 in
    /// each) and returns the logits of positions `firstOutput..<sequenceLength`
    /// of every sequence, row-major `[sequenceCount × outputs, logitCount]`.
    public func forward(tokens: [Int32], sequenceLength: Int, sequenceCount: Int = 1, firstOutput: Int = 0,
                        observer: ActivationObserver? = nil) throws -> [Float] {
        try forward(tokens: tokens, sequenceLength: sequenceLength, sequenceCount: sequenceCount, firstOutput: firstOutput,
                    observer: observer) { Array($0) }
    }

    /// As `forward`, handing the logits to `body` in a buffer reused between calls
    /// (one forward pass at a time per model).
    public func forward<R>(tokens: [Int32], sequenceLength: Int, sequenceCount: Int = 1, firstOutput: Int = 0,
                           observer: ActivationObserver? = nil, body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        lock.lock(); defer { lock.unlock() }
        let c = config
        let L = sequenceLength, S = sequenceCount, T = L * S
        guard tokens.count == T, L > 0, firstOutput >= 0, firstOutput < L else {
            throw SmeltError("forward: \(tokens.count) tokens for \(S) sequences of \(L)")
        }
        for t in tokens where t < 0 || Int(t) >= tokenEmbedding.rows {
            throw SmeltError("token id \(t) is outside the embedding table (\(tokenEmbedding.rows) rows)")
        }
        let E = c.embeddingLength
        let nOutPerSeq = L - firstOutput
        let outRows = (0..<S).flatMap { s in (firstOutput..<L).map { s * L + $0 } }
        let pruneLast = nOutPerSeq < L

        let ws = workspace
        ws.activationKey = nil
        let buffers = LayerBuffers(ws: ws, tokens: T, config: c, layers: layers)
        let x = buffers.x, h = buffers.h

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
            try layerStep(il, lw, buffers: buffers, tokens: T, sequences: S, length: L,
                          rows: &rows, outRows: outRows, prune: last && pruneLast, ropeNormal: ropeNormal, ropeSWA: ropeSWA,
                          observer: observer)
        }
        if !pruneLast || layers.isEmpty {
            for (i, r) in outRows.enumerated() where i != r { (x.p + i * E).update(from: x.p + r * E, count: E) }
        }
        let nOut = outRows.count
        rmsNorm(x.p, rows: nOut, width: E, weight: outputNorm, eps: c.rmsEpsilon, out: h.p)
        let V = output.rows
        let logitBuffer = ws.get("logits", nOut * V)
        do {
            let lp = UnsafeMutableBufferPointer(start: logitBuffer.p, count: nOut * V)
            matmul(h.p, rows: nOut, output, out: lp.baseAddress!, observer: observer)
            if c.finalLogitSoftcap > 0 {
                let cap = c.finalLogitSoftcap
                let p = lp.baseAddress!
                Parallel.ranges(nOut * V, threads: threads) { _, r in
                    for i in r { p[i] = tanhf(p[i] / cap) * cap }
                }
            }
        }
        if let (i, value) = NonFinite.first(logitBuffer.p, count: nOut * V) {
            throw SmeltError("\(source.path): \(value) in the logits (tensors output_norm.weight / output.weight), row \(i / V) of the batch")
        }
        return try body(UnsafeBufferPointer(start: logitBuffer.p, count: nOut * V))
    }

    /// The workspace buffers of one transformer block for `tokens` tokens.
    struct LayerBuffers {
        let x, h, q, k, v, attn, o, fa, fb: Buffer
        let qkv, fused: Buffer?
        init(ws: Workspace, tokens T: Int, config c: ModelConfig, layers: [LayerWeights]) {
            let E = c.embeddingLength, qDim = c.headCount * c.headDim, kvDim = c.headCountKV * c.headDim, F = c.feedForwardLength
            x = ws.get("x", T * E); h = ws.get("h", T * E)
            q = ws.get("q", T * qDim); k = ws.get("k", T * kvDim); v = ws.get("v", T * kvDim)
            attn = ws.get("attn", T * qDim); o = ws.get("o", T * E)
            fa = ws.get("fa", T * F); fb = ws.get("fb", T * F)
            qkv = layers.first?.wqkv != nil ? ws.get("qkv", T * (qDim + 2 * kvDim)) : nil
            fused = layers.first?.gate == nil && layers.first?.moe == nil ? ws.get("fused", T * 2 * F) : nil
        }
    }

    /// Block `il` over the hidden states in `buffers.x` (`tokens` rows, `sequences` of `length`), in place.
    /// `prune` keeps only `outRows` after the attention (the last block, when only some logits are wanted).
    func layerStep(_ il: Int, _ lw: LayerWeights, buffers b: LayerBuffers, tokens T: Int, sequences S: Int, length L: Int,
                   rows: inout Int, outRows: [Int], prune: Bool, ropeNormal: RopeTable, ropeSWA: RopeTable,
                   observer: ActivationObserver?) throws {
        let c = config
        let E = c.embeddingLength, D = c.headDim, H = c.headCount, HKV = c.headCountKV
        let qDim = H * D, kvDim = HKV * D, F = c.feedForwardLength
        let x = b.x, h = b.h, q = b.q, k = b.k, v = b.v, attn = b.attn, o = b.o, fa = b.fa, fb = b.fb
        let qkv = b.qkv, fused = b.fused
        rmsNorm(x.p, rows: T, width: E, weight: lw.attnNorm, eps: c.rmsEpsilon, out: h.p)
        if let w = lw.wqkv, let qkv {
            matmul(h.p, rows: T, w, out: qkv.p, observer: observer, reuse: "attn\(il)")
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
            matmul(h.p, rows: T, lw.wq!, out: q.p, observer: observer, reuse: "attn\(il)")
            matmul(h.p, rows: T, lw.wk!, out: k.p, observer: observer, reuse: "attn\(il)")
            matmul(h.p, rows: T, lw.wv!, out: v.p, observer: observer, reuse: "attn\(il)")
            if let b = lw.bq { addBias(q.p, rows: T, width: qDim, bias: b) }
            if let b = lw.bk { addBias(k.p, rows: T, width: kvDim, bias: b) }
            if let b = lw.bv { addBias(v.p, rows: T, width: kvDim, bias: b) }
        }
        if let w = lw.qNorm { rmsNorm(q.p, rows: T * H, width: D, weight: w, eps: c.rmsEpsilon, out: q.p) }
        if let w = lw.kNorm { rmsNorm(k.p, rows: T * HKV, width: D, weight: w, eps: c.rmsEpsilon, out: k.p) }
        let rope = c.isSliding(il) ? ropeSWA : ropeNormal
        rope.apply(q.p, tokens: T, heads: H, headDim: D, sequenceLength: L, threads: threads)
        rope.apply(k.p, tokens: T, heads: HKV, headDim: D, sequenceLength: L, threads: threads)
        if llamaRounding {
            // llama.cpp keeps K and V in a float16 cache; Q is rounded to float16 as in
            // ggml's one-query flash-attention kernel. (Its tiled kernel reads as keeping Q
            // in float32; measured both ways, rounding Q matches llama-perplexity's golden
            // estimates better — docs/EVALUATION.md, "Arithmetic".)
            ActivationRounding.round(q.p, rows: T, cols: qDim, format: .f16, out: q.p, threads: threads)
            ActivationRounding.round(k.p, rows: T, cols: kvDim, format: .f16, out: k.p, threads: threads)
            ActivationRounding.round(v.p, rows: T, cols: kvDim, format: .f16, out: v.p, threads: threads)
        }
        attention(q: q.p, k: k.p, v: v.p, out: attn.p, sequences: S, length: L,
                  window: c.isSliding(il) ? c.slidingWindow : 0)

        if prune {
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
        if let moe = lw.moe {
            moeFeedForward(h.p, rows: rows, moe, out: o.p, observer: observer, layer: il)
        } else if let g = lw.gate, let up = lw.up, let down = lw.down {
            matmul(h.p, rows: rows, g, out: fa.p, observer: observer, reuse: "ffn\(il)")
            matmul(h.p, rows: rows, up, out: fb.p, observer: observer, reuse: "ffn\(il)")
            if let b = lw.bGate { addBias(fa.p, rows: rows, width: F, bias: b) }
            if let b = lw.bUp { addBias(fb.p, rows: rows, width: F, bias: b) }
            gatedActivation(fa.p, fb.p, rows: rows, width: F, gateStride: F, upStride: F, out: fa.p)
            matmul(fa.p, rows: rows, down, out: o.p, observer: observer)
        } else if let fused, let up = lw.up, let down = lw.down {
            matmul(h.p, rows: rows, up, out: fused.p, observer: observer)
            if let b = lw.bUp { addBias(fused.p, rows: rows, width: 2 * F, bias: b) }
            gatedActivation(fused.p, fused.p + F, rows: rows, width: F, gateStride: 2 * F, upStride: 2 * F, out: fa.p)
            matmul(fa.p, rows: rows, down, out: o.p, observer: observer)
        }
        if let b = lw.bDown { addBias(o.p, rows: rows, width: E, bias: b) }
        if let w = lw.ffnPostNorm { rmsNorm(o.p, rows: rows, width: E, weight: w, eps: c.rmsEpsilon, out: o.p) }
        add(x.p, o.p, count: rows * E)
        if let (i, value) = NonFinite.first(x.p, count: rows * E) {
            throw SmeltError("\(source.path): \(value) in the output of layer blk.\(il) (tensors blk.\(il).*), row \(i / E) of the batch")
        }
    }

    // MARK: - mixture of experts

    /// llama.cpp's `build_moe_ffn`: router scores, softmax (or sigmoid), top-k, the selected
    /// probabilities (renormalised when the model asks), each expert's SwiGLU on the tokens
    /// routed to it (tokens grouped by expert: only the selected experts' products are done),
    /// the weighted expert outputs added in slot order, plus the shared expert times
    /// sigmoid(its gate) (Qwen2-MoE).
    func moeFeedForward(_ h: UnsafePointer<Float>, rows: Int, _ m: MoEWeights, out: UnsafeMutablePointer<Float>,
                        observer: ActivationObserver?, layer il: Int) {
        let c = config
        let E = c.embeddingLength, NE = c.expertCount, K = c.expertUsedCount, F = m.width
        let ws = workspace
        let scores = ws.get("moeScores", rows * NE)
        matmul(h, rows: rows, m.router, out: scores.p, observer: observer, reuse: "ffn\(il)")
        // routing: probabilities, the top-k experts (ties: lower index first) and their weights
        var ids = [Int](repeating: 0, count: rows * K)
        var weights = [Float](repeating: 0, count: rows * K)
        for t in 0..<rows {
            let p = scores.p + t * NE
            if c.expertGating == .softmax {
                var mx = -Float.infinity
                for e in 0..<NE { mx = max(mx, p[e]) }
                var sum: Double = 0
                for e in 0..<NE { let v = expf(p[e] - mx); p[e] = v; sum += Double(v) }
                let inv = Float(1 / sum)
                for e in 0..<NE { p[e] *= inv }
            } else {
                for e in 0..<NE { p[e] = 1 / (1 + expf(-p[e])) }
            }
            var order = Array(0..<NE)
            order.sort { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
            var wsum: Float = 0
            for j in 0..<K { ids[t * K + j] = order[j]; weights[t * K + j] = p[order[j]]; wsum += p[order[j]] }
            if c.expertWeightsNorm { for j in 0..<K { weights[t * K + j] /= wsum } }
        }
        // tokens per expert, in llama-imatrix's order (slot, then token)
        var routed = [[(token: Int, slot: Int)]](repeating: [], count: NE)
        for j in 0..<K { for t in 0..<rows { routed[ids[t * K + j]].append((t, j)) } }
        let maxRouted = routed.map(\.count).max() ?? 0
        let xin = ws.get("moeIn", maxRouted * E), ga = ws.get("moeGate", maxRouted * F), ub = ws.get("moeUp", maxRouted * F)
        let eo = ws.get("moeExpertOut", maxRouted * E)
        let y = ws.get("moeSlots", rows * K * E)
        for e in 0..<NE where !routed[e].isEmpty {
            let list = routed[e], n = list.count
            for (i, r) in list.enumerated() { (xin.p + i * E).update(from: h + r.token * E, count: E) }
            observer?.observe(weight: m.gate[e].name, expert: e, of: NE, input: xin.p, rows: n, cols: E)
            observer?.observe(weight: m.up[e].name, expert: e, of: NE, input: xin.p, rows: n, cols: E)
            matmul(xin.p, rows: n, m.gate[e], out: ga.p, observer: nil, reuse: "moe\(il).\(e)")
            matmul(xin.p, rows: n, m.up[e], out: ub.p, observer: nil, reuse: "moe\(il).\(e)")
            gatedActivation(ga.p, ub.p, rows: n, width: F, gateStride: F, upStride: F, out: ga.p)
            observer?.observe(weight: m.down[e].name, expert: e, of: NE, input: ga.p, rows: n, cols: F)
            matmul(ga.p, rows: n, m.down[e], out: eo.p, observer: nil)
            for (i, r) in list.enumerated() {
                let w = weights[r.token * K + r.slot]
                let dst = y.p + (r.token * K + r.slot) * E, src = eo.p + i * E
                for j in 0..<E { dst[j] = src[j] * w }
            }
        }
        // sum of the weighted experts in slot order (ggml_add of the views)
        for t in 0..<rows {
            let o = out + t * E
            o.update(from: y.p + t * K * E, count: E)
            for j in 1..<max(K, 1) { let s = y.p + (t * K + j) * E; for i in 0..<E { o[i] += s[i] } }
        }
        if let g = m.sharedGate, let u = m.sharedUp, let d = m.sharedDown {
            let SF = u.rows
            let sa = ws.get("shexpGate", rows * SF), sb = ws.get("shexpUp", rows * SF), so = ws.get("shexpOut", rows * E)
            matmul(h, rows: rows, g, out: sa.p, observer: observer, reuse: "ffn\(il)")
            matmul(h, rows: rows, u, out: sb.p, observer: observer, reuse: "ffn\(il)")
            gatedActivation(sa.p, sb.p, rows: rows, width: SF, gateStride: SF, upStride: SF, out: sa.p)
            matmul(sa.p, rows: rows, d, out: so.p, observer: observer)
            var gate = [Float](repeating: 1, count: rows)
            if let sg = m.sharedExpertGate {
                let gp = ws.get("shexpGateInp", rows)
                matmul(h, rows: rows, sg, out: gp.p, observer: observer, reuse: "ffn\(il)")
                // silu(x) / x, as llama.cpp computes the sigmoid
                for t in 0..<rows { let v = gp.p[t]; gate[t] = (v / (1 + expf(-v))) / v }
            }
            for t in 0..<rows { for i in 0..<E { out[t * E + i] += so.p[t * E + i] * gate[t] } }
        }
    }

    // MARK: - kernels

    /// out[rows × w.rows] = a[rows × w.cols] · wᵀ, in row blocks over the workers.
    /// `reuse` names the input when several matrices multiply the same activations in a row
    /// (Q/K/V, gate/up): their conversion to bf16 or q8 is then done once.
    func matmul(_ a: UnsafePointer<Float>, rows: Int, _ w: WeightMatrix, out: UnsafeMutablePointer<Float>,
                observer: ActivationObserver?, reuse: String? = nil) {
        if rows == 0 { return }
        observer?.observe(weight: w.name, input: a, rows: rows, cols: w.cols)
        let N = w.rows, K = w.cols
        var a = a
        var reuse = reuse
        if let fq = w.inputQuantizer {
            // the scheme's activation quantization, on a copy (other products read the same input)
            let buf = workspace.get("actFakeQuant", rows * K)
            buf.p.update(from: a, count: rows * K)
            fq(buf.p, rows, K)
            a = UnsafePointer(buf.p)
            reuse = nil
            workspace.activationKey = nil
        }
        if let p = w.packedInt {
            p.multiply(a, m: rows, out: out, ldc: N, threads: threads, workspace: workspace, reuse: reuse)
            return
        }
        if let p = w.bf16Product {
            // activations to bfloat16 (ggml's vec_dot_type for bf16), then vdpbf16ps products
            let lda = BF16Product.rowStride(K)
            let buf = workspace.get("act16", (rows * lda + 1) / 2)
            let a16 = UnsafeMutableRawPointer(buf.p).assumingMemoryBound(to: UInt16.self)
            let key = reuse.map { "\($0)|bf16|\(rows)|\(K)" }
            if key == nil || key != workspace.activationKey {
                BF16Product.convert(a, m: rows, cols: K, out: a16, threads: threads)
            }
            workspace.activationKey = key
            p.multiply(a16, lda: lda, m: rows, out: out, ldc: N, threads: threads, workspace: workspace)
            return
        }
        let fmt = llamaRounding && !w.replaced ? ActivationRounding.format(for: w.type) : .none
        if fmt != .none {
            let buf = workspace.get("act", rows * K)
            ActivationRounding.round(a, rows: rows, cols: K, format: fmt, out: buf.p, threads: threads)
            a = UnsafePointer(buf.p)
        }
        if let p = w.f16Product {
            // activations rounded to float16 above (ggml's vec_dot_type for f16), FMA products
            p.multiply(a, lda: K, m: rows, out: out, ldc: N, threads: threads, workspace: workspace)
            return
        }
        if let f = w.f32, rows >= N, threads > 1 {
            // more tokens than output features: one slice of tokens per worker
            // (each call packs the weights once and only its own activations)
            Parallel.ranges(rows, threads: threads) { _, r in
                BLAS.gemmNT(m: r.count, n: N, k: K, a: a + r.lowerBound * K, lda: K, b: f, ldb: K,
                            c: out + r.lowerBound * N, ldc: N)
            }
        } else if let f = w.f32 {
            // one contiguous slice of output features per worker: sgemm packs the
            // shared activations once per call, so few large calls are cheapest
            var block = (N + threads - 1) / threads
            block = max(16, (block + 15) / 16 * 16)
            let nBlocks = (N + block - 1) / block
            Parallel.forEach(nBlocks, threads: threads) { _, b in
                let lo = b * block, n = min(N, lo + block) - lo
                BLAS.gemmNT(m: rows, n: n, k: K, a: a, lda: K, b: f + lo * K, ldb: K, c: out + lo, ldc: N)
            }
        } else {
            // blocks of at most ~16 MiB of float32 (and at least 64 rows), as many per worker:
            // a count that is not a multiple of the workers leaves one idle at the end
            let most = max(64, (1 << 22) / max(K, 1))
            let rounds = max(1, (N + threads * most - 1) / (threads * most))
            let block = max(16, ((N + threads * rounds - 1) / (threads * rounds) + 15) / 16 * 16)
            let nBlocks = (N + block - 1) / block
            // per-worker scratch kept in the workspace (a fresh allocation of megabytes is a fresh
            // mapping: page faults on every call)
            let scratch = workspace.get("dequantizedBlocks", threads * block * K).p
            Parallel.forEach(nBlocks, threads: threads) { worker, b in
                let lo = b * block, n = min(N, lo + block) - lo
                let s = scratch + worker * block * K
                w.dequantize(rows: lo..<(lo + n), into: s)
                BLAS.gemmNT(m: rows, n: n, k: K, a: a, lda: K, b: s, ldb: K, c: out + lo, ldc: N)
            }
        }
    }

    func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float, out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { wp in
            let w = wp.baseAddress!
            Parallel.ranges(rows, threads: rows * width > 1 << 14 ? threads : 1) { _, r in
                for t in r { NativeKernels.rmsNorm(x + t * width, weight: w, out: out + t * width, count: width, eps: eps) }
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
        // llama.cpp's CPU backend takes GELU from its float16 table (ggml_vec_geglu_f32, GGML_GELU_FP16)
        let geluTable = llamaRounding
        Parallel.ranges(rows, threads: threads) { _, r in
            for t in r {
                let g = gate + t * gateStride, u = up + t * upStride, o = out + t * width
                if gelu && geluTable { VectorMath.gegluF16(g, u, o, width) }
                else if gelu { VectorMath.geglu(g, u, o, width) } else { NativeKernels.swiglu(g, u, o, width) }
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
        // per-worker score rows, kept in the workspace (fresh 128 KB allocations are
        // fresh mmaps: page faults on every call)
        let scratchBuffer = workspace.get("attnScratch", threads * 64 * L).p
        let scratch = (0..<threads).map { scratchBuffer + $0 * 64 * L }
        let native = NativeKernels.attention && D % 16 == 0
        // native path: every (sequence, KV head)'s keys transposed once, [D][L + 64]
        let ldkt = L + 64
        let kt = native ? workspace.get("attnKT", S * HKV * D * ldkt).p : scratchBuffer
        if native {
            Parallel.forEach(S * HKV, threads: threads) { _, sg in
                let s = sg / HKV, g = sg % HKV
                NativeKernels.transposeKeys(k + s * L * ldk + g * D, ldk: ldk, count: L, headDim: D,
                                            into: kt + sg * D * ldkt, ldkt: ldkt)
            }
        }
        // query rows in blocks: block [i0, i1) only needs keys [k0, i1) (causal, window)
        let rb = 64
        let nRB = (L + rb - 1) / rb
        Parallel.forEach(S * H * nRB, threads: threads) { worker, job in
            let s = job / (H * nRB), head = (job / nRB) % H, blk = job % nRB, g = head / group
            let i0 = blk * rb, i1 = min(L, i0 + rb)
            let k0 = window > 0 ? max(0, i0 - window + 1) : 0
            let nk = i1 - k0
            let qh = q + (s * L + i0) * ldq + head * D
            let kh = k + (s * L + k0) * ldk + g * D
            let vh = v + (s * L + k0) * ldk + g * D
            let sc = scratch[worker]
            let oh = out + (s * L + i0) * ldq + head * D
            if native {
                // row r of the block sees keys up to r + (i0 − k0)
                NativeKernels.attentionScores(qh, ldq: ldq, kt + (s * HKV + g) * D * ldkt + k0, ldkt: ldkt, rows: i1 - i0,
                                              keys: nk, headDim: D, scale: scale, diagonal: i0 - k0, out: sc, lds: nk)
            } else {
                BLAS.gemmNT(m: i1 - i0, n: nk, k: D, alpha: scale, a: qh, lda: ldq, b: kh, ldb: ldk, c: sc, ldc: nk)
            }
            for i in i0..<i1 {
                let lo = (window > 0 ? max(0, i - window + 1) : 0) - k0, hi = i - k0
                NativeKernels.softmaxRow(sc + (i - i0) * nk, count: nk, lo: lo, hi: hi, softcap: cap)
            }
            if native {
                NativeKernels.attentionValues(sc, ldp: nk, vh, ldv: ldk, rows: i1 - i0, keys: nk, headDim: D,
                                              diagonal: i0 - k0, out: oh, ldo: ldq)
            } else {
                BLAS.gemmNN(m: i1 - i0, n: D, k: nk, a: sc, lda: nk, b: vh, ldb: ldk, c: oh, ldc: ldq)
            }
        }
    }
}

/// A float buffer.
final class Buffer {
    let p: UnsafeMutablePointer<Float>
    let count: Int
    init(_ n: Int) { count = max(1, n); p = .allocate(capacity: count); p.initialize(repeating: 0, count: count) }
    deinit { p.deallocate() }
}

/// Named buffers kept between forward passes (no page faults per batch).
final class Workspace {
    private var buffers: [String: Buffer] = [:]
    /// What the converted-activation buffers (bf16 / q8) hold, when a caller named it.
    var activationKey: String?
    func get(_ name: String, _ n: Int) -> Buffer {
        if let b = buffers[name], b.count >= n { return b }
        let b = Buffer(n)
        buffers[name] = b
        return b
    }
}

/// cos/sin of every position and rotated pair, as ggml's rope (`ggml_rope_cache_init` / `rope_yarn`).
struct RopeTable {
    let cos: [Float], sin: [Float]
    let pairs: Int
    let style: RopeStyle

    init(config c: ModelConfig, length: Int, base: Float, scale: Float, factors: [Float]?) {
        pairs = c.ropeDimensions / 2
        style = c.ropeStyle
        var cs = [Float](repeating: 0, count: length * pairs), sn = cs
        // float arithmetic in ggml's order (ggml_rope_cache_init / rope_yarn): the angle of
        // pair i is position × thetaScale^i by repeated float multiplication
        let thetaScale = powf(base, -2.0 / Float(c.ropeDimensions))
        // ggml's rope_yarn: with ext_factor 0 the angle is freq_scale × theta; YaRN blends it with
        // the unscaled angle by a ramp over the pairs and scales the magnitude
        let ext = c.ropeExtFactor
        var mscale = c.ropeAttnFactor
        if ext != 0 { mscale *= 1 + 0.1 * logf(1 / scale) }
        let low = c.ropeCorrDims.first ?? 0, high = c.ropeCorrDims.last ?? 0
        for p in 0..<length {
            var theta = Float(p)
            for i in 0..<pairs {
                let ff = factors.map { $0[min(i, $0.count - 1)] } ?? 1
                let extrap = theta / ff
                var t = scale * extrap
                if ext != 0 {
                    let y = (Float(i) - low) / max(0.001, high - low)
                    let rampMix = (1 - min(1, max(0, y))) * ext
                    t = t * (1 - rampMix) + extrap * rampMix
                }
                cs[p * pairs + i] = cosf(t) * mscale
                sn[p * pairs + i] = sinf(t) * mscale
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
