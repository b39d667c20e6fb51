import Foundation
import SmeltFormats
import SmeltModel
import SmeltCompressedTensors

/// A linear module of a Hugging Face checkpoint (an `nn.Linear` weight: attention and MLP projections,
/// the output head).
public struct CTLinearModule: Sendable, Equatable {
    /// HF module name (`model.layers.0.self_attn.q_proj`)
    public let name: String
    /// GGUF tensor name (`blk.0.attn_q.weight`), used by recipe rules
    public let ggufName: String
    /// recipe role (`attn_q`, `ffn_down`, `output`, …)
    public let role: String
    public let rows: Int
    public let columns: Int
}

/// The choice made for one linear module.
public struct CTModuleChoice: Sendable {
    public let module: CTLinearModule
    /// the preset, nil when the module is kept (ignored)
    public let scheme: CTSchemePreset?
    /// why: `--scheme`, `--ignore PATTERN`, `recipe:line`
    public let reason: String
}

/// `smelt quantize --format compressed-tensors`: chooses a scheme per linear module (one preset, or a
/// compressed-tensors recipe), applies the ignore list, and writes the checkpoint with
/// `CTCheckpointWriter` (docs/COMPRESSED-TENSORS.md).
public struct CompressedTensorsExport {
    public var input: URL
    public var output: URL
    /// one scheme for every linear module (`--scheme`)
    public var scheme: CTSchemePreset?
    /// a recipe with `format: compressed-tensors` (a scheme per rule)
    public var recipe: Recipe?
    /// module names or `re:` regular expressions never quantized (`--ignore`, default `lm_head`)
    public var ignore: [String]
    /// per module, max |x| of its input over calibration text (schemes with static input scales: FP8)
    public var inputAbsMax: [String: Float]
    /// input columns per scale of the schemes that quantize weights in groups (W4A16, W4A16_ASYM; their
    /// presets say 128), `--group-size`; nil keeps the presets'. One of `supportedGroupSizes`.
    public var groupSize: Int?

    /// The group sizes `groupSize` accepts: those of vLLM's Marlin kernels (`MARLIN_SUPPORTED_GROUP_SIZES`
    /// without -1, which is the channel strategy).
    public static let supportedGroupSizes = [32, 64, 128]

    public init(input: URL, output: URL, scheme: CTSchemePreset?, recipe: Recipe? = nil, ignore: [String] = ["lm_head"],
                inputAbsMax: [String: Float] = [:], groupSize: Int? = nil) {
        self.input = input; self.output = output; self.scheme = scheme; self.recipe = recipe
        self.ignore = ignore; self.inputAbsMax = inputAbsMax; self.groupSize = groupSize
    }

    /// The roles that are `nn.Linear` modules.
    static let linearRoles: Set<String> = ["attn_q", "attn_k", "attn_v", "attn_qkv", "attn_kv_b", "attn_output",
                                           "ffn_gate", "ffn_up", "ffn_down", "output"]

    /// The order of `model.named_modules()` for the supported decoders: blocks in number order, in a block
    /// attention (q, k, v, o) before the MLP (gate, up, down), the output head last — the order
    /// compressed-tensors lists ignored modules and targets in.
    public static func modelOrder(_ a: CTLinearModule, _ b: CTLinearModule) -> Bool {
        func key(_ m: CTLinearModule) -> (Int, Int) {
            let rank = ["attn_q", "attn_k", "attn_v", "attn_qkv", "attn_kv_b", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
            let layer = LlamaPresets.layerNumber(m.ggufName) ?? Int.max
            return (layer, rank.firstIndex(of: m.role) ?? rank.count)
        }
        let ka = key(a), kb = key(b)
        if ka != kb { return ka < kb }
        return a.name < b.name
    }

    /// The config.json of the input.
    public func config() throws -> JSONValue {
        let u = input.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: u.path) else { throw SmeltError("\(input.path): no config.json (not a Hugging Face checkpoint folder)") }
        do { return try JSONValue.parse(contentsOf: u) } catch let e as SmeltError { throw e.naming(u.path) } catch {
            throw SmeltError("\(u.path): \(error)")
        }
    }

    /// The linear modules of the checkpoint, in file order, and whether the output head is tied to the
    /// embeddings (then `lm_head` exists as a module but has no tensor of its own).
    public func linearModules(_ ckpt: SafetensorsCheckpoint, config: JSONValue) throws -> (modules: [CTLinearModule], tiedHead: Bool) {
        guard let cls = config["architectures"]?.arrayValue?.first?.stringValue else {
            throw SmeltError("\(input.path)/config.json: no architectures entry")
        }
        let arch = try Architecture.find(hfClass: cls)
        var out: [CTLinearModule] = []
        for t in ckpt.tensors where t.name.hasSuffix(".weight") && t.shape.count == 2 {
            guard let g = arch.map(t.name) else { continue }
            let role = RecipeRoles.role(of: g.name)
            guard Self.linearRoles.contains(role) else { continue }
            out.append(CTLinearModule(name: String(t.name.dropLast(".weight".count)), ggufName: g.name, role: role,
                                      rows: t.shape[0], columns: t.shape[1]))
        }
        let tied = config["tie_word_embeddings"]?.boolValue ?? false
        return (out, tied && ckpt.tensor(named: "lm_head.weight") == nil)
    }

    /// Chooses a scheme for every linear module.
    public func choices(_ modules: [CTLinearModule], config: JSONValue) throws -> [CTModuleChoice] {
        var ignores: [(String, NSRegularExpression?)] = []
        for p in ignore {
            if p.hasPrefix("re:") {
                do { ignores.append((p, try RecipePattern.compile(String(p.dropFirst(3))))) } catch let e as SmeltError {
                    throw SmeltError("--ignore \(p): \(e.message)")
                } catch { throw SmeltError("--ignore \(p): invalid regular expression") }
            } else { ignores.append((p, nil)) }
        }
        let nLayer = config["num_hidden_layers"]?.intValue ?? 0
        let arch = config["model_type"]?.stringValue ?? ""
        var out: [CTModuleChoice] = []
        for m in modules {
            if let hit = ignores.first(where: { p, re in
                if let re { return re.firstMatch(in: m.name, options: [.anchored], range: NSRange(location: 0, length: (m.name as NSString).length)) != nil }
                return p == m.name
            }) {
                out.append(CTModuleChoice(module: m, scheme: nil, reason: "--ignore \(hit.0)")); continue
            }
            if let recipe {
                let (name, reason) = try recipe.scheme(for: m, nLayer: nLayer, arch: arch)
                out.append(CTModuleChoice(module: m, scheme: name == "keep" ? nil : CTSchemePreset(name: name), reason: reason))
            } else if let scheme {
                out.append(CTModuleChoice(module: m, scheme: scheme, reason: "--scheme \(scheme.rawValue)"))
            } else {
                throw SmeltError("give --scheme or a compressed-tensors --recipe")
            }
        }
        return out
    }

    /// The write plan: one config group per scheme used (targets "Linear" when a single scheme covers every
    /// quantized module, else the module names), the ignore list as compressed-tensors writes it (every
    /// linear module left unquantized, the tied output head included), static input scales.
    public func plan() throws -> (plan: CTWritePlan, choices: [CTModuleChoice]) {
        let cfg = try config()
        let ckpt = try SafetensorsCheckpoint(folder: input)
        let (mods, tiedHead) = try linearModules(ckpt, config: cfg)
        guard !mods.isEmpty else { throw SmeltError("\(input.path): no linear modules found") }
        let ch = try choices(mods.sorted(by: Self.modelOrder), config: cfg)
        var used: [CTSchemePreset] = []
        for c in ch { if let s = c.scheme, !used.contains(s) { used.append(s) } }
        guard !used.isEmpty else { throw SmeltError("\(input.path): every linear module is ignored: nothing to quantize") }
        if let gs = groupSize {
            guard Self.supportedGroupSizes.contains(gs) else {
                throw SmeltError("group size \(gs): use one of \(Self.supportedGroupSizes.map(String.init).joined(separator: ", ")) (vLLM's kernels)")
            }
            guard used.contains(where: { $0.scheme().weights?.strategy == .group }) else {
                throw SmeltError("group size \(gs): no chosen scheme quantizes weights in groups (W4A16, W4A16_ASYM)")
            }
        }
        var groups: [(name: String, scheme: CTQuantizationScheme)] = []
        for (i, p) in used.enumerated() {
            let targets = used.count == 1 ? ["Linear"] : ch.filter { $0.scheme == p }.map(\.module.name)
            var s = p.scheme(targets: targets)
            if let gs = groupSize, var w = s.weights, w.strategy == .group { w.groupSize = gs; s.weights = w }
            s.format = s.inferredFormat
            groups.append(("group_\(i)", s))
        }
        var ignoreList = ch.filter { $0.scheme == nil }.map(\.module.name)
        if tiedHead { ignoreList.append("lm_head") }
        let config = CTQuantizationConfig(groups: groups, ignore: ignoreList)
        var modules: [String: Int] = [:]
        for c in ch { if let s = c.scheme, let g = used.firstIndex(of: s) { modules[c.module.name] = g } }

        // dtype as torch loads it: config's torch_dtype (or dtype), else the weights' own
        let dtName = cfg["torch_dtype"]?.stringValue ?? cfg["dtype"]?.stringValue
        let type: CTComputeType
        switch dtName {
        case "bfloat16": type = .bf16
        case "float16": type = .f16
        case "float32": type = .f32
        default: type = CTComputeType(ckpt.tensors.first { $0.dtype.isFloat }?.dtype ?? .F32)
        }
        var scales: [String: Float] = [:]
        for (m, g) in modules {
            guard let ia = groups[g].scheme.inputActivations, !ia.dynamic else { continue }
            guard let amax = inputAbsMax[m] else {
                throw SmeltError("scheme \(used[g].rawValue) needs a static input scale for '\(m)': calibrate on text first (no activation statistics given)")
            }
            scales[m] = CTQuantizer.qparams(min: -amax, max: amax, args: ia, type: type).scale
        }
        return (CTWritePlan(config: config, modules: modules, inputScales: scales, computeType: type), ch)
    }

    /// True when a chosen scheme has static input activations (FP8), which need `inputAbsMax` from a
    /// calibration run; with the choices (their `module.ggufName` names the evaluator's weights).
    public func planNeedingCalibration() throws -> (Bool, [CTModuleChoice]) {
        let cfg = try config()
        let ckpt = try SafetensorsCheckpoint(folder: input)
        let ch = try choices(try linearModules(ckpt, config: cfg).modules, config: cfg)
        let needs = ch.contains { c in c.scheme.map { s in s.scheme().inputActivations.map { !$0.dynamic } ?? false } ?? false }
        return (needs, ch)
    }

    /// Plans and writes the checkpoint.
    public func run(weights: ((String) throws -> [Float]?)? = nil, quantizer: CTWeightQuantizer? = nil) throws -> (summary: CTWriteSummary, choices: [CTModuleChoice]) {
        let (p, ch) = try plan()
        let s = try CTCheckpointWriter.write(source: input, to: output, plan: p, weights: weights, quantizer: quantizer)
        return (s, ch)
    }
}

extension Recipe {
    /// The scheme a compressed-tensors recipe gives a linear module, and why (`source:line`). Rules match
    /// on the module's GGUF name and role as in GGUF recipes; `layers:` counts blocks (`li` = the block
    /// number, `n` = num_hidden_layers); `when:` sees layer, n_layer, li, n, ncols, nrows, role, arch.
    public func scheme(for m: CTLinearModule, nLayer: Int, arch: String) throws -> (String, String) {
        guard isCompressedTensors else { throw SmeltError("\(source): recipe '\(name)' chooses ggml types (add format: compressed-tensors)") }
        let layer = LlamaPresets.layerNumber(m.ggufName)
        let li = layer ?? -1
        let env: (String) -> RecipeValue = { v in
            switch v {
            case "i", "li", "layer": return .int(li)
            case "n", "n_layer": return .int(nLayer)
            case "ncols": return .int(m.columns)
            case "nrows": return .int(m.rows)
            case "ne2": return .int(1)
            case "is_expert": return .bool(false)
            case "role": return .string(m.role)
            case "arch": return .string(arch)
            default: return .string(m.ggufName)
            }
        }
        for r in rules {
            if let roles = r.roles, !(roles.contains(m.role) || (m.role == "output" && roles.contains("logits"))) { continue }
            if let p = r.name, !p.matches(m.ggufName) { continue }
            if let e = r.experts, e { continue }
            if let items = r.layers {
                guard li >= 0, items.contains(where: { $0.contains(li, nLayer) }) else { continue }
            }
            if let w = r.when {
                let v: RecipeValue
                do { v = try w.evaluate(env) } catch let e as SmeltError { throw SmeltError("\(source):\(r.line): \(e.message)") }
                guard v == .bool(true) else { continue }
            }
            return (r.scheme ?? "keep", "\(source):\(r.line)")
        }
        return (defaultScheme ?? "keep", "\(source):\(defaultLine): default")
    }
}
