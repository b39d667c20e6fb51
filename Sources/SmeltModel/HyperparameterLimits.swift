import Foundation
import SmeltFormats

/// Ranges of the hyperparameters that the pipelines divide by, allocate with or loop over,
/// checked where they are read (a GGUF file's metadata, a checkpoint's `config.json`), so that
/// a hostile or broken file is one error line naming the file and the key, never a trap,
/// a hang or a huge allocation. The limits are generous (far above any published model);
/// docs/RELIABILITY.md lists them.
public enum HyperparameterLimits {
    /// One limit: the key suffix (GGUF: after `{arch}.`) or config.json name and its range.
    public struct Limit: Sendable {
        public let key: String
        public let range: ClosedRange<Int>
        /// Per-layer arrays may hold 0 (a layer without attention or feed-forward).
        public let arrayMinimum: Int
        init(_ key: String, _ range: ClosedRange<Int>, arrayMinimum: Int = 0) {
            self.key = key; self.range = range; self.arrayMinimum = arrayMinimum
        }
    }

    public static let maxLayers = 4096
    public static let maxWidth = 1 << 20
    public static let maxHeads = 1 << 14
    public static let maxHeadDim = 1 << 16
    public static let maxVocabulary = 1 << 24
    public static let maxContext = 1 << 30
    public static let maxExperts = 1 << 16

    /// GGUF keys (after `{arch}.`) holding a count or a size.
    public static let gguf: [Limit] = [
        Limit("block_count", 1...maxLayers),
        Limit("embedding_length", 1...maxWidth),
        Limit("feed_forward_length", 1...maxWidth),
        Limit("attention.head_count", 1...maxHeads),
        Limit("attention.head_count_kv", 1...maxHeads),
        Limit("attention.key_length", 1...maxHeadDim),
        Limit("attention.value_length", 1...maxHeadDim),
        Limit("rope.dimension_count", 0...maxHeadDim),
        Limit("context_length", 1...maxContext),
        Limit("vocab_size", 1...maxVocabulary),
        Limit("expert_count", 0...maxExperts),
        Limit("expert_used_count", 0...maxExperts),
        Limit("attention.sliding_window", 0...maxContext),
    ]
    /// GGUF float keys (after `{arch}.`) that must be finite and at least the given value.
    public static let ggufFloats: [(key: String, minimum: Double)] = [
        ("attention.layer_norm_rms_epsilon", 0), ("attention.layer_norm_epsilon", 0),
        ("rope.freq_base", .leastNonzeroMagnitude), ("rope.freq_base_swa", .leastNonzeroMagnitude),
        ("rope.scaling.factor", 0), ("rope.scaling.attn_factor", 0),
        ("attn_logit_softcapping", 0), ("final_logit_softcapping", 0),
    ]

    /// config.json integers (the names llama.cpp's converter reads).
    public static let config: [Limit] = [
        Limit("num_hidden_layers", 1...maxLayers), Limit("n_layer", 1...maxLayers), Limit("n_layers", 1...maxLayers),
        Limit("hidden_size", 1...maxWidth), Limit("n_embd", 1...maxWidth),
        Limit("intermediate_size", 1...maxWidth),
        Limit("num_attention_heads", 1...maxHeads), Limit("n_head", 1...maxHeads), Limit("n_heads", 1...maxHeads),
        Limit("num_key_value_heads", 1...maxHeads), Limit("n_kv_heads", 1...maxHeads),
        Limit("head_dim", 1...maxHeadDim),
        Limit("vocab_size", 1...maxVocabulary),
        Limit("max_position_embeddings", 1...maxContext),
        Limit("num_local_experts", 0...maxExperts), Limit("num_experts", 0...maxExperts),
        Limit("num_experts_per_tok", 0...maxExperts),
    ]
    /// config.json floats that must be finite and at least the given value.
    public static let configFloats: [(key: String, minimum: Double)] = [
        ("rms_norm_eps", 0), ("layer_norm_eps", 0), ("norm_eps", 0), ("rope_theta", .leastNonzeroMagnitude),
        ("partial_rotary_factor", 0), ("attn_logit_softcapping", 0), ("final_logit_softcapping", 0),
        ("query_pre_attn_scalar", .leastNonzeroMagnitude),
    ]

    /// Checks the hyperparameter keys of a GGUF file's architecture: types, ranges, and
    /// that the heads divide as the pipelines assume.
    public static func check(_ g: GGUFFile) throws {
        let md = g.metadata
        guard let arch = md["general.architecture"]?.stringValue else { return }
        let file = g.url.path
        func fail(_ key: String, _ what: String) -> SmeltError { SmeltError("\(file): metadata \(key) \(what)") }
        for l in gguf {
            let key = "\(arch).\(l.key)"
            guard let v = md[key] else { continue }
            if let items = v.arrayValue {
                guard items.count <= maxLayers else { throw fail(key, "has \(items.count) values (at most \(maxLayers))") }
                for (i, item) in items.enumerated() {
                    guard let x = item.intValue, x >= l.arrayMinimum, x <= l.range.upperBound else {
                        throw fail(key, "[\(i)] = \(item.render(maxItems: 0)) is outside \(l.arrayMinimum)...\(l.range.upperBound)")
                    }
                }
            } else {
                guard let x = v.intValue, l.range.contains(x) else {
                    throw fail(key, "= \(v.render(maxItems: 0)) is outside \(l.range.lowerBound)...\(l.range.upperBound)")
                }
            }
        }
        for (k, minimum) in ggufFloats {
            let key = "\(arch).\(k)"
            guard let v = md[key] else { continue }
            guard let d = v.doubleValue, d.isFinite, d >= minimum else {
                throw fail(key, "= \(v.render(maxItems: 0)) is not a finite number ≥ \(minimum == 0 ? "0" : "a positive value")")
            }
        }
        if let h = md["\(arch).attention.head_count"]?.intValue, let kv = md["\(arch).attention.head_count_kv"]?.intValue,
           h % kv != 0 {
            throw fail("\(arch).attention.head_count_kv", "= \(kv) does not divide attention.head_count = \(h)")
        }
        if let n = md["\(arch).block_count"]?.intValue {
            for l in gguf where l.key != "block_count" {
                if let a = md["\(arch).\(l.key)"]?.arrayValue, a.count != n {
                    throw fail("\(arch).\(l.key)", "has \(a.count) per-layer values for block_count = \(n)")
                }
            }
        }
    }

    /// Checks a checkpoint's merged `config.json` (`source` names the file): types, ranges,
    /// and that the heads divide as the converter and the evaluator assume.
    public static func check(_ c: HFConfig, source: String) throws {
        func fail(_ key: String, _ what: String) -> SmeltError { SmeltError("\(source): \(key) \(what)") }
        for l in config {
            guard let v = c[l.key] else { continue }
            if let items = v.arrayValue {
                guard items.count <= maxLayers else { throw fail(l.key, "has \(items.count) values (at most \(maxLayers))") }
                for (i, item) in items.enumerated() {
                    guard let x = item.intValue, x >= l.arrayMinimum, x <= l.range.upperBound else {
                        throw fail(l.key, "[\(i)] = \(item.serialized().prefix(40)) is outside \(l.arrayMinimum)...\(l.range.upperBound)")
                    }
                }
            } else {
                guard let x = v.intValue, l.range.contains(x) else {
                    throw fail(l.key, "= \(v.serialized().prefix(40)) is not an integer in \(l.range.lowerBound)...\(l.range.upperBound)")
                }
            }
        }
        for (key, minimum) in configFloats {
            guard let v = c[key] else { continue }
            if v.arrayValue != nil || v.objectValue != nil { continue }
            guard let d = v.doubleValue, d.isFinite, d >= minimum else {
                throw fail(key, "= \(v.doubleValue.map { String($0) } ?? String(v.serialized().prefix(40))) is not a finite number ≥ \(minimum == 0 ? "0" : "a positive value")")
            }
        }
        let heads = c.find(["num_attention_heads", "n_head", "n_heads"])?.intValue
        if let h = heads, let kv = c.find(["num_key_value_heads", "n_kv_heads"])?.intValue, h % kv != 0 {
            throw fail("num_key_value_heads", "= \(kv) does not divide num_attention_heads = \(h)")
        }
        if c["head_dim"] == nil, let h = heads, let e = c.find(["hidden_size", "n_embd"])?.intValue, e % h != 0 {
            throw fail("hidden_size", "= \(e) is not a multiple of num_attention_heads = \(h) (and there is no head_dim)")
        }
    }
}
