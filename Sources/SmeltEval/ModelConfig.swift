import Foundation
import SmeltFormats
import SmeltTokenizer
import SmeltModel

/// The decoder-only architectures the inference engine runs.
public enum ModelArchitecture: String, Codable, Sendable, CaseIterable {
    case llama, qwen2, qwen3, gemma2, gemma3, phi3, qwen2moe, qwen3moe
}

/// How the router turns scores into expert probabilities (`{arch}.expert_gating_func`).
public enum ExpertGating: String, Codable, Sendable { case softmax, sigmoid }

/// How RoPE pairs dimensions: `normal` rotates (x[2i], x[2i+1]) (GGUF llama),
/// `neox` rotates (x[i], x[i + n_rot/2]) (Hugging Face, qwen, gemma, phi3).
public enum RopeStyle: String, Codable, Sendable { case normal, neox }

/// Feed-forward gate activation.
public enum GateActivation: String, Codable, Sendable { case silu, geluTanh }

/// Everything the forward pass needs to know about a model, read from GGUF
/// metadata (as llama.cpp reads it) or from a Hugging Face `config.json`.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var architecture: ModelArchitecture
    public var layerCount: Int
    public var embeddingLength: Int
    public var headCount: Int
    public var headCountKV: Int
    public var headDim: Int
    public var feedForwardLength: Int
    public var rmsEpsilon: Float
    public var ropeStyle: RopeStyle
    /// Rotated dimensions per head (`rope.dimension_count`).
    public var ropeDimensions: Int
    public var ropeFreqBase: Float
    /// Position scale (1 / linear scaling factor).
    public var ropeFreqScale: Float
    /// Base and scale of sliding-window layers (Gemma).
    public var ropeFreqBaseSWA: Float
    public var ropeFreqScaleSWA: Float
    /// Multiplies cos and sin (`rope.scaling.attn_factor`, LongRoPE).
    public var ropeAttnFactor: Float
    /// Sliding window size (tokens) and which layers use it.
    public var slidingWindow: Int
    public var slidingLayers: [Bool]
    /// Gemma 2 attention-score soft-capping, 0 when off.
    public var attnLogitSoftcap: Float
    /// Final logit soft-capping, 0 when off.
    public var finalLogitSoftcap: Float
    /// Scale applied to the token embeddings (Gemma: √n_embd), 1 otherwise.
    public var embeddingScale: Float
    /// Scale applied to queries before q·k.
    public var attentionScale: Float
    public var activation: GateActivation
    /// Whether the add-BOS flag of the tokenizer is set, and the BOS id.
    public var addBOS: Bool
    public var bosToken: Int32?
    /// Tokens in the vocabulary (tokenizer list; falls back to the output rows).
    public var vocabularySize: Int
    /// Mixture of experts: experts per layer (0: dense) and experts used per token.
    public var expertCount: Int = 0
    public var expertUsedCount: Int = 0
    /// Whether the top-k weights are renormalised to sum to 1 (llama.cpp's `norm_w`).
    public var expertWeightsNorm: Bool = false
    public var expertGating: ExpertGating = .softmax
    /// YaRN (`rope.scaling.type = yarn`): ggml's `ext_factor` (1 for YaRN, 0 otherwise), the
    /// correction dimensions `[low, high]` of the extrapolation ramp, and the factor llama.cpp passes
    /// as `attn_factor` (`cparams.yarn_attn_factor`; ggml multiplies it by `1 + 0.1 ln(1/freq_scale)`).
    public var ropeExtFactor: Float = 0
    public var ropeCorrDims: [Float] = [0, 0]

    /// True when layer `il` uses the sliding window.
    public func isSliding(_ il: Int) -> Bool { slidingWindow > 0 && il < slidingLayers.count && slidingLayers[il] }

    /// `ggml_rope_yarn_corr_dims`: the first and last rotated pair of YaRN's ramp.
    public static func yarnCorrDims(nDims: Int, nCtxOrig: Float, base: Float, betaFast: Float, betaSlow: Float) -> [Float] {
        func dim(_ nRot: Float) -> Float { Float(nDims) * logf(nCtxOrig / (nRot * 2 * Float.pi)) / (2 * logf(base)) }
        return [max(0, floorf(dim(betaFast))), min(Float(nDims - 1), ceilf(dim(betaSlow)))]
    }

    /// Reads the hyperparameters as llama.cpp does (`llama_model::load_hparams` and the per-arch loaders).
    public init(gguf: GGUFFile) throws {
        let md = gguf.metadata
        try HyperparameterLimits.check(gguf)
        guard let archName = md["general.architecture"]?.stringValue else {
            throw SmeltError("\(gguf.url.lastPathComponent): no general.architecture")
        }
        guard let arch = ModelArchitecture(rawValue: archName) else {
            throw SmeltError("architecture '\(archName)' is not supported by the evaluator (supported: \(ModelArchitecture.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        func int(_ k: String) -> Int? { md["\(archName).\(k)"]?.intValue ?? md["\(archName).\(k)"]?.arrayValue?.first?.intValue }
        func float(_ k: String) -> Float? { md["\(archName).\(k)"]?.doubleValue.map(Float.init) }
        func need(_ k: String) throws -> Int {
            guard let v = int(k) else { throw SmeltError("\(gguf.url.lastPathComponent): missing \(archName).\(k)") }
            return v
        }
        architecture = arch
        layerCount = try need("block_count")
        embeddingLength = try need("embedding_length")
        headCount = try need("attention.head_count")
        headCountKV = int("attention.head_count_kv") ?? headCount
        guard layerCount >= 1, embeddingLength >= 1, headCount >= 1, headCountKV >= 1 else {
            throw SmeltError("\(gguf.url.path): \(archName).block_count, embedding_length and attention.head_count(_kv) must be at least 1 for the evaluator")
        }
        headDim = int("attention.key_length") ?? embeddingLength / headCount
        feedForwardLength = try need("feed_forward_length")
        rmsEpsilon = float("attention.layer_norm_rms_epsilon") ?? 1e-5
        ropeStyle = arch == .llama ? .normal : .neox
        ropeDimensions = int("rope.dimension_count") ?? headDim
        ropeFreqBase = float("rope.freq_base") ?? 10000
        let factor = float("rope.scaling.factor") ?? float("rope.scale_linear") ?? 0
        ropeFreqScale = factor == 0 ? 1 : 1 / factor
        ropeAttnFactor = float("rope.scaling.attn_factor") ?? 1
        let scalingType = md["\(archName).rope.scaling.type"]?.stringValue
        if scalingType == "none" { ropeFreqScale = 1 }
        if scalingType == "yarn" && ropeFreqScale != 1 {
            // llama_context: ext_factor 1; yarn_attn_factor = get_mscale(factor) / (1 + 0.1 ln factor)
            // × rope.scaling.attn_factor (ggml then multiplies by 1 + 0.1 ln(1/freq_scale));
            // corr dims from ggml_rope_yarn_corr_dims (float arithmetic as ggml)
            let factor = 1 / ropeFreqScale
            if let lm = float("rope.scaling.yarn_log_multiplier"), lm != 0 {
                throw SmeltError("\(gguf.url.lastPathComponent): YaRN with rope.scaling.yarn_log_multiplier is not supported by the evaluator")
            }
            ropeExtFactor = 1
            let mscale: Float = factor <= 1 ? 1 : 0.1 * logf(factor) + 1
            ropeAttnFactor = mscale * (1 / (1 + 0.1 * logf(factor))) * ropeAttnFactor
            let nCtxOrig = Float(int("rope.scaling.original_context_length") ?? int("context_length") ?? 0)
            let betaFast = float("rope.scaling.yarn_beta_fast") ?? 32, betaSlow = float("rope.scaling.yarn_beta_slow") ?? 1
            ropeCorrDims = Self.yarnCorrDims(nDims: ropeDimensions, nCtxOrig: nCtxOrig, base: ropeFreqBase, betaFast: betaFast, betaSlow: betaSlow)
        }
        ropeFreqBaseSWA = 10000
        ropeFreqScaleSWA = 1
        slidingWindow = 0
        slidingLayers = Array(repeating: false, count: layerCount)
        attnLogitSoftcap = 0
        finalLogitSoftcap = 0
        embeddingScale = 1
        attentionScale = 1 / Float(headDim).squareRoot()
        activation = .silu

        let nLayer = layerCount
        func pattern(_ defaultPeriod: Int) -> [Bool] {
            let key = "\(archName).attention.sliding_window_pattern"
            if let arr = md[key]?.arrayValue {
                return (0..<nLayer).map { $0 < arr.count ? (arr[$0].boolValue ?? ((arr[$0].intValue ?? 0) != 0)) : false }
            }
            let p = Swift.min(Swift.max(md[key]?.intValue ?? defaultPeriod, 0), 1 << 20)
            return (0..<nLayer).map { p == 0 || ($0 % p < p - 1) }
        }
        switch arch {
        case .gemma2:
            slidingWindow = int("attention.sliding_window") ?? 4096
            slidingLayers = pattern(2)
            ropeFreqBaseSWA = float("rope.freq_base_swa") ?? ropeFreqBase
            ropeFreqScaleSWA = ropeFreqScale
            attnLogitSoftcap = float("attn_logit_softcapping") ?? 50
            finalLogitSoftcap = float("final_logit_softcapping") ?? 30
            embeddingScale = Float(embeddingLength).squareRoot()
            activation = .geluTanh
            attentionScale = layerCount == 46 ? 1 / Float(embeddingLength / headCount).squareRoot() : 1 / Float(headDim).squareRoot()
        case .gemma3:
            if let w = int("attention.sliding_window"), w > 0 {
                slidingWindow = w
                slidingLayers = pattern(6)
                ropeFreqBaseSWA = float("rope.freq_base_swa") ?? 10000
            }
            finalLogitSoftcap = float("final_logit_softcapping") ?? 0
            embeddingScale = Float(embeddingLength).squareRoot()
            activation = .geluTanh
            attentionScale = layerCount == 62 ? 1 / Float(embeddingLength / headCount).squareRoot() : 1 / Float(headDim).squareRoot()
        default:
            break
        }
        // Mixture of experts (llama.cpp's build_moe_ffn arguments per architecture:
        // llama (Mixtral) and qwen3moe renormalise the top-k weights, qwen2moe does not)
        expertCount = int("expert_count") ?? 0
        expertUsedCount = int("expert_used_count") ?? 0
        expertWeightsNorm = md["\(archName).expert_weights_norm"]?.boolValue ?? (arch == .llama || arch == .qwen3moe)
        if let g = int("expert_gating_func"), g == 2 { expertGating = .sigmoid }
        if expertCount > 0 {
            guard expertUsedCount > 0, expertUsedCount <= expertCount else {
                throw SmeltError("\(gguf.url.lastPathComponent): \(archName).expert_used_count \(expertUsedCount) is not in 1...\(expertCount)")
            }
        }
        let tokenizerModel = md["tokenizer.ggml.model"]?.stringValue
        addBOS = md["tokenizer.ggml.add_bos_token"]?.boolValue ?? (tokenizerModel == "llama")
        bosToken = md["tokenizer.ggml.bos_token_id"]?.intValue.map { Int32($0) }
        let outRows = (gguf.tensor(named: "output.weight") ?? gguf.tensor(named: "token_embd.weight"))?.rowCount ?? 0
        vocabularySize = md["tokenizer.ggml.tokens"]?.arrayValue?.count ?? int("vocab_size") ?? outRows
        try validate(source: gguf.url.path)
    }

    /// Reads a Hugging Face `config.json` (plus `tokenizer_config.json` for the BOS flag).
    public init(huggingFaceFolder folder: URL) throws {
        let cfgURL = folder.appendingPathComponent("config.json")
        _ = try HFConfig(folder: folder)  // types and ranges of the hyperparameters
        var cfg = try JSONValue.parse(contentsOf: cfgURL)
        if let text = cfg["text_config"], text["hidden_size"] != nil { cfg = text }
        cfg = .object(ConfigDefaults.apply(to: cfg.objectValue ?? []))  // transformers' class defaults
        let archs = (try JSONValue.parse(contentsOf: cfgURL))["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let table: [String: ModelArchitecture] = [
            "LlamaForCausalLM": .llama, "MistralForCausalLM": .llama, "Qwen2ForCausalLM": .qwen2,
            "Qwen3ForCausalLM": .qwen3, "Gemma2ForCausalLM": .gemma2, "Gemma3ForCausalLM": .gemma3,
            "Gemma3ForConditionalGeneration": .gemma3, "Phi3ForCausalLM": .phi3,
            "MixtralForCausalLM": .llama, "Qwen2MoeForCausalLM": .qwen2moe, "Qwen3MoeForCausalLM": .qwen3moe,
        ]
        guard let arch = archs.compactMap({ table[$0] }).first else {
            throw SmeltError("\(cfgURL.path): architectures \(archs) are not supported by the evaluator")
        }
        func int(_ k: String) -> Int? { cfg[k]?.intValue }
        func float(_ k: String) -> Float? { cfg[k]?.doubleValue.map(Float.init) }
        func need(_ k: String) throws -> Int {
            guard let v = int(k) else { throw SmeltError("\(cfgURL.path): missing \(k)") }
            return v
        }
        architecture = arch
        layerCount = try need("num_hidden_layers")
        embeddingLength = try need("hidden_size")
        headCount = try need("num_attention_heads")
        headCountKV = int("num_key_value_heads") ?? headCount
        guard layerCount >= 1, embeddingLength >= 1, headCount >= 1, headCountKV >= 1 else {
            throw SmeltError("\(cfgURL.path): num_hidden_layers, hidden_size and num_attention_heads / num_key_value_heads must be at least 1")
        }
        headDim = int("head_dim") ?? embeddingLength / headCount
        feedForwardLength = try need("intermediate_size")
        rmsEpsilon = float("rms_norm_eps") ?? 1e-6
        ropeStyle = .neox  // HF weights are in rotate_half order for every supported arch
        let rotary = float("partial_rotary_factor") ?? 1
        guard rotary >= 0, rotary <= 1 else { throw SmeltError("\(cfgURL.path): partial_rotary_factor = \(rotary) is outside 0...1") }
        ropeDimensions = Int(Float(headDim) * rotary)
        ropeFreqBase = float("rope_theta") ?? 10000
        ropeFreqScale = 1
        ropeAttnFactor = 1
        if let rs = cfg["rope_scaling"], !rs.isNull {
            let type = rs["rope_type"]?.stringValue ?? rs["type"]?.stringValue ?? "linear"
            switch type {
            case "linear": ropeFreqScale = 1 / Float(rs["factor"]?.doubleValue ?? 1)
            case "default": break
            default: throw SmeltError("RoPE scaling '\(type)' of Hugging Face checkpoints is not supported by the evaluator yet (convert to GGUF first)")
            }
        }
        ropeFreqBaseSWA = ropeFreqBase
        ropeFreqScaleSWA = 1
        slidingWindow = 0
        slidingLayers = Array(repeating: false, count: layerCount)
        attnLogitSoftcap = 0
        finalLogitSoftcap = 0
        embeddingScale = 1
        attentionScale = 1 / Float(headDim).squareRoot()
        activation = .silu
        if arch == .gemma2 || arch == .gemma3 {
            embeddingScale = Float(embeddingLength).squareRoot()
            activation = .geluTanh
            if let s = float("query_pre_attn_scalar") { attentionScale = 1 / s.squareRoot() }
            attnLogitSoftcap = float("attn_logit_softcapping") ?? 0
            finalLogitSoftcap = float("final_logit_softcapping") ?? 0
            if let w = int("sliding_window"), w > 0 {
                slidingWindow = w
                if let types = cfg["layer_types"]?.arrayValue?.compactMap(\.stringValue), types.count == layerCount {
                    slidingLayers = types.map { $0 == "sliding_attention" }
                } else {
                    let p = Swift.min(Swift.max(int("sliding_window_pattern") ?? int("_sliding_window_pattern") ?? (arch == .gemma2 ? 2 : 6), 0), 1 << 20)
                    slidingLayers = (0..<layerCount).map { p == 0 || ($0 % p < p - 1) }
                }
            }
            if arch == .gemma3 {
                ropeFreqBaseSWA = float("rope_local_base_freq") ?? 10000
            } else {
                ropeFreqScaleSWA = ropeFreqScale
            }
        }
        // mixture of experts, with llama.cpp's renormalisation per architecture (as on the converted GGUF)
        expertCount = int("num_local_experts") ?? int("num_experts") ?? 0
        expertUsedCount = int("num_experts_per_tok") ?? 0
        expertWeightsNorm = arch == .llama || arch == .qwen3moe
        if expertCount > 0 {
            guard expertUsedCount > 0, expertUsedCount <= expertCount else {
                throw SmeltError("\(cfgURL.path): num_experts_per_tok \(expertUsedCount) is not in 1...\(expertCount)")
            }
        }
        let tc = try? JSONValue.parse(contentsOf: folder.appendingPathComponent("tokenizer_config.json"))
        bosToken = int("bos_token_id").map { Int32($0) }
        // BOS as llama.cpp does on the GGUF converted from this folder: the converter's
        // tokenizer.ggml.add_bos_token, else llama.cpp's default (SentencePiece vocabularies add it)
        if let meta = try? HFVocabConverter.metadata(modelDir: folder) {
            let value = { (key: String) in meta.first { $0.key == key }?.value }
            addBOS = value("tokenizer.ggml.add_bos_token")?.boolValue ?? (value("tokenizer.ggml.model")?.stringValue == "llama")
        } else {
            addBOS = tc?["add_bos_token"]?.boolValue ?? (arch == .llama || arch == .gemma2 || arch == .gemma3)
        }
        vocabularySize = try need("vocab_size")
        try validate(source: cfgURL.path)
    }

    /// The checks the forward pass relies on (sizes it allocates and divides by, values it
    /// multiplies with); `source` names the file in the error.
    func validate(source: String) throws {
        func fail(_ what: String) -> SmeltError { SmeltError("\(source): \(what) (the evaluator cannot run this model)") }
        let L = HyperparameterLimits.self
        guard (1...L.maxLayers).contains(layerCount) else { throw fail("\(layerCount) layers is outside 1...\(L.maxLayers)") }
        guard (1...L.maxWidth).contains(embeddingLength) else { throw fail("embedding length \(embeddingLength) is outside 1...\(L.maxWidth)") }
        guard (1...L.maxWidth).contains(feedForwardLength) else { throw fail("feed-forward length \(feedForwardLength) is outside 1...\(L.maxWidth)") }
        guard (1...L.maxHeads).contains(headCount), (1...L.maxHeads).contains(headCountKV), headCount % headCountKV == 0 else {
            throw fail("\(headCount) attention heads and \(headCountKV) key/value heads (1...\(L.maxHeads), the key/value heads dividing the heads)")
        }
        guard (1...L.maxHeadDim).contains(headDim) else { throw fail("head dimension \(headDim) is outside 1...\(L.maxHeadDim)") }
        let (q, o) = headCount.multipliedReportingOverflow(by: headDim)
        guard !o, q <= L.maxWidth * 4 else { throw fail("\(headCount) heads × \(headDim) dimensions is too large") }
        guard ropeDimensions >= 0, ropeDimensions <= headDim, ropeDimensions % 2 == 0 else {
            throw fail("RoPE dimension count \(ropeDimensions) must be even and at most the head dimension \(headDim)")
        }
        guard (1...L.maxVocabulary).contains(vocabularySize) else { throw fail("vocabulary size \(vocabularySize) is outside 1...\(L.maxVocabulary)") }
        guard slidingWindow >= 0, slidingWindow <= L.maxContext else { throw fail("sliding window \(slidingWindow)") }
        let floats: [(String, Float)] = [("RMS norm epsilon", rmsEpsilon), ("RoPE frequency base", ropeFreqBase),
                                         ("RoPE frequency scale", ropeFreqScale), ("RoPE base (sliding layers)", ropeFreqBaseSWA),
                                         ("RoPE scale (sliding layers)", ropeFreqScaleSWA), ("RoPE attention factor", ropeAttnFactor),
                                         ("attention logit soft-cap", attnLogitSoftcap), ("final logit soft-cap", finalLogitSoftcap),
                                         ("embedding scale", embeddingScale), ("attention scale", attentionScale)]
        for (what, v) in floats where !v.isFinite || v < 0 { throw fail("\(what) \(v) is not a finite number ≥ 0") }
        for (what, v) in [("RoPE frequency base", ropeFreqBase), ("RoPE frequency scale", ropeFreqScale)] where v <= 0 {
            throw fail("\(what) \(v) must be positive")
        }
    }
}
