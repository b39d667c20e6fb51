import Foundation
import SmeltFormats

/// Hidden states of a batch of token sequences between two transformer blocks: the input of the
/// block-by-block forward pass that calibration algorithms (GPTQ, AWQ, SmoothQuant) use to process
/// one block at a time on the partly quantized model's own activations.
public struct HiddenStates: Sendable {
    /// Tokens per sequence (positions restart at 0 in each).
    public let sequenceLength: Int
    public let sequenceCount: Int
    /// `sequenceLength × sequenceCount` rows of `width` values, row-major.
    public var values: [Float]
    public var tokens: Int { sequenceLength * sequenceCount }

    /// The first `count` sequences (all when there are fewer).
    public func prefix(sequences count: Int) -> HiddenStates {
        let n = Swift.min(Swift.max(count, 0), sequenceCount)
        let width = tokens > 0 ? values.count / tokens : 0
        return HiddenStates(sequenceLength: sequenceLength, sequenceCount: n, values: Array(values.prefix(n * sequenceLength * width)))
    }
}

/// Fake quantization of a linear layer's input activations, in place: `(values, rows, cols)`, one row per token.
public typealias InputQuantizer = @Sendable (UnsafeMutablePointer<Float>, Int, Int) -> Void

/// The two RMS norms of a block that feed linear layers (SmoothQuant and AWQ fold scales into them).
public enum BlockNorm: Sendable {
    /// `input_layernorm` (`attn_norm`), before Q/K/V
    case attention
    /// `post_attention_layernorm` (`ffn_norm`), before gate/up
    case feedForward
}

extension InferenceModel {
    /// Transformer blocks.
    public var layerCount: Int { layers.count }

    /// The token embeddings of `sequenceCount` sequences of `sequenceLength` tokens (scaled as the
    /// forward pass scales them): the input of block 0.
    public func embed(tokens: [Int32], sequenceLength: Int, sequenceCount: Int = 1) throws -> HiddenStates {
        let E = config.embeddingLength, T = sequenceLength * sequenceCount
        guard tokens.count == T, sequenceLength > 0 else {
            throw SmeltError("embed: \(tokens.count) tokens for \(sequenceCount) sequences of \(sequenceLength)")
        }
        for t in tokens where t < 0 || Int(t) >= tokenEmbedding.rows {
            throw SmeltError("token id \(t) is outside the embedding table (\(tokenEmbedding.rows) rows)")
        }
        var out = [Float](repeating: 0, count: T * E)
        let scale = config.embeddingScale
        out.withUnsafeMutableBufferPointer { op in
            let x = op.baseAddress!
            for t in 0..<T {
                let row = Int(tokens[t])
                tokenEmbedding.dequantize(rows: row..<(row + 1), into: x + t * E)
                if scale != 1 { for i in 0..<E { x[t * E + i] *= scale } }
            }
        }
        return HiddenStates(sequenceLength: sequenceLength, sequenceCount: sequenceCount, values: out)
    }

    /// Runs block `layer` over `states` in place, exactly as `forward` runs it (every row kept),
    /// showing the inputs of its matrix products to `observer`.
    public func runLayer(_ layer: Int, _ states: inout HiddenStates, observer: ActivationObserver? = nil) throws {
        lock.lock(); defer { lock.unlock() }
        guard layer >= 0, layer < layers.count else { throw SmeltError("\(source.path): no block \(layer)") }
        let c = config, E = c.embeddingLength
        let L = states.sequenceLength, S = states.sequenceCount, T = L * S
        guard states.values.count == T * E else { throw SmeltError("runLayer: hidden states are not \(T) × \(E)") }
        let ws = workspace
        ws.activationKey = nil
        let buffers = LayerBuffers(ws: ws, tokens: T, config: c, layers: layers)
        states.values.withUnsafeBufferPointer { buffers.x.p.update(from: $0.baseAddress!, count: T * E) }
        let ropeNormal = RopeTable(config: c, length: L, base: c.ropeFreqBase, scale: c.ropeFreqScale, factors: ropeFactors)
        let ropeSWA = c.slidingWindow > 0
            ? RopeTable(config: c, length: L, base: c.ropeFreqBaseSWA, scale: c.ropeFreqScaleSWA, factors: ropeFactors) : ropeNormal
        var rows = T
        try layerStep(layer, layers[layer], buffers: buffers, tokens: T, sequences: S, length: L, rows: &rows,
                      outRows: [], prune: false, ropeNormal: ropeNormal, ropeSWA: ropeSWA, observer: observer)
        states.values.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: buffers.x.p, count: T * E) }
    }

    /// The GGUF names of block `layer`'s dense linear weights, in the order the forward pass uses them
    /// (`attn_q`, `attn_k`, `attn_v` or `attn_qkv`, `attn_output`, `ffn_gate`, `ffn_up`, `ffn_down`).
    /// Mixture-of-experts blocks list only their attention weights.
    public func linearWeightNames(layer: Int) -> [String] {
        guard layer >= 0, layer < layers.count else { return [] }
        let l = layers[layer]
        return [l.wq, l.wk, l.wv, l.wqkv, l.wo, l.gate, l.up, l.down].compactMap { $0?.name }
    }

    private func linear(_ name: String) throws -> WeightMatrix {
        for l in layers {
            for w in [l.wq, l.wk, l.wv, l.wqkv, l.wo, l.gate, l.up, l.down] where w?.name == name { return w! }
        }
        if output.name == name { return output }
        throw SmeltError("\(source.path): no linear weight '\(name)'")
    }

    /// A linear weight as float32 values: `rows` output features × `cols` input features, row-major.
    public func weightValues(_ name: String) throws -> (rows: Int, cols: Int, values: [Float]) {
        lock.lock(); defer { lock.unlock() }
        let w = try linear(name)
        var v = [Float](repeating: 0, count: w.rows * w.cols)
        v.withUnsafeMutableBufferPointer { w.dequantize(rows: 0..<w.rows, into: $0.baseAddress!) }
        return (w.rows, w.cols, v)
    }

    /// Replaces a linear weight by float32 values of the same shape (later products use them as they are).
    public func replaceWeight(_ name: String, values: [Float]) throws {
        lock.lock(); defer { lock.unlock() }
        let w = try linear(name)
        guard values.count == w.rows * w.cols else {
            throw SmeltError("\(name): \(values.count) values given for a \(w.rows) × \(w.cols) matrix")
        }
        w.replace(values: values)
    }

    /// Fake-quantizes the input of linear weight `name` before each of its products (nil: none), as a
    /// W8A8 or FP8 scheme quantizes activations.
    public func setInputQuantizer(_ name: String, _ quantizer: InputQuantizer?) throws {
        lock.lock(); defer { lock.unlock() }
        try linear(name).inputQuantizer = quantizer
    }

    /// One linear layer applied as the forward pass applies it (its input fake quantization included):
    /// `rows` input rows of `cols` values → `rows` × the weight's output features.
    public func applyLinear(_ name: String, input: [Float], rows: Int) throws -> [Float] {
        lock.lock(); defer { lock.unlock() }
        let w = try linear(name)
        guard rows > 0, input.count == rows * w.cols else { throw SmeltError("\(name): \(input.count) inputs for \(rows) rows of \(w.cols)") }
        workspace.activationKey = nil
        var out = [Float](repeating: 0, count: rows * w.rows)
        input.withUnsafeBufferPointer { ip in
            out.withUnsafeMutableBufferPointer { op in
                matmul(ip.baseAddress!, rows: rows, w, out: op.baseAddress!, observer: nil)
            }
        }
        return out
    }

    /// The weight of one of block `layer`'s norms.
    public func normWeight(layer: Int, _ norm: BlockNorm) throws -> [Float] {
        lock.lock(); defer { lock.unlock() }
        guard layer >= 0, layer < layers.count else { throw SmeltError("\(source.path): no block \(layer)") }
        return norm == .attention ? layers[layer].attnNorm : layers[layer].ffnNorm
    }

    /// Replaces the weight of one of block `layer`'s norms (same length).
    public func replaceNormWeight(layer: Int, _ norm: BlockNorm, values: [Float]) throws {
        lock.lock(); defer { lock.unlock() }
        guard layer >= 0, layer < layers.count else { throw SmeltError("\(source.path): no block \(layer)") }
        guard values.count == config.embeddingLength else {
            throw SmeltError("block \(layer): norm weight of \(values.count) values, expected \(config.embeddingLength)")
        }
        if norm == .attention { layers[layer].attnNorm = values } else { layers[layer].ffnNorm = values }
    }
}
