import SmeltFormats

/// A default of a transformers config class: a value, or one computed from other keys.
public enum ConfigDefault: Sendable {
    /// A constant (the class's keyword default).
    case value(JSONValue)
    /// `a // b` (e.g. `head_dim = hidden_size // num_attention_heads`).
    case quotient(String, String)
    /// The value of another key (e.g. `num_key_value_heads = num_attention_heads`).
    case same(String)
}

/// The defaults transformers' config classes fill in, as llama.cpp's converter sees
/// them: it reads config.json through `AutoConfig.from_pretrained(...).to_dict()`, so a
/// key missing from config.json takes its class default (SmolLM2's config.json has no
/// `head_dim`; llama.cpp still writes `llama.attention.key_length` = 64). Keyed by
/// config.json's `model_type` (what AutoConfig dispatches on; without one, AutoConfig
/// fails and llama.cpp reads the raw JSON, so no defaults apply). Only keys a converter
/// or the evaluator reads are listed; values are transformers 4.57's (the version the
/// fixtures record), read from `models/<type>/configuration_<type>.py`. Derived entries
/// follow the constants they use.
public enum ConfigDefaults {
    static func v(_ x: Int) -> ConfigDefault { .value(.int(Int64(x))) }
    static func d(_ x: Double) -> ConfigDefault { .value(.double(x)) }
    static func b(_ x: Bool) -> ConfigDefault { .value(.bool(x)) }

    public static let byModelType: [String: [(String, ConfigDefault)]] = [
        // LlamaConfig: head_dim = hidden // heads, num_key_value_heads = heads when None.
        "llama": [
            ("vocab_size", v(32000)), ("hidden_size", v(4096)), ("intermediate_size", v(11008)),
            ("num_hidden_layers", v(32)), ("num_attention_heads", v(32)), ("max_position_embeddings", v(2048)),
            ("rms_norm_eps", d(1e-6)), ("rope_theta", d(10000.0)), ("tie_word_embeddings", b(false)),
            ("num_key_value_heads", .same("num_attention_heads")),
            ("head_dim", .quotient("hidden_size", "num_attention_heads")),
        ],
        // MistralConfig (MistralForCausalLM → llama): 4096*32 positions, 8 KV heads, sliding window 4096.
        "mistral": [
            ("vocab_size", v(32000)), ("hidden_size", v(4096)), ("intermediate_size", v(14336)),
            ("num_hidden_layers", v(32)), ("num_attention_heads", v(32)), ("num_key_value_heads", v(8)),
            ("max_position_embeddings", v(131072)), ("rms_norm_eps", d(1e-6)), ("rope_theta", d(10000.0)),
            ("sliding_window", v(4096)), ("tie_word_embeddings", b(false)),
            ("head_dim", .quotient("hidden_size", "num_attention_heads")),
        ],
        // Qwen2Config: no head_dim attribute (hidden // heads inside the model).
        "qwen2": [
            ("vocab_size", v(151936)), ("hidden_size", v(4096)), ("intermediate_size", v(22016)),
            ("num_hidden_layers", v(32)), ("num_attention_heads", v(32)), ("num_key_value_heads", v(32)),
            ("max_position_embeddings", v(32768)), ("rms_norm_eps", d(1e-6)), ("rope_theta", d(10000.0)),
            ("tie_word_embeddings", b(false)),
        ],
        // Qwen3Config: head_dim is a constant 128, not hidden // heads.
        "qwen3": [
            ("vocab_size", v(151936)), ("hidden_size", v(4096)), ("intermediate_size", v(22016)),
            ("num_hidden_layers", v(32)), ("num_attention_heads", v(32)), ("num_key_value_heads", v(32)),
            ("head_dim", v(128)), ("max_position_embeddings", v(32768)), ("rms_norm_eps", d(1e-6)),
            ("rope_theta", d(10000.0)), ("tie_word_embeddings", b(false)),
        ],
        // Gemma2Config.
        "gemma2": [
            ("vocab_size", v(256000)), ("hidden_size", v(2304)), ("intermediate_size", v(9216)),
            ("num_hidden_layers", v(26)), ("num_attention_heads", v(8)), ("num_key_value_heads", v(4)),
            ("head_dim", v(256)), ("max_position_embeddings", v(8192)), ("rms_norm_eps", d(1e-6)),
            ("rope_theta", d(10000.0)), ("query_pre_attn_scalar", v(256)), ("sliding_window", v(4096)),
            ("final_logit_softcapping", d(30.0)), ("attn_logit_softcapping", d(50.0)), ("tie_word_embeddings", b(true)),
        ],
        // Gemma3TextConfig (final/attn logit softcapping default None: not listed).
        "gemma3_text": [
            ("vocab_size", v(262208)), ("hidden_size", v(2304)), ("intermediate_size", v(9216)),
            ("num_hidden_layers", v(26)), ("num_attention_heads", v(8)), ("num_key_value_heads", v(4)),
            ("head_dim", v(256)), ("max_position_embeddings", v(131072)), ("rms_norm_eps", d(1e-6)),
            ("rope_theta", d(1_000_000.0)), ("rope_local_base_freq", d(10000.0)), ("query_pre_attn_scalar", v(256)),
            ("sliding_window", v(4096)), ("tie_word_embeddings", b(true)),
        ],
        // Phi3Config: num_key_value_heads = heads when None.
        "phi3": [
            ("vocab_size", v(32064)), ("hidden_size", v(3072)), ("intermediate_size", v(8192)),
            ("num_hidden_layers", v(32)), ("num_attention_heads", v(32)), ("max_position_embeddings", v(4096)),
            ("original_max_position_embeddings", v(4096)), ("rms_norm_eps", d(1e-5)), ("rope_theta", d(10000.0)),
            ("partial_rotary_factor", d(1.0)), ("tie_word_embeddings", b(false)),
            ("num_key_value_heads", .same("num_attention_heads")),
        ],
    ]

    /// `members` (config.json's entries, `text_config` merged) with the defaults of its
    /// `model_type` appended for keys that are missing or null, in the table's order.
    /// The model's sizes are never taken from a class default: a config.json without them
    /// describes no model (transformers would build a 4096-wide Llama and llama.cpp would
    /// write a header that contradicts the tensors), so they stay missing and the readers
    /// refuse the config, naming the key (docs/RELIABILITY.md).
    public static let structural: Set<String> = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                                 "num_attention_heads"]

    public static func apply(to members: [(String, JSONValue)]) -> [(String, JSONValue)] {
        var out = members
        guard let type = out.first(where: { $0.0 == "model_type" })?.1.stringValue,
              let defaults = byModelType[type] else { return out }
        func get(_ k: String) -> JSONValue? {
            guard let v = out.first(where: { $0.0 == k })?.1, !v.isNull else { return nil }
            return v
        }
        for (key, def) in defaults where get(key) == nil && !structural.contains(key) {
            let value: JSONValue?
            switch def {
            case let .value(x): value = x
            case let .same(k): value = get(k)
            case let .quotient(a, b):
                if let x = get(a)?.intValue, let y = get(b)?.intValue, y > 0 { value = .int(Int64(x / y)) } else { value = nil }
            }
            guard let value else { continue }
            if let i = out.firstIndex(where: { $0.0 == key }) { out[i].1 = value } else { out.append((key, value)) }
        }
        return out
    }
}
