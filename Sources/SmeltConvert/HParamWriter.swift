import SmeltFormats
import SmeltModel

/// Writes an architecture's hyperparameter keys by following its table's
/// steps (`HParamStep`), in llama.cpp's order and with its value types.
struct HParamWriter {
    let arch: Architecture
    let config: HFConfig
    let fileType: UInt32
    var prefix: String { arch.name + "." }

    /// `rope_parameters` (or `rope_scaling`) with the global values mirrored in, as `TextModel.__init__` does.
    static func ropeParameters(_ c: HFConfig) -> [(String, JSONValue)] {
        var p = (c["rope_parameters"] ?? c["rope_scaling"])?.objectValue ?? []
        func has(_ k: String) -> Bool { p.contains { $0.0 == k } }
        func get(_ k: String) -> JSONValue? { p.first { $0.0 == k }?.1 }
        if !has("full_attention") && !has("sliding_attention") {
            if let local = c.find(["local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta", "rope_local_base_freq"]) {
                p.append(("sliding_attention", .object([("rope_theta", local)])))
            }
            if !has("rope_theta"), let t = c.find(["global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"]) {
                p.append(("rope_theta", t))
            }
            if !has("rope_type"), let t = get("type") { p.append(("rope_type", t)) }
            if !has("partial_rotary_factor"), let f = c.find(["partial_rotary_factor", "rope_pct", "rope_percent"]) {
                p.append(("partial_rotary_factor", f))
            }
            if !has("original_max_position_embeddings"), let o = c.find(["original_max_position_embeddings"]) {
                p.append(("original_max_position_embeddings", o))
            }
        }
        return p
    }

    func u32(_ v: JSONValue, _ key: String) throws -> GGUFValue {
        guard let i = v.intValue, i >= 0, i <= Int(UInt32.max) else { throw SmeltError("config.json: \(key) = \(v.serialized()) is not a uint32") }
        return .uint32(UInt32(i))
    }
    func f32(_ v: JSONValue, _ key: String) throws -> GGUFValue {
        guard let d = v.doubleValue else { throw SmeltError("config.json: \(key) = \(v.serialized()) is not a number") }
        return .float32(Float(d))
    }

    func write(into md: inout GGUFMetadata) throws {
        let rope = Self.ropeParameters(config)
        let ropeObj = JSONValue.object(rope)
        let full = rope.first { $0.0 == "full_attention" }?.1 ?? ropeObj
        for step in arch.hparams {
            switch step {
            case .textModelBase:
                try textModelBase(&md, rope: ropeObj, full: full)
            case .vocabSize:
                md[prefix + "vocab_size"] = try u32(config["vocab_size"] ?? .null, "vocab_size")
            case .ropeDimensionCount:
                let d = try config.int("head_dim") ?? (config.requireInt("hidden_size") / config.requireInt("num_attention_heads"))
                md[prefix + "rope.dimension_count"] = .uint32(UInt32(d))
            case let .uint32(key, names, fallback):
                if let v = config.find(names) { md[prefix + key] = try u32(v, names[0]) } else if let f = fallback { md[prefix + key] = .uint32(UInt32(f)) }
            case let .float32(key, names, fallback):
                if let v = config.find(names) { md[prefix + key] = try f32(v, names[0]) } else if let f = fallback { md[prefix + key] = .float32(Float(f)) }
            case let .float32IfTruthy(key, names):
                if let v = config.find(names), let d = v.doubleValue, d != 0 { md[prefix + key] = .float32(Float(d)) }
            case .fileType:
                md["general.file_type"] = .uint32(fileType)
            case let .ropeFreqBase(def):
                md[prefix + "rope.freq_base"] = .float32(Float(full["rope_theta"]?.doubleValue ?? def))
            case .slidingWindowUnlessPatternOne:
                if config["sliding_window_pattern"]?.intValue != 1 {
                    md[prefix + "attention.sliding_window"] = try u32(config["sliding_window"] ?? .null, "sliding_window")
                }
            case .slidingWindowOrZero:
                md[prefix + "attention.sliding_window"] = .uint32(UInt32(config.int("sliding_window") ?? 0))
            case .ropeOriginalContext:
                md[prefix + "rope.scaling.original_context_length"] = try u32(ropeObj["original_max_position_embeddings"] ?? .null, "original_max_position_embeddings")
            case .phi3RopeDimensionCount:
                let rot = ropeObj["partial_rotary_factor"]?.doubleValue ?? 1
                let nEmbd = try config.requireInt("hidden_size", "n_embd"), nHead = try config.requireInt("num_attention_heads", "n_head")
                md[prefix + "rope.dimension_count"] = .uint32(UInt32(Int(rot * Double(nEmbd)) / nHead))
            }
        }
    }

    /// `TextModel.set_gguf_parameters`.
    func textModelBase(_ md: inout GGUFMetadata, rope: JSONValue, full: JSONValue) throws {
        md[prefix + "block_count"] = .uint32(UInt32(try config.requireInt("n_layers", "num_hidden_layers", "n_layer", "num_layers")))
        if let v = config.find(["max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"]) {
            md[prefix + "context_length"] = try u32(v, "max_position_embeddings")
        }
        if let v = config.find(["hidden_size", "n_embd", "dim"]) { md[prefix + "embedding_length"] = try u32(v, "hidden_size") }
        if let v = config.find(["prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner", "hidden_dim"]) {
            md[prefix + "feed_forward_length"] = try u32(v, "intermediate_size")
        }
        if let v = config.find(["num_attention_heads", "n_head", "n_heads"]) { md[prefix + "attention.head_count"] = try u32(v, "num_attention_heads") }
        if let v = config.find(["num_key_value_heads", "n_kv_heads"]) { md[prefix + "attention.head_count_kv"] = try u32(v, "num_key_value_heads") }
        if config["is_causal"]?.boolValue == false { md[prefix + "attention.causal"] = .bool(false) }
        if let type = full["rope_type"]?.stringValue {
            let factor = full["factor"]?.doubleValue
            if type == "linear", let factor {
                md[prefix + "rope.scaling.type"] = .string("linear")
                md[prefix + "rope.scaling.factor"] = .float32(Float(factor))
            } else if type == "yarn", let factor {
                md[prefix + "rope.scaling.type"] = .string("yarn")
                md[prefix + "rope.scaling.factor"] = .float32(Float(factor))
                md[prefix + "rope.scaling.original_context_length"] = try u32(full["original_max_position_embeddings"] ?? .null, "original_max_position_embeddings")
                if let v = full["extrapolation_factor"]?.doubleValue { md[prefix + "rope.scaling.yarn_ext_factor"] = .float32(Float(v)) }
                if let v = (full["attention_factor"] ?? full["attn_factor"])?.doubleValue { md[prefix + "rope.scaling.yarn_attn_factor"] = .float32(Float(v)) }
                if let v = full["beta_fast"]?.doubleValue { md[prefix + "rope.scaling.yarn_beta_fast"] = .float32(Float(v)) }
                if let v = full["beta_slow"]?.doubleValue { md[prefix + "rope.scaling.yarn_beta_slow"] = .float32(Float(v)) }
            } else if type == "su" || type == "longrope" {
                md[prefix + "rope.scaling.type"] = .string("longrope")
            }
        }
        if let t = full["rope_theta"], !t.isNull { md[prefix + "rope.freq_base"] = try f32(t, "rope_theta") }
        if let t = rope["sliding_attention"]?["rope_theta"], !t.isNull { md[prefix + "rope.freq_base_swa"] = try f32(t, "rope_local_base_freq") }
        if let v = config.find(["rms_norm_eps", "norm_eps"]) { md[prefix + "attention.layer_norm_rms_epsilon"] = try f32(v, "rms_norm_eps") }
        if let v = config.find(["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"]) { md[prefix + "attention.layer_norm_epsilon"] = try f32(v, "layer_norm_eps") }
        if let v = config.find(["num_local_experts", "num_experts", "n_routed_experts"]) { md[prefix + "expert_count"] = try u32(v, "num_experts") }
        if let v = config.find(["num_experts_per_tok", "num_experts_per_token", "top_k_experts"]) { md[prefix + "expert_used_count"] = try u32(v, "num_experts_per_tok") }
        if let hd = config["head_dim"] {
            md[prefix + "attention.key_length"] = try u32(hd, "head_dim")
            md[prefix + "attention.value_length"] = try u32(hd, "head_dim")
        }
        md["general.file_type"] = .uint32(fileType)
    }
}
