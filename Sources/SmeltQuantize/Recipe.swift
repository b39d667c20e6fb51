import Foundation
import SmeltFormats
import SmeltModel
import Yams
import SmeltCompressedTensors

/// A recipe: which ggml type each tensor of a model gets. Parsed from YAML (format in
/// docs/RECIPES.md); llama.cpp's presets ship as recipes (`BuiltinRecipes`).
public struct Recipe: Sendable {
    /// `name:`.
    public var name: String
    public var description: String
    /// Where the text came from (a path, or `builtin:NAME`), used in `file:line` reasons.
    public var source: String
    /// The YAML text, as read.
    public var text: String
    /// `file_type:`: the llama.cpp preset whose `general.file_type` is written.
    public var fileType: LlamaPreset
    /// `default:`: the type of every quantizable tensor no rule matches.
    public var defaultType: GGMLType
    public var defaultLine: Int
    /// `requires_imatrix:`: types that need importance data (token_embd/output excepted).
    public var requiresImatrix: Set<GGMLType>
    /// `fallbacks:`: type → type used when a row length is not a multiple of the block size.
    public var fallbacks: [GGMLType: GGMLType]
    /// `keep:`: name regexes of tensors never quantized (besides llama.cpp's built-in list).
    public var keep: [RecipePattern]
    /// `rules:`, in order; the first matching rule wins.
    public var rules: [RecipeRule]
    /// `format:`: "gguf" (ggml types, the default) or "compressed-tensors" (llm-compressor schemes per
    /// linear module: `default:` and each rule's `scheme:` name a preset such as W4A16, or `keep`).
    public var format: String = "gguf"
    /// `default:` of a compressed-tensors recipe: a scheme preset name, or "keep".
    public var defaultScheme: String? = nil

    /// True for a recipe that chooses compressed-tensors schemes instead of ggml types.
    public var isCompressedTensors: Bool { format == "compressed-tensors" }

    /// The types llama.cpp requires an imatrix for (`tensor_requires_imatrix`).
    public static let defaultRequiresImatrix: Set<GGMLType> = [.iq3_xxs, .iq2_xxs, .iq2_xs, .iq2_s, .iq1_m, .iq1_s]

    /// True when this is one of the built-in llama.cpp presets, unchanged (its output must
    /// equal llama-quantize's, so no provenance metadata is written for it).
    public var isBuiltinPreset: Bool {
        guard let b = BuiltinRecipes.text(named: name) else { return false }
        return b == text && LlamaPreset(rawValue: name) != nil
    }
}

/// A compiled name regex with its line.
public struct RecipePattern: @unchecked Sendable {
    public var pattern: String
    public var regex: NSRegularExpression
    public var line: Int
    func matches(_ s: String) -> Bool {
        regex.firstMatch(in: s, range: NSRange(location: 0, length: (s as NSString).length)) != nil
    }

    /// Longest pattern accepted.
    public static let maxLength = 512

    /// Compiles a tensor-name pattern, refusing what can backtrack catastrophically (ICU's
    /// matcher has no time limit): a repeated group (`*`, `+`, `{n,}`) that itself repeats or
    /// alternates, as in `(a+)+` or `(a|aa)*`, and backreferences. Tensor names are short
    /// (GGUF names at most `GGUF.maxNameLength` bytes), so what remains matches quickly.
    public static func compile(_ p: String) throws -> NSRegularExpression {
        guard p.utf8.count <= maxLength else { throw SmeltError("regular expression longer than \(maxLength) bytes") }
        let c = Array(p.unicodeScalars)
        var stack: [Bool] = []   // per open group: contains a repetition or an alternation
        var i = 0
        func isRepeat(_ k: Int) -> Bool {
            guard k < c.count else { return false }
            if c[k] == "*" || c[k] == "+" { return true }
            if c[k] == "{" {   // {n} repeats a fixed number of times: only {n,} and {n,m} with m > 1 vary
                var j = k + 1, text = ""
                while j < c.count, c[j] != "}" { text.unicodeScalars.append(c[j]); j += 1 }
                let parts = text.split(separator: ",", omittingEmptySubsequences: false)
                return parts.count == 2 && (parts[1].isEmpty || (Int(parts[1]) ?? 2) > 1)
            }
            return false
        }
        while i < c.count {
            let ch = c[i]
            if ch == "\\" {
                if i + 1 < c.count, ("1"..."9").contains(c[i + 1]) { throw SmeltError("backreferences are not supported in regular expressions") }
                i += 2; continue
            }
            if ch == "[" {   // character class: skip to its end
                i += 1
                if i < c.count, c[i] == "^" { i += 1 }
                if i < c.count, c[i] == "]" { i += 1 }
                while i < c.count, c[i] != "]" { i += c[i] == "\\" ? 2 : 1 }
                i += 1
                if isRepeat(i), !stack.isEmpty { stack[stack.count - 1] = true }
                continue
            }
            if ch == "(" { stack.append(false); i += 1; continue }
            if ch == ")" {
                let inner = stack.popLast() ?? false
                if isRepeat(i + 1) {
                    if inner { throw SmeltError("regular expression '\(p)' repeats a group that itself repeats or alternates (catastrophic backtracking)") }
                    if !stack.isEmpty { stack[stack.count - 1] = true }
                } else if inner, !stack.isEmpty {
                    stack[stack.count - 1] = true
                }
                i += 1; continue
            }
            if ch == "|", !stack.isEmpty { stack[stack.count - 1] = true }
            if isRepeat(i + 1), !stack.isEmpty { stack[stack.count - 1] = true }
            i += 1
        }
        return try NSRegularExpression(pattern: p)
    }
}

/// One rule: matchers (all must hold) and the type they give.
public struct RecipeRule: Sendable {
    public var line: Int
    /// `role:` (nil: any role).
    public var roles: Set<String>?
    /// `name:` regex, searched anywhere in the GGUF name.
    public var name: RecipePattern?
    /// `layers:` text and parsed items.
    public var layersText: String?
    public var layers: [LayerItem]?
    /// `experts:` true: only expert tensors (3-D, `ne2 > 1`); false: only non-expert ones.
    public var experts: Bool?
    /// `when:` condition and its text.
    public var whenText: String?
    public var when: RecipeExpr?
    /// `type:`; nil means `keep` (the tensor is copied in its source type).
    public var type: GGMLType?
    /// `scheme:` (compressed-tensors recipes): a preset name such as W8A8, or "keep".
    public var scheme: String?
    /// `fallback:` for this rule's type.
    public var fallback: GGMLType?
    /// `why:`: a short explanation shown by `smelt plan`.
    public var why: String?
}

/// One item of a `layers:` list. Layers count as llama.cpp does (see docs/RECIPES.md):
/// `li` in `0..<n`.
public enum LayerItem: Equatable, Sendable {
    case index(Int)              // `5`, `-1` (from the end)
    case range(Int, Int)         // `2-5` (inclusive)
    case first(Int, Int)         // `first 4` (4, 1) or `first 1/8` (1, 8): li < n*a/b
    case last(Int, Int)          // `last 4` or `last 1/8`: li >= n - 4, li >= n*(b-a)/b
    case useMoreBits             // llama.cpp's use_more_bits(li, n)

    func contains(_ li: Int, _ n: Int) -> Bool {
        switch self {
        case .index(let k): return k >= 0 ? li == k : li == n + k
        case .range(let a, let b): return li >= a && li <= b
        case .first(let a, let b): return b == 1 ? li < a : li < n * a / b
        case .last(let a, let b): return b == 1 ? li >= n - a : li >= n * (b - a) / b
        case .useMoreBits: return LlamaPresets.useMoreBits(li, n)
        }
    }
}

/// Tensor roles a rule can name (llama.cpp's tensor categories, plus `logits`).
public enum RecipeRoles {
    public static let all: [String] = ["token_embd", "output", "logits", "attn_q", "attn_k", "attn_v", "attn_qkv",
                                       "attn_kv_b", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "other"]

    /// The role of a GGUF tensor name (llama.cpp's `tensor_category`).
    public static func role(of name: String) -> String {
        switch TensorCategory(name: name) {
        case .tokenEmbd: return "token_embd"
        case .output: return "output"
        case .attentionQ: return "attn_q"
        case .attentionK: return "attn_k"
        case .attentionV: return "attn_v"
        case .attentionQKV: return "attn_qkv"
        case .attentionKVB: return "attn_kv_b"
        case .attentionOutput: return "attn_output"
        case .ffnGate: return "ffn_gate"
        case .ffnUp: return "ffn_up"
        case .ffnDown: return "ffn_down"
        case .other: return "other"
        }
    }
}

extension Recipe {
    /// Reads a recipe file.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw SmeltError("\(url.path): cannot read recipe") }
        guard let text = String(data: data, encoding: .utf8) else { throw SmeltError("\(url.path): not UTF-8 text") }
        try self.init(yaml: text, source: url.path)
    }

    /// Parses a recipe; every error carries `source:line`.
    public init(yaml text: String, source: String) throws {
        func fail(_ line: Int, _ m: String) -> SmeltError { SmeltError("\(source):\(line): \(m)") }
        let root: Node?
        root = try SafeYAML.composeReportingLine(text, source: source)
        guard let root, case .mapping(let top) = root else { throw fail(1, "a recipe is a YAML mapping (name:, default:, rules: …)") }
        func line(_ n: Node) -> Int { n.mark?.line ?? 1 }
        func scalar(_ n: Node, _ what: String) throws -> String {
            guard case .scalar(let s) = n else { throw fail(line(n), "\(what) must be a single value") }
            return s.string
        }
        func type(_ n: Node, _ what: String) throws -> GGMLType {
            let s = try scalar(n, what)
            guard let t = GGMLType(name: s) else { throw fail(line(n), "unknown type '\(s)' in \(what)") }
            return t
        }
        func list(_ n: Node) -> [Node] {
            if case .sequence(let q) = n { return Array(q) }
            return [n]
        }
        func regex(_ n: Node, _ what: String) throws -> RecipePattern {
            let p = try scalar(n, what)
            do { return RecipePattern(pattern: p, regex: try RecipePattern.compile(p), line: line(n)) } catch let e as SmeltError {
                throw fail(line(n), "\(e.message) in \(what)")
            } catch {
                throw fail(line(n), "bad regular expression '\(p)' in \(what)")
            }
        }

        var name: String? = nil, desc = "", fileType: LlamaPreset? = nil, def: GGMLType? = nil, defLine = 1
        var format = "gguf", defNode: Node? = nil
        var req = Recipe.defaultRequiresImatrix, fallbacks: [GGMLType: GGMLType] = [:], keep: [RecipePattern] = []
        var rules: [RecipeRule] = []
        var seen: Set<String> = []
        for (k, v) in top {
            let key = try scalar(k, "a key")
            guard seen.insert(key).inserted else { throw fail(line(k), "duplicate key '\(key)'") }
            switch key {
            case "name": name = try scalar(v, "name")
            case "description": desc = try scalar(v, "description")
            case "file_type":
                let s = try scalar(v, "file_type")
                guard let p = LlamaPreset(parsing: s) else { throw fail(line(v), "unknown file_type '\(s)' (a llama.cpp preset name such as Q4_K_M)") }
                fileType = p
            case "default": defNode = v; defLine = line(v)
            case "format":
                format = try scalar(v, "format")
                guard format == "gguf" || format == "compressed-tensors" else {
                    throw fail(line(v), "unknown format '\(format)' (gguf or compressed-tensors)")
                }
            case "requires_imatrix": req = Set(try list(v).map { try type($0, "requires_imatrix") })
            case "fallbacks":
                guard case .mapping(let m) = v else { throw fail(line(v), "fallbacks must map a type to a type (q4_K: q5_0)") }
                for (a, b) in m { fallbacks[try type(a, "fallbacks")] = try type(b, "fallbacks") }
            case "keep": keep = try list(v).map { try regex($0, "keep") }
            case "rules":
                guard case .sequence(let seq) = v else { throw fail(line(v), "rules must be a list") }
                for r in seq { rules.append(try Self.parseRule(r, fail: fail, scalar: scalar, type: type, regex: regex, list: list)) }
            default:
                throw fail(line(k), "unknown key '\(key)' (known: name, description, format, file_type, default, requires_imatrix, fallbacks, keep, rules)")
            }
        }
        guard let name else { throw fail(1, "missing 'name:'") }
        var defaultScheme: String? = nil
        if format == "compressed-tensors" {
            guard let defNode else { throw fail(1, "missing 'default:' (the scheme of linear modules no rule matches, or keep)") }
            let d = try scalar(defNode, "default")
            guard Self.isSchemeName(d) else { throw fail(defLine, Self.unknownScheme(d, "default")) }
            defaultScheme = d.lowercased() == "keep" ? "keep" : d.uppercased()
            def = .f16   // unused: compressed-tensors recipes choose schemes
            for r in rules {
                guard let sc = r.scheme else { throw fail(r.line, "a compressed-tensors recipe rule needs 'scheme:' (not 'type:')") }
                guard r.type == nil, Self.isSchemeName(sc) else { throw fail(r.line, Self.unknownScheme(sc, "scheme")) }
            }
        } else if let defNode {
            def = try type(defNode, "default")
            if let r = rules.first(where: { $0.scheme != nil }) { throw fail(r.line, "'scheme:' needs 'format: compressed-tensors'") }
        }
        guard let def else { throw fail(1, "missing 'default:' (the type of tensors no rule matches)") }
        let ft = fileType ?? LlamaPreset.allCases.first(where: { $0.defaultType == def }) ?? .F16
        self.init(name: name, description: desc, source: source, text: text, fileType: ft, defaultType: def,
                  defaultLine: defLine, requiresImatrix: req, fallbacks: fallbacks, keep: keep, rules: rules,
                  format: format, defaultScheme: defaultScheme)
        try checkReachability(fail: fail)
    }

    static func isSchemeName(_ s: String) -> Bool { s.lowercased() == "keep" || CTSchemePreset(name: s) != nil }
    static func unknownScheme(_ s: String, _ what: String) -> String {
        Suggestions.unknown(what, s, among: CTSchemePreset.allCases.map(\.rawValue) + ["keep"])
    }

    static func parseRule(_ r: Node, fail: (Int, String) -> SmeltError, scalar: (Node, String) throws -> String,
                          type: (Node, String) throws -> GGMLType, regex: (Node, String) throws -> RecipePattern,
                          list: (Node) -> [Node]) throws -> RecipeRule {
        let ln = r.mark?.line ?? 1
        guard case .mapping(let m) = r else { throw fail(ln, "a rule is a mapping (role:, name:, layers:, when:, type:)") }
        var rule = RecipeRule(line: ln)
        var hasType = false
        var seen: Set<String> = []
        for (k, v) in m {
            let key = try scalar(k, "a key")
            let kl = k.mark?.line ?? ln
            guard seen.insert(key).inserted else { throw fail(kl, "duplicate key '\(key)'") }
            switch key {
            case "role":
                var roles: Set<String> = []
                for n in list(v) {
                    let s = try scalar(n, "role")
                    guard RecipeRoles.all.contains(s) else {
                        throw fail(n.mark?.line ?? kl, Suggestions.unknown("role", s, among: RecipeRoles.all))
                    }
                    roles.insert(s)
                }
                rule.roles = roles
            case "name": rule.name = try regex(v, "name")
            case "layers":
                let items = try list(v).map { try scalar($0, "layers") }
                let text = items.joined(separator: ", ")
                rule.layersText = text
                do { rule.layers = try parseLayers(text) } catch let e as SmeltError { throw fail(v.mark?.line ?? kl, e.message) }
            case "experts":
                let s = try scalar(v, "experts")
                guard let b = Bool(s) else { throw fail(kl, "experts must be true or false") }
                rule.experts = b
            case "when":
                let s = try scalar(v, "when")
                rule.whenText = s
                do { rule.when = try RecipeExpr.parse(s) } catch let e as SmeltError {
                    throw fail(v.mark?.line ?? kl, "bad condition: \(e.message)")
                }
            case "type":
                hasType = true
                let s = try scalar(v, "type")
                if s.lowercased() == "keep" { rule.type = nil } else {
                    guard let t = GGMLType(name: s) else { throw fail(v.mark?.line ?? kl, "unknown type '\(s)'") }
                    rule.type = t
                }
            case "fallback": rule.fallback = try type(v, "fallback")
            case "scheme":
                hasType = true
                let sc = try scalar(v, "scheme")
                rule.scheme = sc.lowercased() == "keep" ? "keep" : sc.uppercased()
            case "why": rule.why = try scalar(v, "why")
            default:
                let known = ["role", "name", "layers", "experts", "when", "type", "scheme", "fallback", "why"]
                let hint = Suggestions.closest(to: key, among: known).map { "; did you mean '\($0)'?" } ?? ""
                throw fail(kl, "unknown key '\(key)' in rule\(hint) (known: \(known.joined(separator: ", ")))")
            }
        }
        guard hasType else { throw fail(ln, "rule without 'type:' (or 'scheme:')") }
        return rule
    }

    /// Parses a `layers:` text: comma-separated `5`, `-1`, `2-5`, `first 4`, `last 4`,
    /// `first 1/8`, `last 1/8`, `use_more_bits`.
    static func parseLayers(_ text: String) throws -> [LayerItem] {
        var out: [LayerItem] = []
        for raw in text.split(separator: ",") {
            let item = raw.trimmingCharacters(in: .whitespaces)
            let words = item.split(separator: " ").map(String.init)
            func frac(_ s: String) throws -> (Int, Int) {
                let parts = s.split(separator: "/")
                if parts.count == 1, let a = Int(parts[0]), a >= 0, a <= 1 << 20 { return (a, 1) }
                if parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 0, b > 0, a <= b, b <= 1 << 20 { return (a, b) }
                throw SmeltError("bad layer count '\(s)' in layers '\(item)' (a number or a fraction such as 1/8)")
            }
            if item == "use_more_bits" { out.append(.useMoreBits) }
            else if words.count == 2, words[0] == "first" {
                let (a, b) = try frac(words[1])
                guard a > 0 else { throw SmeltError("layers '\(item)' can never match") }
                out.append(.first(a, b))
            } else if words.count == 2, words[0] == "last" {
                let (a, b) = try frac(words[1])
                guard a > 0 else { throw SmeltError("layers '\(item)' can never match") }
                out.append(.last(a, b))
            } else if let k = Int(item) { out.append(.index(k)) }
            else if let dash = item.dropFirst().firstIndex(of: "-"),
                    let a = Int(item[..<dash].trimmingCharacters(in: .whitespaces)),
                    let b = Int(item[item.index(after: dash)...].trimmingCharacters(in: .whitespaces)) {
                guard a >= 0, b >= a else { throw SmeltError("layer range '\(item)' is empty: it can never match") }
                out.append(.range(a, b))
            } else {
                throw SmeltError("bad layers item '\(item)' (expected N, -N, A-B, first N, last N, first 1/8, last 1/8, use_more_bits)")
            }
        }
        guard !out.isEmpty else { throw SmeltError("empty layers list: the rule can never match") }
        return out
    }

    /// Rules that can never match are errors: a constant-false condition, or a rule
    /// every tensor of which an earlier unconditional rule already takes.
    func checkReachability(fail: (Int, String) -> SmeltError) throws {
        for (k, r) in rules.enumerated() {
            if let w = r.when, w.isConstant, (try? w.evaluate({ _ in .int(0) })) == .bool(false) {
                throw fail(r.line, "condition '\(r.whenText ?? "")' is always false: the rule can never match")
            }
            if let roles = r.roles, r.experts == true, roles.isSubset(of: ["token_embd", "output", "logits"]) {
                throw fail(r.line, "embeddings and output are never expert tensors: the rule can never match")
            }
            for e in rules[..<k] where e.name == nil && e.layers == nil && e.experts == nil {
                if let w = e.when, !(w.isConstant && (try? w.evaluate({ _ in .int(0) })) == .bool(true)) { continue }
                let covers: Bool
                switch (e.roles, r.roles) {
                case (nil, _): covers = true
                case (.some, nil): covers = false
                case (.some(let er), .some(let rr)):
                    var eff = er
                    if er.contains("logits") { eff.insert("output") }
                    covers = rr.isSubset(of: eff)
                }
                if covers {
                    throw fail(r.line, "the rule can never match: the rule at line \(e.line) already takes every tensor it could match")
                }
            }
        }
    }
}

extension BuiltinRecipes {
    /// The text of built-in recipe `name` (case-insensitive; `Q4_K` etc. as llama-quantize's aliases).
    public static func text(named name: String) -> String? {
        if let t = texts[name] { return t }
        if let p = LlamaPreset(parsing: name), let t = texts[p.rawValue] { return t }
        return texts.first(where: { $0.key.lowercased() == name.lowercased() })?.value
    }

    /// The parsed built-in recipe `name` (source `builtin:NAME.yaml`).
    public static func recipe(named name: String) throws -> Recipe? {
        guard let t = text(named: name) else { return nil }
        let key = texts.first(where: { $0.value == t })?.key ?? name
        return try Recipe(yaml: t, source: "builtin:\(key).yaml")
    }

    /// A recipe argument: a built-in name, else a file path.
    public static func load(_ nameOrPath: String) throws -> Recipe {
        if FileManager.default.fileExists(atPath: nameOrPath) {
            guard let d = FileManager.default.contents(atPath: nameOrPath), let text = String(data: d, encoding: .utf8) else {
                throw SmeltError("\(nameOrPath): cannot read recipe (not UTF-8 text?)")
            }
            return try Recipe(yaml: text, source: nameOrPath)
        }
        if let r = try recipe(named: nameOrPath) { return r }
        let hint = Suggestions.closest(to: nameOrPath, among: Array(texts.keys)).map { "; did you mean '\($0)'?" } ?? ""
        throw SmeltError("\(nameOrPath): no such recipe file or built-in recipe\(hint) (built-in: \(texts.keys.sorted().joined(separator: ", ")))")
    }
}

/// The provenance metadata written into a quantized GGUF (docs/RECIPES.md, "Provenance").
public enum RecipeProvenance {
    public static let nameKey = "smelt.recipe.name"
    public static let sourceKey = "smelt.recipe.source"
    public static let textKey = "smelt.recipe.text"
    public static let versionKey = "smelt.version"

    /// The keys for `recipe`: its name, where it came from, its full text and Smelt's version.
    public static func metadata(_ recipe: Recipe) -> [(String, GGUFValue)] {
        [(versionKey, .string(SmeltVersion.string)),
         (nameKey, .string(recipe.name)),
         (sourceKey, .string(recipe.source)),
         (textKey, .string(recipe.text))]
    }
}
