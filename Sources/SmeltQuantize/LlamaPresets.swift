import Foundation
import SmeltFormats

// The per-tensor type choice of llama.cpp's llama-quantize (src/llama-quant.cpp at
// 34af94cd9: tensor_allows_quantization, llama_tensor_get_type(_impl),
// tensor_type_fallback, tensor_requires_imatrix, llama_ftype_get_default_type),
// as a pure function from (tensor list, model facts, preset, options) to a plan.

/// A llama-quantize preset (`LLAMA_FTYPE_*`): the name on the command line,
/// the `general.file_type` it writes and the default tensor type.
public enum LlamaPreset: String, CaseIterable, Sendable {
    case Q1_0, Q4_0, Q4_1, MXFP4_MOE, Q5_0, Q5_1
    case IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M, IQ1_S, IQ1_M, TQ1_0, TQ2_0
    case Q2_K, Q2_K_S, IQ3_XXS, IQ3_S, IQ3_M, IQ3_XS, Q3_K_S, Q3_K_M, Q3_K_L
    case IQ4_NL, IQ4_XS, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, Q8_0, F16, BF16, F32

    /// The `LLAMA_FTYPE_*` value (written as `general.file_type`).
    public var fileType: UInt32 {
        switch self {
        case .F32: return 0
        case .F16: return 1
        case .Q4_0: return 2
        case .Q4_1: return 3
        case .Q8_0: return 7
        case .Q5_0: return 8
        case .Q5_1: return 9
        case .Q2_K: return 10
        case .Q3_K_S: return 11
        case .Q3_K_M: return 12
        case .Q3_K_L: return 13
        case .Q4_K_S: return 14
        case .Q4_K_M: return 15
        case .Q5_K_S: return 16
        case .Q5_K_M: return 17
        case .Q6_K: return 18
        case .IQ2_XXS: return 19
        case .IQ2_XS: return 20
        case .Q2_K_S: return 21
        case .IQ3_XS: return 22
        case .IQ3_XXS: return 23
        case .IQ1_S: return 24
        case .IQ4_NL: return 25
        case .IQ3_S: return 26
        case .IQ3_M: return 27
        case .IQ2_S: return 28
        case .IQ2_M: return 29
        case .IQ4_XS: return 30
        case .IQ1_M: return 31
        case .BF16: return 32
        case .TQ1_0: return 36
        case .TQ2_0: return 37
        case .MXFP4_MOE: return 38
        case .Q1_0: return 40
        }
    }

    /// `llama_ftype_get_default_type`.
    public var defaultType: GGMLType {
        switch self {
        case .Q4_0: return .q4_0
        case .Q4_1: return .q4_1
        case .Q5_0: return .q5_0
        case .Q5_1: return .q5_1
        case .Q8_0: return .q8_0
        case .F16: return .f16
        case .BF16: return .bf16
        case .F32: return .f32
        case .Q1_0: return .q1_0
        case .MXFP4_MOE: return .mxfp4
        case .Q2_K_S, .Q2_K: return .q2_K
        case .IQ3_XS: return .iq3_s
        case .Q3_K_S, .Q3_K_M, .Q3_K_L: return .q3_K
        case .Q4_K_S, .Q4_K_M: return .q4_K
        case .Q5_K_S, .Q5_K_M: return .q5_K
        case .Q6_K: return .q6_K
        case .TQ1_0: return .tq1_0
        case .TQ2_0: return .tq2_0
        case .IQ2_XXS: return .iq2_xxs
        case .IQ2_XS: return .iq2_xs
        case .IQ2_S: return .iq2_xs
        case .IQ2_M: return .iq2_s
        case .IQ3_XXS: return .iq3_xxs
        case .IQ1_S: return .iq1_s
        case .IQ1_M: return .iq1_m
        case .IQ4_NL: return .iq4_nl
        case .IQ4_XS: return .iq4_xs
        case .IQ3_S, .IQ3_M: return .iq3_s
        }
    }

    /// The name llama-quantize reports for a TYPE argument (and uses in its default
    /// output name `ggml-model-NAME.gguf`): the matched option, aliases included; a
    /// number gives the first option with that file type (`15` → `Q4_K`).
    public static func optionName(parsing s: String) -> String? {
        let aliases: [String: UInt32] = ["Q3_K": 12, "Q4_K": 15, "Q5_K": 17]
        let u = s.uppercased()
        if aliases[u] != nil || LlamaPreset(rawValue: u) != nil { return u }
        guard let n = Int(s.trimmingCharacters(in: .whitespaces)), let p = LlamaPreset(parsing: s) else { return nil }
        if let a = aliases.first(where: { Int($0.value) == n }) {
            // QUANT_OPTIONS lists the alias before the _S/_M/_L variants of that file type
            return a.key
        }
        return p.rawValue
    }

    /// Parses a preset as llama-quantize does: case-insensitive name, the aliases
    /// `Q3_K`, `Q4_K`, `Q5_K`, or the numeric file type.
    public init?(parsing s: String) {
        let u = s.uppercased()
        switch u {
        case "Q3_K": self = .Q3_K_M; return
        case "Q4_K": self = .Q4_K_M; return
        case "Q5_K": self = .Q5_K_M; return
        default: break
        }
        if let p = LlamaPreset(rawValue: u) { self = p; return }
        if let n = Int(s.trimmingCharacters(in: .whitespaces)), let p = LlamaPreset.allCases.first(where: { Int($0.fileType) == n }) {
            self = p; return
        }
        return nil
    }
}

/// The model facts the type choice depends on (from GGUF metadata).
public struct ModelFacts: Equatable, Sendable {
    public var arch: String
    /// `{arch}.block_count` (llama.cpp's `n_layer_all`).
    public var nLayer: Int
    public var nHead: Int
    public var nHeadKV: Int
    public var nExpert: Int
    public init(arch: String, nLayer: Int, nHead: Int, nHeadKV: Int, nExpert: Int = 0) {
        self.arch = arch; self.nLayer = nLayer; self.nHead = nHead; self.nHeadKV = nHeadKV; self.nExpert = nExpert
    }

    /// Reads the facts from GGUF metadata (`general.architecture`, `{arch}.block_count`, …).
    public init(metadata md: GGUFMetadata) {
        let arch = md["general.architecture"]?.stringValue ?? ""
        func first(_ k: String) -> Int? {
            guard let v = md["\(arch).\(k)"] else { return nil }
            if let a = v.arrayValue { return a.first?.intValue }
            return v.intValue
        }
        let nHead = first("attention.head_count") ?? 0
        self.init(arch: arch, nLayer: first("block_count") ?? 0, nHead: nHead,
                  nHeadKV: first("attention.head_count_kv") ?? nHead, nExpert: first("expert_count") ?? 0)
    }

    /// `hparams.n_gqa()`.
    public var nGQA: Int { nHeadKV == 0 ? 0 : nHead / nHeadKV }
    /// `model.type == LLM_TYPE_70B` (the only model size the rules look at).
    public var is70B: Bool {
        switch arch {
        case "llama": return nLayer == 80 && nHead != nHeadKV
        case "deci", "olmo", "qwen2": return nLayer == 80
        case "jais2": return nLayer == 68
        default: return false
        }
    }
}

/// A tensor as the planner sees it.
public struct PlanInput: Equatable, Sendable {
    public var name: String
    /// ggml order (`shape[0]` is the row length).
    public var shape: [Int]
    /// The type the tensor has in the input.
    public var type: GGMLType
    public init(name: String, shape: [Int], type: GGMLType) { self.name = name; self.shape = shape; self.type = type }
}

/// llama-quantize's options that change the plan.
public struct QuantizeOptions: Sendable {
    /// `--pure`: no k-quant mixtures.
    public var pure = false
    /// `--leave-output-tensor` sets this to false.
    public var quantizeOutputTensor = true
    /// `--output-tensor-type`.
    public var outputTensorType: GGMLType? = nil
    /// `--token-embedding-type`.
    public var tokenEmbeddingType: GGMLType? = nil
    /// `--tensor-type REGEX=TYPE`, in order; the first pattern found in the name wins.
    public var tensorTypes: [(pattern: String, type: GGMLType)] = []
    /// True when importance data is present (after `--include/--exclude-weights`).
    public var hasImatrix = false
    /// `--dry-run`: a missing imatrix is reported as a warning instead of an error.
    public var dryRun = false
    public init() {}
}

/// The decision for one tensor.
public struct TensorChoice: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var sourceType: GGMLType
    /// The type written.
    public var type: GGMLType
    /// False for tensors llama.cpp never quantizes (norms, 1-D, …): they are copied.
    public var allowsQuantization: Bool
    /// True when llama.cpp requires importance data for this tensor.
    public var requiresImatrix: Bool
    /// Why this type (short, for `--json` and tests).
    public var reason: String

    public var elementCount: Int { shape.reduce(1, *) }
    /// Bytes in the output.
    public var outputBytes: Int { GGUF.byteCount(shape: shape, type: type) ?? 0 }
    /// True when the data changes type (otherwise it is copied as is).
    public var converts: Bool { type != sourceType }
}

/// The whole plan: tensors in output order (llama.cpp's loader order) and the file type.
public struct QuantPlan: Equatable, Sendable {
    public var preset: LlamaPreset
    public var fileType: UInt32
    public var tensors: [TensorChoice]
    /// Tensors whose row length forced a fallback type.
    public var fallbackCount: Int
    /// Some tensor needs an imatrix that was not given (only possible with `--dry-run`).
    public var willRequireImatrix: Bool

    public var inputBytes: Int { tensors.reduce(0) { $0 + (GGUF.byteCount(shape: $1.shape, type: $1.sourceType) ?? 0) } }
    public var outputBytes: Int { tensors.reduce(0) { $0 + $1.outputBytes } }
    public var elementCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }

    /// The plan as JSON (`smelt quantize --json`).
    public func json() -> JSONValue {
        .object([
            ("preset", .string(preset.rawValue)),
            ("file_type", .int(Int64(fileType))),
            ("fallbacks", .int(Int64(fallbackCount))),
            ("input_bytes", .int(Int64(inputBytes))),
            ("output_bytes", .int(Int64(outputBytes))),
            ("tensors", .array(tensors.map { t in
                .object([
                    ("name", .string(t.name)),
                    ("shape", .array(t.shape.map { .int(Int64($0)) })),
                    ("source_type", .string(t.sourceType.name)),
                    ("type", .string(t.type.name)),
                    ("bytes", .int(Int64(t.outputBytes))),
                    ("reason", .string(t.reason)),
                ])
            })),
        ])
    }
}

/// llama.cpp's tensor categories (`tensor_category`).
enum TensorCategory {
    case tokenEmbd, attentionQ, attentionV, attentionK, attentionQKV, attentionKVB, attentionOutput
    case ffnUp, ffnGate, ffnDown, output, other

    init(name: String) {
        if name == "output.weight" { self = .output }
        else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { self = .tokenEmbd }
        else if name.contains("attn_qkv.weight") { self = .attentionQKV }
        else if name.contains("attn_kv_b.weight") { self = .attentionKVB }
        else if name.contains("attn_v.weight") { self = .attentionV }
        else if name.contains("attn_k.weight") { self = .attentionK }
        else if name.contains("attn_q.weight") { self = .attentionQ }
        else if name.contains("attn_output.weight") { self = .attentionOutput }
        else if name.contains("ffn_up") { self = .ffnUp }
        else if name.contains("ffn_gate") { self = .ffnGate }
        else if name.contains("ffn_down") { self = .ffnDown }
        else { self = .other }
    }
    var isAttnV: Bool { self == .attentionV || self == .attentionQKV || self == .attentionKVB }
}

/// The planner: llama-quantize's per-tensor type choice.
public enum LlamaPresets {
    /// `sscanf(name, "blk.%d.", &layer)`: the layer number, or nil.
    static func layerNumber(_ name: String) -> Int? {
        var u = Substring(name).utf8[...]
        guard u.starts(with: "blk.".utf8) else { return nil }
        u = u.dropFirst(4)
        while let c = u.first, c == 0x20 || (c >= 9 && c <= 13) { u = u.dropFirst() }
        var neg = false
        if let c = u.first, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") { neg = c == UInt8(ascii: "-"); u = u.dropFirst() }
        var v = 0, digits = 0
        while let c = u.first, c >= 0x30, c <= 0x39 { v = v &* 10 &+ Int(c - 0x30); digits += 1; u = u.dropFirst() }
        guard digits > 0 else { return nil }
        return Int(Int32(truncatingIfNeeded: neg ? -v : v))
    }

    /// llama_model_loader's `weight_name_comparer`: by layer (non-layer tensors first), then by name bytes.
    public static func loaderOrder(_ a: String, _ b: String) -> Bool {
        let la = layerNumber(a) ?? -1, lb = layerNumber(b) ?? -1
        if la != lb { return la < lb }
        return a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// `ggml_n_dims`.
    static func nDims(_ shape: [Int]) -> Int {
        var i = shape.count - 1
        while i >= 1 { if shape[i] > 1 { return i + 1 }; i -= 1 }
        return 1
    }

    /// `tensor_allows_quantization` (nil) or the reason it does not.
    static func refusal(_ t: PlanInput, options: QuantizeOptions) -> String? {
        if nDims(t.shape) < 2 { return "1-D tensor: kept" }
        let n = t.name
        if !n.hasSuffix("weight") { return "not a weight: kept" }
        if n.contains("_norm.weight") { return "norm: kept" }
        if !options.quantizeOutputTensor && n == "output.weight" { return "--leave-output-tensor" }
        let never = ["ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
                     "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
                     "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
                     "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
                     "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
                     "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
                     "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
                     ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd"]
        for s in never where n.contains(s) { return "never quantized (\(s)): kept" }
        if n == "position_embd.weight" || n == "token_types.weight" { return "positional/token-type embedding: kept" }
        return nil
    }

    /// `tensor_type_fallback`: the type to use when the row length does not fit.
    static func fallback(_ type: GGMLType, ncols: Int) throws -> GGMLType? {
        guard ncols % type.blockSize != 0 else { return nil }
        var r: GGMLType
        switch type {
        case .iq1_s, .iq1_m, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq4_xs: r = .iq4_nl
        case .q2_K, .q3_K, .tq1_0, .tq2_0: r = .q4_0
        case .q4_K: r = .q5_0
        case .q5_K: r = .q5_1
        case .q6_K: r = .q8_0
        default: throw SmeltError("no tensor type fallback is defined for type \(type.name)")
        }
        if ncols % r.blockSize != 0 { r = .f16 }
        return r
    }

    /// `tensor_requires_imatrix`.
    static func requiresImatrix(name: String, type: GGMLType, preset: LlamaPreset) -> Bool {
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" || name == "output.weight" { return false }
        switch type {
        case .iq3_xxs, .iq2_xxs, .iq2_xs, .iq2_s, .iq1_m, .iq1_s: return true
        case .q2_K: return preset == .Q2_K_S
        default: return false
        }
    }

    /// Mutable counters of `quantize_state_impl`.
    struct State {
        var nAttentionWV = 0, nFFNDown = 0, nFFNGate = 0, nFFNUp = 0
        var iAttentionWV = 0, iFFNDown = 0, iFFNGate = 0, iFFNUp = 0
        var hasTiedEmbeddings = true
        var hasImatrix = false
    }

    /// Plans a quantization. `tensors` may be in any order; the plan is in llama.cpp's
    /// output order. Throws llama-quantize's errors (missing imatrix, bad override regex …).
    public static func plan(tensors input: [PlanInput], model: ModelFacts, preset: LlamaPreset,
                            options: QuantizeOptions) throws -> QuantPlan {
        let tensors = input.sorted { loaderOrder($0.name, $1.name) }
        var st = State()
        st.hasImatrix = options.hasImatrix
        for t in tensors {
            let c = TensorCategory(name: t.name)
            if c.isAttnV { st.nAttentionWV += 1 }
            if c == .output { st.hasTiedEmbeddings = false }
        }
        st.nFFNDown = model.nLayer; st.nFFNGate = model.nLayer; st.nFFNUp = model.nLayer

        var patterns: [(NSRegularExpression, GGMLType, String)] = []
        for (p, ty) in options.tensorTypes {
            do { patterns.append((try RecipePattern.compile(p), ty, p)) } catch let e as SmeltError {
                throw SmeltError("--tensor-type: \(e.message)")
            } catch {
                throw SmeltError("--tensor-type: invalid regular expression '\(p)'")
            }
        }

        let defaultType = preset.defaultType
        var choices: [TensorChoice] = []
        var nFallback = 0
        var willRequire = false
        for t in tensors {
            let category = TensorCategory(name: t.name)
            var type = t.type
            var reason: String
            var allows = true
            if let r = refusal(t, options: options) {
                allows = false; reason = r
            } else if let te = options.tokenEmbeddingType, category == .tokenEmbd {
                type = te; reason = "--token-embedding-type"
            } else if let ot = options.outputTensorType, category == .output {
                type = ot; reason = "--output-tensor-type"
            } else {
                type = defaultType
                reason = "default \(defaultType.name)"
                if defaultType.isQuantized {
                    var manual = false
                    let ns = t.name as NSString
                    for (re, qt, p) in patterns where re.firstMatch(in: t.name, range: NSRange(location: 0, length: ns.length)) != nil {
                        if qt != type { reason = "--tensor-type \(p)" } else { reason = "--tensor-type \(p) (same as default)" }
                        type = qt
                        manual = true
                        break
                    }
                    if !manual && !options.pure {
                        let (nt, why) = try impl(&st, type, t, preset: preset, category: category, model: model, options: options)
                        if nt != type || why != nil { reason = why ?? "rule" }
                        type = nt
                    } else if !manual {
                        reason = "--pure"
                    }
                    if let fb = try fallback(type, ncols: t.shape.first ?? 1) {
                        reason += "; ncols \(t.shape.first ?? 1) not divisible by \(type.blockSize) for \(type.name): fallback"
                        nFallback += 1
                        type = fb
                    }
                }
            }
            let req = requiresImatrix(name: t.name, type: type, preset: preset)
            if allows && req && !options.hasImatrix {
                if options.dryRun { willRequire = true } else {
                    throw SmeltError("this quantization requires an importance matrix (--imatrix): tensor \(t.name) would be \(type.name)")
                }
            }
            choices.append(TensorChoice(name: t.name, shape: t.shape, sourceType: t.type, type: type,
                                        allowsQuantization: allows, requiresImatrix: req, reason: reason))
        }
        return QuantPlan(preset: preset, fileType: preset.fileType, tensors: choices,
                         fallbackCount: nFallback, willRequireImatrix: willRequire)
    }

    static func useMoreBits(_ i: Int, _ n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    /// `llama_tensor_get_type_impl`: the preset's mixture rules. Returns the type and,
    /// when a rule fired, its description.
    static func impl(_ qs: inout State, _ start: GGMLType, _ t: PlanInput, preset ftype: LlamaPreset,
                     category: TensorCategory, model: ModelFacts, options: QuantizeOptions) throws -> (GGMLType, String?) {
        var newType = start
        var why: String? = nil
        func set(_ ty: GGMLType, _ w: String) { newType = ty; why = w }
        let arch = model.arch
        let nExpert = max(1, model.nExpert)
        let nGQA = model.nGQA
        let name = t.name
        func layerInfo(_ i: Int, _ n: Int) throws -> (Int, Int) {
            if nExpert > 1 {
                guard let l = layerNumber(name) else { throw SmeltError("failed to determine layer for tensor \(name)") }
                guard l >= 0, l < n else { throw SmeltError("bad layer \(l) for tensor \(name): must be in [0, \(n))") }
                return (l, n)
            }
            return (i, n)
        }
        let ne0 = t.shape.first ?? 1
        let ne2 = t.shape.count > 2 ? t.shape[2] : 1
        let iqLow: Set<LlamaPreset> = [.IQ2_XXS, .IQ2_XS, .IQ1_S, .IQ2_S, .IQ2_M, .IQ1_M]

        if category == .output || (qs.hasTiedEmbeddings && category == .tokenEmbd) {
            let tied = category == .tokenEmbd ? " (tied embeddings)" : ""
            if let ot = options.outputTensorType {
                set(ot, "--output-tensor-type\(tied)")
            } else if ftype == .MXFP4_MOE {
                set(.q8_0, "output: q8_0 for MXFP4_MOE\(tied)")
            } else if arch == "falcon" || ne0 % newType.blockSize != 0 {
                set(.q8_0, "output: q8_0 (falcon or row not a multiple of \(newType.blockSize))\(tied)")
            } else if [.IQ2_XXS, .IQ2_XS, .IQ3_XXS, .IQ1_S, .IQ2_S, .IQ2_M, .IQ1_M].contains(ftype) {
                set(.q5_K, "output: q5_K for low-bit IQ\(tied)")
            } else if newType != .q8_0 {
                set(.q6_K, "output: q6_K\(tied)")
            }
        } else if ftype == .MXFP4_MOE {
            let isB3Expert = arch == "bailingmoe3" && (category == .ffnUp || category == .ffnGate || category == .ffnDown)
            if ne2 > 1 && (arch != "bailingmoe3" || isB3Expert) { set(.mxfp4, "MXFP4_MOE: expert tensor") }
            else { set(.q8_0, "MXFP4_MOE: non-expert tensor") }
        } else if category == .tokenEmbd {
            if let te = options.tokenEmbeddingType {
                set(te, "--token-embedding-type")
            } else if [.IQ2_XXS, .IQ2_XS, .IQ1_S, .IQ1_M].contains(ftype) {
                set(.q2_K, "token_embd: q2_K")
            } else if ftype == .IQ2_S || ftype == .IQ2_M {
                set(.iq3_s, "token_embd: iq3_s")
            } else if ftype == .IQ3_XXS {
                set(.iq3_s, "token_embd: iq3_s")
            } else if ftype == .TQ1_0 || ftype == .TQ2_0 {
                set(.q4_K, "token_embd: q4_K")
            }
        } else if iqLow.contains(ftype) {
            if category.isAttnV {
                if nGQA >= 4 || model.nExpert >= 4 { set(.q4_K, "attn_v: q4_K (gqa>=4 or experts>=4)") }
                else { set(ftype == .IQ2_S || ftype == .IQ2_M ? .iq3_s : .q2_K, "attn_v upgrade") }
                qs.iAttentionWV += 1
            } else if model.nExpert == 8 && category == .attentionK {
                set(.q4_K, "attn_k: q4_K (8 experts)")
            } else if category == .ffnDown {
                if qs.iFFNDown < qs.nFFNDown / 8 {
                    set(ftype == .IQ2_S || ftype == .IQ2_M ? .iq3_s : .q2_K, "ffn_down: first eighth of layers")
                }
                qs.iFFNDown += 1
            } else if category == .attentionOutput {
                if model.nExpert == 8 { set(.q5_K, "attn_output: q5_K (8 experts)") }
                else if ftype == .IQ1_S || ftype == .IQ1_M { set(.iq2_xxs, "attn_output: iq2_xxs") }
                else if ftype == .IQ2_S || ftype == .IQ2_M { set(.iq3_s, "attn_output: iq3_s") }
            }
        } else if category.isAttnV {
            let i = qs.iAttentionWV, n = qs.nAttentionWV
            if ftype == .Q2_K { set(nGQA >= 4 ? .q4_K : .q3_K, "attn_v upgrade") }
            else if ftype == .Q2_K_S && nGQA >= 4 { set(.q4_K, "attn_v: q4_K (gqa>=4)") }
            else if ftype == .IQ3_XXS { set(nGQA >= 4 ? .q4_K : !qs.hasImatrix ? .iq3_s : .iq3_xxs, "attn_v upgrade") }
            else if (ftype == .IQ3_XS || ftype == .IQ3_S) && nGQA >= 4 { set(.q4_K, "attn_v: q4_K (gqa>=4)") }
            else if ftype == .IQ3_M { set(.q4_K, "attn_v: q4_K") }
            else if ftype == .Q3_K_M { set(i < 2 ? .q5_K : .q4_K, "attn_v upgrade (layer index \(i))") }
            else if ftype == .Q3_K_L { set(.q5_K, "attn_v: q5_K") }
            else if (ftype == .IQ4_NL || ftype == .IQ4_XS) && nGQA >= 4 { set(.q5_K, "attn_v: q5_K (gqa>=4)") }
            else if (ftype == .Q4_K_M || ftype == .Q5_K_M) && useMoreBits(i, n) { set(.q6_K, "attn_v: use_more_bits(\(i), \(n))") }
            else if ftype == .Q4_K_S && i < 4 { set(.q5_K, "attn_v: first 4") }
            if model.is70B && (newType == .q3_K || newType == .q4_K) { set(.q5_K, "attn_v: q5_K (70B)") }
            if model.nExpert == 8 { set(.q8_0, "attn_v: q8_0 (8 experts)") }
            qs.iAttentionWV += 1
        } else if category == .attentionK {
            if model.nExpert == 8 { set(.q8_0, "attn_k: q8_0 (8 experts)") }
            else if ftype == .IQ3_XS { set(.iq3_xxs, "attn_k: iq3_xxs") }
            else if ftype == .IQ3_XXS { set(.iq2_s, "attn_k: iq2_s") }
        } else if category == .attentionQ {
            if ftype == .IQ3_XS { set(.iq3_xxs, "attn_q: iq3_xxs") }
            else if ftype == .IQ3_XXS { set(.iq2_s, "attn_q: iq2_s") }
        } else if category == .ffnDown {
            let (il, nl) = try layerInfo(qs.iFFNDown, qs.nFFNDown)
            let lw = "ffn_down layer \(il)/\(nl)"
            if ftype == .Q2_K { set(.q3_K, lw) }
            else if ftype == .Q2_K_S { if il < nl / 8 { set(.q4_K, lw + ": first eighth") } }
            else if ftype == .IQ3_XXS && !qs.hasImatrix { set(il < nl / 8 ? .q4_K : .q3_K, lw + " (no imatrix)") }
            else if ftype == .Q3_K_M {
                set(il < nl / 16 ? .q5_K : (arch != "falcon" || useMoreBits(il, nl)) ? .q4_K : .q3_K, lw)
            } else if ftype == .IQ3_M && (il < nl / 8 || (model.nExpert == 8 && useMoreBits(il, nl))) {
                set(.q4_K, lw)
            } else if ftype == .Q3_K_L { set(arch == "falcon" ? .q4_K : .q5_K, lw) }
            else if ftype == .Q4_K_M {
                if arch == "falcon" {
                    set(il < nl / 16 ? .q6_K : useMoreBits(il, nl) ? .q5_K : .q4_K, lw)
                } else if useMoreBits(il, nl) { set(.q6_K, lw + ": use_more_bits") }
            } else if il < nl / 8 && (ftype == .IQ4_NL || ftype == .IQ4_XS) && !qs.hasImatrix {
                set(.q5_K, lw + ": first eighth (no imatrix)")
            } else if ftype == .Q5_K_M && useMoreBits(il, nl) { set(.q6_K, lw + ": use_more_bits") }
            else if ftype == .Q4_K_S && arch != "falcon" && il < nl / 8 { set(.q5_K, lw + ": first eighth") }
            else if (ftype == .Q4_0 || ftype == .Q5_0) && qs.hasImatrix && il < nl / 8 {
                set(ftype == .Q4_0 ? .q4_1 : .q5_1, lw + ": first eighth (imatrix)")
            }
            qs.iFFNDown += 1
        } else if category == .attentionOutput {
            if arch != "falcon" {
                if model.nExpert == 8 {
                    if [.Q2_K, .IQ3_XS, .IQ3_XXS, .Q3_K_S, .Q3_K_M, .IQ4_NL, .Q4_K_S, .Q4_K_M, .IQ3_S, .IQ3_M, .IQ4_XS].contains(ftype) {
                        set(.q5_K, "attn_output: q5_K (8 experts)")
                    }
                } else {
                    if ftype == .Q2_K { set(.q3_K, "attn_output: q3_K") }
                    else if ftype == .IQ3_XXS { set(.iq3_s, "attn_output: iq3_s") }
                    else if ftype == .Q3_K_M { set(.q4_K, "attn_output: q4_K") }
                    else if ftype == .Q3_K_L { set(.q5_K, "attn_output: q5_K") }
                    else if ftype == .IQ3_M { set(.q4_K, "attn_output: q4_K") }
                }
            } else if ftype == .Q3_K_L { set(.q4_K, "attn_output: q4_K (falcon)") }
        } else if category == .attentionQKV {
            if ftype == .Q3_K_M || ftype == .Q3_K_L || ftype == .IQ3_M { set(.q4_K, "attn_qkv: q4_K") }
            else if ftype == .Q4_K_M { set(.q5_K, "attn_qkv: q5_K") }
            else if ftype == .Q5_K_M { set(.q6_K, "attn_qkv: q6_K") }
        } else if category == .ffnGate {
            let (il, nl) = try layerInfo(qs.iFFNGate, qs.nFFNGate)
            if ftype == .IQ3_XS && il >= nl / 8 && il < 7 * nl / 8 { set(.iq3_xxs, "ffn_gate: middle layers") }
            qs.iFFNGate += 1
        } else if category == .ffnUp {
            let (il, nl) = try layerInfo(qs.iFFNUp, qs.nFFNUp)
            if ftype == .IQ3_XS && il >= nl / 8 && il < 7 * nl / 8 { set(.iq3_xxs, "ffn_up: middle layers") }
            qs.iFFNUp += 1
        }
        return (newType, why)
    }
}
