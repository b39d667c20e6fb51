import Foundation
import SmeltFormats

/// Applies a `Recipe` to a tensor list: the same walk as llama-quantize
/// (`LlamaPresets.plan`, the executable reference), with the preset's C++ rules
/// replaced by the recipe's rules.
extension Recipe {
    /// Which llama.cpp counter a role advances (`i_attention_wv`, `i_ffn_down`, …).
    static func counterGroup(_ c: TensorCategory) -> Int? {
        if c.isAttnV { return 0 }
        switch c {
        case .ffnDown: return 1
        case .ffnGate: return 2
        case .ffnUp: return 3
        default: return nil
        }
    }

    /// Plans `tensors` (any order; the plan is in llama.cpp's output order). Each choice's
    /// `reason` starts with `source:line` of the rule (or `default:`) that chose the type.
    public func plan(tensors input: [PlanInput], model: ModelFacts, options: QuantizeOptions) throws -> QuantPlan {
        guard !isCompressedTensors else {
            throw SmeltError("\(source): a compressed-tensors recipe chooses schemes, not ggml types: use smelt quantize --format compressed-tensors")
        }
        let tensors = input.sorted { LlamaPresets.loaderOrder($0.name, $1.name) }
        var nGroup = [0, model.nLayer, model.nLayer, model.nLayer]
        var tied = true
        for t in tensors {
            let c = TensorCategory(name: t.name)
            if c.isAttnV { nGroup[0] += 1 }
            if c == .output { tied = false }
        }
        var iGroup = [0, 0, 0, 0]

        var patterns: [(NSRegularExpression, GGMLType, String)] = []
        for (p, ty) in options.tensorTypes {
            do { patterns.append((try RecipePattern.compile(p), ty, p)) } catch let e as SmeltError {
                throw SmeltError("--tensor-type: \(e.message)")
            } catch {
                throw SmeltError("--tensor-type: invalid regular expression '\(p)'")
            }
        }
        let isBuiltin = source.hasPrefix("builtin:")
        func at(_ line: Int) -> String { "\(source):\(line)" }

        var choices: [TensorChoice] = []
        var nFallback = 0
        var willRequire = false
        for t in tensors {
            let category = TensorCategory(name: t.name)
            let role = RecipeRoles.role(of: t.name)
            var type = t.type
            var reason: String
            var allows = true
            var ruleFallback: GGMLType? = nil
            if let r = LlamaPresets.refusal(t, options: options) {
                allows = false; reason = r
            } else if let k = keep.first(where: { $0.matches(t.name) }) {
                allows = false; reason = "\(at(k.line)): keep /\(k.pattern)/"
            } else if let te = options.tokenEmbeddingType, category == .tokenEmbd {
                type = te; reason = "--token-embedding-type"
            } else if let ot = options.outputTensorType, category == .output {
                type = ot; reason = "--output-tensor-type"
            } else {
                type = defaultType
                reason = "\(at(defaultLine)): default \(defaultType.name)"
                var manual = false
                if defaultType.isQuantized {
                    let ns = t.name as NSString
                    for (re, qt, p) in patterns where re.firstMatch(in: t.name, range: NSRange(location: 0, length: ns.length)) != nil {
                        type = qt; reason = "--tensor-type \(p)"; manual = true
                        break
                    }
                }
                if options.pure && !manual { reason = "--pure" }
                if !manual && !options.pure {
                    // llama.cpp's counters: position among the tensors of the group that reach the rules.
                    let group = Recipe.counterGroup(category)
                    let layer = LlamaPresets.layerNumber(t.name)
                    var i = -1, n = model.nLayer, li = layer ?? -1
                    if let g = group {
                        i = iGroup[g]; n = nGroup[g]; iGroup[g] += 1
                        li = i
                        if g > 0 && model.nExpert > 1 {
                            guard let l = layer else { throw SmeltError("failed to determine layer for tensor \(t.name)") }
                            guard l >= 0, l < n else { throw SmeltError("bad layer \(l) for tensor \(t.name): must be in [0, \(n))") }
                            li = l
                        }
                    }
                    let ne2 = t.shape.count > 2 ? t.shape[2] : 1
                    let env: (String) -> RecipeValue = { v in
                        switch v {
                        case "i": return .int(i)
                        case "li": return .int(li)
                        case "n": return .int(n)
                        case "layer": return .int(layer ?? -1)
                        case "n_layer": return .int(model.nLayer)
                        case "ncols": return .int(t.shape.first ?? 1)
                        case "nrows": return .int(t.shape.count > 1 ? t.shape[1] : 1)
                        case "ne2": return .int(ne2)
                        case "n_expert": return .int(model.nExpert)
                        case "n_gqa": return .int(model.nGQA)
                        case "n_head": return .int(model.nHead)
                        case "n_head_kv": return .int(model.nHeadKV)
                        case "has_imatrix": return .bool(options.hasImatrix)
                        case "tied_embeddings": return .bool(tied)
                        case "is_70b": return .bool(model.is70B)
                        case "is_expert": return .bool(ne2 > 1)
                        case "arch": return .string(model.arch)
                        case "role": return .string(role)
                        default: return .string(t.name)
                        }
                    }
                    if let ot = options.outputTensorType, tied, category == .tokenEmbd, defaultType.isQuantized {
                        type = ot; reason = "--output-tensor-type (tied embeddings)"
                    } else {
                        let isLogits = category == .output || (tied && category == .tokenEmbd)
                        for r in rules {
                            if let roles = r.roles, !(roles.contains(role) || (isLogits && roles.contains("logits"))) { continue }
                            if let p = r.name, !p.matches(t.name) { continue }
                            if let e = r.experts, e != (ne2 > 1) { continue }
                            if let items = r.layers {
                                guard li >= 0, items.contains(where: { $0.contains(li, n) }) else { continue }
                            }
                            if let w = r.when {
                                let v: RecipeValue
                                do { v = try w.evaluate(env) } catch let e as SmeltError {
                                    throw SmeltError("\(at(r.line)): condition '\(r.whenText ?? "")' on \(t.name): \(e.message)")
                                }
                                guard case .bool(let b) = v else {
                                    throw SmeltError("\(at(r.line)): condition '\(r.whenText ?? "")' is not a boolean")
                                }
                                if !b { continue }
                            }
                            if let ty = r.type {
                                type = ty
                                reason = "\(at(r.line)): \(r.why ?? ruleSummary(r))"
                                ruleFallback = r.fallback
                            } else {
                                type = t.type; allows = false
                                reason = "\(at(r.line)): keep"
                            }
                            break
                        }
                    }
                }
                if allows, type.isQuantized, let ncols = t.shape.first, ncols % type.blockSize != 0 {
                    var fb: GGMLType
                    if let f = ruleFallback ?? fallbacks[type] { fb = f } else {
                        guard let f = try LlamaPresets.fallback(type, ncols: ncols) else { fatalError("unreachable") }
                        fb = f
                    }
                    if ncols % fb.blockSize != 0 { fb = .f16 }
                    reason += "; ncols \(ncols) not divisible by \(type.blockSize) for \(type.name): fallback \(fb.name)"
                    nFallback += 1
                    type = fb
                }
            }
            let req = allows && !(t.name == "token_embd.weight" || t.name == "per_layer_token_embd.weight" || t.name == "output.weight")
                && requiresImatrix.contains(type)
            if req && !options.hasImatrix {
                if options.dryRun { willRequire = true } else {
                    throw SmeltError("this quantization requires an importance matrix (--imatrix): tensor \(t.name) would be \(type.name)")
                }
            }
            _ = isBuiltin
            choices.append(TensorChoice(name: t.name, shape: t.shape, sourceType: t.type, type: type,
                                        allowsQuantization: allows, requiresImatrix: req, reason: reason))
        }
        return QuantPlan(preset: fileType, fileType: fileType.fileType, tensors: choices,
                         fallbackCount: nFallback, willRequireImatrix: willRequire)
    }

    /// A one-line description of a rule's matchers.
    func ruleSummary(_ r: RecipeRule) -> String {
        var parts: [String] = []
        if let ro = r.roles { parts.append(ro.sorted().joined(separator: "|")) }
        if let n = r.name { parts.append("/\(n.pattern)/") }
        if let l = r.layersText { parts.append("layers \(l)") }
        if let e = r.experts { parts.append(e ? "experts" : "non-experts") }
        if let w = r.whenText { parts.append("when \(w)") }
        parts.append("→ \(r.type?.name ?? "keep")")
        return parts.joined(separator: " ")
    }
}
