import SmeltFormats

/// A named weight transform that llama.cpp's converter applies to a tensor
/// (attached to table entries instead of written as `if` chains).
public enum WeightTransform: Sendable, Equatable {
    /// Reorders the rows of q (and k) projections for llama.cpp's RoPE layout
    /// (`LlamaModel.permute`): heads of `n_head` (q) or `n_head_kv` (k).
    case permuteQ, permuteK
    /// Adds 1 to RMSNorm weights (Gemma stores `weight - 1`).
    case addOne
    /// Keeps only the first rows of the embedding: the tokenizer's real vocabulary (Gemma 3).
    case truncateToVocab
}

/// One HF → GGUF tensor name rule. `{bid}` stands for the block index. The
/// `.weight`/`.bias` suffix is kept as it is. An HF name with `{xid}` (the expert
/// index, the second number of the name) is a per-expert tensor: the experts of a
/// block are stacked into one 3-D GGUF tensor, expert `xid` being its `xid`-th 2-D slice.
public struct TensorRule: Sendable {
    public let hf: String
    public let gguf: String
    public let transforms: [WeightTransform]
    public init(_ hf: String, _ gguf: String, _ transforms: [WeightTransform] = []) {
        self.hf = hf; self.gguf = gguf; self.transforms = transforms
    }
    /// True for per-expert rules (`{xid}` in the HF name).
    public var stacksExperts: Bool { hf.contains("{xid}") }
}

/// A fused expert tensor (transformers' newer MoE classes: `mlp.experts.gate_up_proj`
/// `[n_expert, 2 × n_ff, n_embd]`, `mlp.experts.down_proj` `[n_expert, n_embd, n_ff]`): each
/// expert's matrix is split into `parts.count` equal row blocks, block `p` being that expert's
/// slice of the stacked GGUF tensor `parts[p]`. The result is the same GGUF as for the
/// per-expert layout.
public struct FusedExpertRule: Sendable {
    /// HF name without suffix, `{bid}` for the block.
    public let hf: String
    /// GGUF base names (with `{bid}`) of the row blocks, in row order.
    public let parts: [String]
    public init(_ hf: String, _ parts: [String]) { self.hf = hf; self.parts = parts }
}

/// How an architecture's hyperparameters are written: a sequence of steps,
/// in llama.cpp's key order.
public enum HParamStep: Sendable {
    /// `TextModel.set_gguf_parameters`: block count, context, embedding, FFN, heads,
    /// rope scaling, rope bases, norm eps, experts, key/value length, file type.
    case textModelBase
    /// `{arch}.vocab_size` from `vocab_size`.
    case vocabSize
    /// `{arch}.rope.dimension_count` = head_dim, or hidden / heads.
    case ropeDimensionCount
    /// A uint32 key from the first config name present; `fallback` when none (skipped if nil).
    case uint32(String, [String], fallback: Int? = nil)
    /// A float32 key from the first config name present; `fallback` when none (skipped if nil).
    case float32(String, [String], fallback: Double? = nil)
    /// A float32 key written only when the value is present and non-zero.
    case float32IfTruthy(String, [String])
    /// `general.file_type`.
    case fileType
    /// `{arch}.rope.freq_base` from the full-attention rope parameters, with a default.
    case ropeFreqBase(default: Double)
    /// `{arch}.attention.sliding_window` unless `sliding_window_pattern` is 1 (Gemma 3).
    case slidingWindowUnlessPatternOne
    /// `{arch}.attention.sliding_window`, 0 when absent (Phi-3).
    case slidingWindowOrZero
    /// `{arch}.rope.scaling.original_context_length` from the rope parameters (Phi-3).
    case ropeOriginalContext
    /// Phi-3's rope dimension count: `partial_rotary_factor × hidden / heads`.
    case phi3RopeDimensionCount
}

/// Which tokenizer loader llama.cpp's converter uses for the architecture.
public enum VocabStyle: Sendable {
    /// `LlamaModel.set_vocab`: SentencePiece if tokenizer.model, else BPE; `add_prefix_space` from tokenizer_config; 49152-vocab models get add_bos false.
    case llama
    /// SentencePiece if tokenizer.model exists, else byte-level BPE (Qwen2/3).
    case sentencePieceOrBPE
    /// `Gemma2Model.set_vocab`: SentencePiece, then `add_space_prefix = false`.
    case gemma2
    /// `Gemma3Model.set_vocab`: SentencePiece (+ `add_space_prefix = false`) if tokenizer.model, else BPE.
    case gemma3
    /// GPT2Tokenizer class → BPE, else SentencePiece padded to vocab_size (Phi-3).
    case phi3
}

/// What llama.cpp knows of one model architecture: the table entry.
public struct Architecture: Sendable {
    /// `architectures[0]` values of config.json that map here.
    public let hfClasses: [String]
    /// `general.architecture`.
    public let name: String
    /// Tensor name rules (HF base name without suffix → GGUF base name).
    public let tensors: [TensorRule]
    /// HF tensors dropped before conversion (exact names).
    public let skip: [String]
    /// Hyperparameter steps in key order.
    public let hparams: [HParamStep]
    public let vocab: VocabStyle
    /// Emits `rope_freqs.weight` for rope_type llama3 (`LlamaModel.generate_extra_tensors`).
    public let llama3RopeFreqs: Bool
    /// Fused expert tensors accepted instead of the per-expert ones.
    public var fusedExperts: [FusedExpertRule] = []

    /// The per-expert rules, in the order llama.cpp's converter emits the stacked tensors
    /// of a block (once every expert tensor of the block has been read).
    public var expertRules: [TensorRule] { tensors.filter(\.stacksExperts) }

    /// config.json names of the expert count (`num_local_experts` for Mixtral, `num_experts` for Qwen).
    public static let expertCountKeys = ["num_local_experts", "num_experts", "n_routed_experts"]

    /// GGUF tensors the converter always writes as F32 whatever the outtype
    /// (gguf-py `prepare_tensors`: the MoE routers).
    public static let alwaysF32: [String] = ["ffn_gate_inp", "ffn_gate_inp_shexp"]
}

extension Architecture {
    static let llamaBlock: [TensorRule] = [
        TensorRule("model.embed_tokens", "token_embd"),
        TensorRule("model.norm", "output_norm"),
        TensorRule("lm_head", "output"),
        TensorRule("model.layers.{bid}.input_layernorm", "blk.{bid}.attn_norm"),
        TensorRule("model.layers.{bid}.self_attn.q_proj", "blk.{bid}.attn_q"),
        TensorRule("model.layers.{bid}.self_attn.k_proj", "blk.{bid}.attn_k"),
        TensorRule("model.layers.{bid}.self_attn.v_proj", "blk.{bid}.attn_v"),
        TensorRule("model.layers.{bid}.self_attn.o_proj", "blk.{bid}.attn_output"),
        TensorRule("model.layers.{bid}.post_attention_layernorm", "blk.{bid}.ffn_norm"),
        TensorRule("model.layers.{bid}.mlp.gate_proj", "blk.{bid}.ffn_gate"),
        TensorRule("model.layers.{bid}.mlp.up_proj", "blk.{bid}.ffn_up"),
        TensorRule("model.layers.{bid}.mlp.down_proj", "blk.{bid}.ffn_down"),
    ]

    static func withTransforms(_ rules: [TensorRule], _ t: [String: [WeightTransform]]) -> [TensorRule] {
        rules.map { r in t[r.gguf].map { TensorRule(r.hf, r.gguf, $0) } ?? r }
    }

    static let gemmaBlock: [TensorRule] = [
        TensorRule("model.embed_tokens", "token_embd"),
        TensorRule("model.norm", "output_norm", [.addOne]),
        TensorRule("model.layers.{bid}.input_layernorm", "blk.{bid}.attn_norm", [.addOne]),
        TensorRule("model.layers.{bid}.self_attn.q_proj", "blk.{bid}.attn_q"),
        TensorRule("model.layers.{bid}.self_attn.k_proj", "blk.{bid}.attn_k"),
        TensorRule("model.layers.{bid}.self_attn.v_proj", "blk.{bid}.attn_v"),
        TensorRule("model.layers.{bid}.self_attn.o_proj", "blk.{bid}.attn_output"),
        TensorRule("model.layers.{bid}.post_attention_layernorm", "blk.{bid}.post_attention_norm", [.addOne]),
        TensorRule("model.layers.{bid}.pre_feedforward_layernorm", "blk.{bid}.ffn_norm", [.addOne]),
        TensorRule("model.layers.{bid}.post_feedforward_layernorm", "blk.{bid}.post_ffw_norm", [.addOne]),
        TensorRule("model.layers.{bid}.mlp.gate_proj", "blk.{bid}.ffn_gate"),
        TensorRule("model.layers.{bid}.mlp.up_proj", "blk.{bid}.ffn_up"),
        TensorRule("model.layers.{bid}.mlp.down_proj", "blk.{bid}.ffn_down"),
    ]

    /// Mixtral's sparse MoE block (`LlamaModel.modify_tensors`: w1, w2, w3 stacked in that order).
    static let mixtralExperts: [TensorRule] = [
        TensorRule("model.layers.{bid}.block_sparse_moe.gate", "blk.{bid}.ffn_gate_inp"),
        // transformers 5 names the sparse block `mlp` (router `mlp.gate`, fused experts)
        TensorRule("model.layers.{bid}.mlp.gate", "blk.{bid}.ffn_gate_inp"),
        TensorRule("model.layers.{bid}.block_sparse_moe.experts.{xid}.w1", "blk.{bid}.ffn_gate_exps"),
        TensorRule("model.layers.{bid}.block_sparse_moe.experts.{xid}.w2", "blk.{bid}.ffn_down_exps"),
        TensorRule("model.layers.{bid}.block_sparse_moe.experts.{xid}.w3", "blk.{bid}.ffn_up_exps"),
    ]

    /// Qwen2-MoE / Qwen3-MoE blocks (`Qwen2MoeModel.modify_tensors`: down, gate, up stacked in
    /// that order), the shared expert and its gate (Qwen2-MoE).
    static let qwenMoeBlock: [TensorRule] = llamaBlock.filter { !$0.hf.contains(".mlp.") } + [
        TensorRule("model.layers.{bid}.mlp.gate", "blk.{bid}.ffn_gate_inp"),
        TensorRule("model.layers.{bid}.mlp.experts.{xid}.down_proj", "blk.{bid}.ffn_down_exps"),
        TensorRule("model.layers.{bid}.mlp.experts.{xid}.gate_proj", "blk.{bid}.ffn_gate_exps"),
        TensorRule("model.layers.{bid}.mlp.experts.{xid}.up_proj", "blk.{bid}.ffn_up_exps"),
        TensorRule("model.layers.{bid}.mlp.shared_expert.gate_proj", "blk.{bid}.ffn_gate_shexp"),
        TensorRule("model.layers.{bid}.mlp.shared_expert.up_proj", "blk.{bid}.ffn_up_shexp"),
        TensorRule("model.layers.{bid}.mlp.shared_expert.down_proj", "blk.{bid}.ffn_down_shexp"),
        TensorRule("model.layers.{bid}.mlp.shared_expert_gate", "blk.{bid}.ffn_gate_inp_shexp"),
    ]

    /// transformers' fused expert layout under `prefix` (`mlp` or Mixtral's `block_sparse_moe`):
    /// gate rows then up rows of each expert, and down.
    static func fusedExpertLayout(_ prefix: String) -> [FusedExpertRule] {
        [FusedExpertRule("model.layers.{bid}.\(prefix).experts.gate_up_proj", ["blk.{bid}.ffn_gate_exps", "blk.{bid}.ffn_up_exps"]),
         FusedExpertRule("model.layers.{bid}.\(prefix).experts.down_proj", ["blk.{bid}.ffn_down_exps"])]
    }

    /// `Qwen2MoeModel.set_gguf_parameters`.
    static let qwenMoeHParams: [HParamStep] = [
        .textModelBase,
        .uint32("expert_feed_forward_length", ["moe_intermediate_size"]),
        .uint32("expert_shared_feed_forward_length", ["shared_expert_intermediate_size"]),
    ]

    /// The architectures Smelt converts (gguf-py tensor_mapping.py and
    /// conversion/{llama,qwen,gemma,phi}.py at llama.cpp 34af94cd9).
    public static let all: [Architecture] = [
        Architecture(
            hfClasses: ["LlamaForCausalLM", "MistralForCausalLM", "LLaMAForCausalLM", "MixtralForCausalLM"], name: "llama",
            tensors: withTransforms(llamaBlock, ["blk.{bid}.attn_q": [.permuteQ], "blk.{bid}.attn_k": [.permuteK]]) + mixtralExperts,
            skip: [], hparams: [.textModelBase, .vocabSize, .ropeDimensionCount], vocab: .llama, llama3RopeFreqs: true,
            fusedExperts: fusedExpertLayout("block_sparse_moe") + fusedExpertLayout("mlp")),
        Architecture(
            hfClasses: ["Qwen2ForCausalLM"], name: "qwen2",
            tensors: llamaBlock, skip: [], hparams: [.textModelBase], vocab: .sentencePieceOrBPE, llama3RopeFreqs: false),
        Architecture(
            hfClasses: ["Qwen3ForCausalLM"], name: "qwen3",
            tensors: llamaBlock + [
                TensorRule("model.layers.{bid}.self_attn.q_norm", "blk.{bid}.attn_q_norm"),
                TensorRule("model.layers.{bid}.self_attn.k_norm", "blk.{bid}.attn_k_norm"),
            ], skip: [], hparams: [.textModelBase], vocab: .sentencePieceOrBPE, llama3RopeFreqs: false),
        Architecture(
            hfClasses: ["Qwen2MoeForCausalLM"], name: "qwen2moe",
            tensors: qwenMoeBlock, skip: [], hparams: qwenMoeHParams, vocab: .sentencePieceOrBPE, llama3RopeFreqs: false,
            fusedExperts: fusedExpertLayout("mlp")),
        Architecture(
            hfClasses: ["Qwen3MoeForCausalLM"], name: "qwen3moe",
            tensors: qwenMoeBlock + [
                TensorRule("model.layers.{bid}.self_attn.q_norm", "blk.{bid}.attn_q_norm"),
                TensorRule("model.layers.{bid}.self_attn.k_norm", "blk.{bid}.attn_k_norm"),
            ], skip: [], hparams: qwenMoeHParams, vocab: .sentencePieceOrBPE, llama3RopeFreqs: false,
            fusedExperts: fusedExpertLayout("mlp")),
        Architecture(
            hfClasses: ["Gemma2ForCausalLM"], name: "gemma2",
            tensors: gemmaBlock, skip: ["lm_head.weight"],
            hparams: [
                .uint32("context_length", ["max_position_embeddings"]), .uint32("embedding_length", ["hidden_size"]),
                .uint32("block_count", ["num_hidden_layers"]), .uint32("feed_forward_length", ["intermediate_size"]),
                .uint32("attention.head_count", ["num_attention_heads"]),
                .uint32("attention.head_count_kv", ["num_key_value_heads", "num_attention_heads"]),
                .float32("attention.layer_norm_rms_epsilon", ["rms_norm_eps"]),
                .uint32("attention.key_length", ["head_dim"]), .uint32("attention.value_length", ["head_dim"]),
                .fileType,
                .float32("attn_logit_softcapping", ["attn_logit_softcapping"]),
                .float32("final_logit_softcapping", ["final_logit_softcapping"]),
                .uint32("attention.sliding_window", ["sliding_window"]),
            ], vocab: .gemma2, llama3RopeFreqs: false),
        Architecture(
            hfClasses: ["Gemma3ForCausalLM"], name: "gemma3",
            tensors: withTransforms(gemmaBlock, ["token_embd": [.truncateToVocab]]) + [
                TensorRule("model.layers.{bid}.self_attn.q_norm", "blk.{bid}.attn_q_norm", [.addOne]),
                TensorRule("model.layers.{bid}.self_attn.k_norm", "blk.{bid}.attn_k_norm", [.addOne]),
            ], skip: [],
            hparams: [
                .textModelBase,
                .uint32("context_length", ["max_position_embeddings"], fallback: 131072),
                .uint32("attention.head_count", ["num_attention_heads"], fallback: 8),
                .float32("attention.layer_norm_rms_epsilon", ["rms_norm_eps"], fallback: 1e-6),
                .uint32("attention.key_length", ["head_dim"], fallback: 256),
                .uint32("attention.value_length", ["head_dim"], fallback: 256),
                .ropeFreqBase(default: 1_000_000),
                .float32IfTruthy("final_logit_softcapping", ["final_logit_softcapping"]),
                .slidingWindowUnlessPatternOne,
                .uint32("attention.head_count_kv", ["num_key_value_heads"], fallback: 4),
            ], vocab: .gemma3, llama3RopeFreqs: false),
        Architecture(
            hfClasses: ["Phi3ForCausalLM"], name: "phi3",
            tensors: [
                TensorRule("model.embed_tokens", "token_embd"),
                TensorRule("model.norm", "output_norm"),
                TensorRule("lm_head", "output"),
                TensorRule("model.layers.{bid}.input_layernorm", "blk.{bid}.attn_norm"),
                TensorRule("model.layers.{bid}.self_attn.qkv_proj", "blk.{bid}.attn_qkv"),
                TensorRule("model.layers.{bid}.self_attn.o_proj", "blk.{bid}.attn_output"),
                TensorRule("model.layers.{bid}.post_attention_layernorm", "blk.{bid}.ffn_norm"),
                TensorRule("model.layers.{bid}.mlp.gate_up_proj", "blk.{bid}.ffn_up"),
                TensorRule("model.layers.{bid}.mlp.down_proj", "blk.{bid}.ffn_down"),
            ], skip: [],
            hparams: [
                .uint32("context_length", ["n_positions", "max_position_embeddings"]),
                .ropeOriginalContext,
                .uint32("embedding_length", ["hidden_size", "n_embd"]),
                .uint32("feed_forward_length", ["intermediate_size"]),
                .uint32("block_count", ["num_hidden_layers", "n_layer"]),
                .uint32("attention.head_count", ["num_attention_heads", "n_head"]),
                .uint32("attention.head_count_kv", ["num_key_value_heads", "n_head_kv"]),
                .float32("attention.layer_norm_rms_epsilon", ["rms_norm_eps"]),
                .phi3RopeDimensionCount,
                .ropeFreqBase(default: 10000),
                .fileType,
                .slidingWindowOrZero,
            ], vocab: .phi3, llama3RopeFreqs: false),
    ]

    /// The entry for config.json's `architectures[0]`; an unknown class is an
    /// error listing the supported ones.
    public static func find(hfClass: String) throws -> Architecture {
        if let a = all.first(where: { $0.hfClasses.contains(hfClass) }) { return a }
        let known = all.flatMap(\.hfClasses).sorted().joined(separator: ", ")
        throw SmeltError("unsupported architecture \(hfClass) (supported: \(known))")
    }

    /// Maps an HF tensor name to its GGUF name and transforms (nil: not in the table,
    /// or a per-expert tensor: see `mapExpert`).
    public func map(_ hfName: String) -> (name: String, transforms: [WeightTransform])? {
        guard let m = mapExpert(hfName), m.expert == nil else { return nil }
        return (m.name, m.transforms)
    }

    /// Maps an HF tensor name to its GGUF name, transforms, and, for a per-expert
    /// tensor, the expert index and block index (nil: not in the table).
    public func mapExpert(_ hfName: String) -> (name: String, transforms: [WeightTransform], expert: Int?, block: Int?)? {
        var base = hfName, suffix = ""
        for s in [".weight", ".bias"] where hfName.hasSuffix(s) {
            base = String(hfName.dropLast(s.count)); suffix = s
        }
        // the first number-like part is the block id (as llama.cpp does), the second the expert id
        let parts = base.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let numeric = parts.indices.filter { !parts[$0].isEmpty && parts[$0].allSatisfy { $0.isASCII && $0.isNumber } }
        var p = parts
        var bid: String? = nil
        if let i = numeric.first { bid = parts[i]; p[i] = "{bid}" }
        let key = p.joined(separator: ".")
        if let rule = tensors.first(where: { $0.hf == key && !$0.stacksExperts }) {
            let name = bid.map { rule.gguf.replacingOccurrences(of: "{bid}", with: $0) } ?? rule.gguf
            return (name + suffix, rule.transforms, nil, bid.flatMap { Int($0) })
        }
        guard numeric.count >= 2, let b = bid, let xid = Int(parts[numeric[1]]) else { return nil }
        p[numeric[1]] = "{xid}"
        let ekey = p.joined(separator: ".")
        guard let rule = tensors.first(where: { $0.hf == ekey }) else { return nil }
        return (rule.gguf.replacingOccurrences(of: "{bid}", with: b) + suffix, rule.transforms, xid, Int(b))
    }
}

extension Architecture {
    /// A fused expert tensor's GGUF part names (block substituted, `.weight`/`.bias` kept) and block; nil when
    /// `hfName` is not a fused expert tensor of this architecture.
    public func mapFused(_ hfName: String) -> (parts: [String], block: Int)? {
        var base = hfName, suffix = ".weight"
        for s in [".weight", ".bias"] where hfName.hasSuffix(s) {
            base = String(hfName.dropLast(s.count)); suffix = s
        }
        var parts = base.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let i = parts.firstIndex(where: { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }), let block = Int(parts[i]) else { return nil }
        parts[i] = "{bid}"
        let key = parts.joined(separator: ".")
        guard let rule = fusedExperts.first(where: { $0.hf == key }) else { return nil }
        return (rule.parts.map { $0.replacingOccurrences(of: "{bid}", with: String(block)) + suffix }, block)
    }

    /// The entry whose `general.architecture` is `name`.
    public static func find(ggufName name: String) throws -> Architecture {
        if let a = all.first(where: { $0.name == name }) { return a }
        throw SmeltError("unsupported architecture \(name) (supported: \(all.map(\.name).joined(separator: ", ")))")
    }

    /// The inverse of `map`: a GGUF tensor name to its HF name and the transforms to undo.
    public func unmap(_ ggufName: String) -> (name: String, transforms: [WeightTransform])? {
        var base = ggufName, suffix = ""
        for s in [".weight", ".bias"] where ggufName.hasSuffix(s) {
            base = String(ggufName.dropLast(s.count)); suffix = s
        }
        let parts = base.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var key = base, bid: String? = nil
        if parts.count > 1, parts[0] == "blk", parts[1].allSatisfy(\.isNumber) {
            bid = parts[1]
            key = (["blk", "{bid}"] + parts.dropFirst(2)).joined(separator: ".")
        }
        guard let rule = tensors.first(where: { $0.gguf == key && !$0.stacksExperts }) else { return nil }
        let name = bid.map { rule.hf.replacingOccurrences(of: "{bid}", with: $0) } ?? rule.hf
        return (name + suffix, rule.transforms)
    }

    /// The inverse of the per-expert rules: a stacked GGUF expert tensor (`blk.N.ffn_gate_exps.weight`)
    /// to the HF name of its experts with `{xid}` standing for the expert index.
    public func unmapExperts(_ ggufName: String) -> String? {
        var base = ggufName, suffix = ""
        for s in [".weight", ".bias"] where ggufName.hasSuffix(s) {
            base = String(ggufName.dropLast(s.count)); suffix = s
        }
        let parts = base.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 2, parts[0] == "blk", parts[1].allSatisfy(\.isNumber) else { return nil }
        let key = (["blk", "{bid}"] + parts.dropFirst(2)).joined(separator: ".")
        guard let rule = tensors.first(where: { $0.gguf == key && $0.stacksExperts }) else { return nil }
        return rule.hf.replacingOccurrences(of: "{bid}", with: parts[1]) + suffix
    }

    /// transformers' `model_type` for config.json.
    public var hfModelType: String {
        switch name {
        case "gemma3": return "gemma3_text"
        case "qwen2moe": return "qwen2_moe"
        case "qwen3moe": return "qwen3_moe"
        default: return name
        }
    }
}
