import Foundation
import SmeltFormats
import Yams

/// Authorship metadata of a model (`general.*` keys), gathered as llama.cpp's
/// gguf-py `Metadata.load` does: README.md front matter, config.json's
/// `_name_or_path`, the folder name, and generation_config.json sampling values.
public struct ModelCard: Sendable, Equatable {
    public var name: String?, author: String?, version: String?, organization: String?
    public var finetune: String?, basename: String?, description: String?, quantizedBy: String?
    public var sizeLabel: String?
    public var url: String?, doi: String?, uuid: String?, repoURL: String?
    public var sourceURL: String?, sourceDOI: String?, sourceUUID: String?, sourceRepoURL: String?
    public var license: String?, licenseName: String?, licenseLink: String?
    /// Base models (merges have several): name, organization, version, repo_url …
    public var baseModels: [[String: String]]?
    public var datasets: [[String: String]]?
    public var tags: [String]?
    public var languages: [String]?
    /// Sampling defaults from generation_config.json (`general.sampling.*`), in gguf-py's order.
    public var sampling: [(String, GGUFValue)] = []

    public static func == (a: ModelCard, b: ModelCard) -> Bool {
        a.name == b.name && a.author == b.author && a.license == b.license && a.baseModels == b.baseModels
            && a.tags == b.tags && a.languages == b.languages && a.sizeLabel == b.sizeLabel && a.basename == b.basename
            && a.finetune == b.finetune && a.organization == b.organization && a.version == b.version
    }

    public init() {}

    /// The README.md front matter of `folder` as YAML values (empty when absent or not valid YAML),
    /// read as gguf-py does; front matter past `SafeYAML`'s limits (alias bombs, deep nesting) is an error.
    public static func frontMatter(folder: URL) throws -> [String: Any] {
        let url = folder.appendingPathComponent("README.md")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [:] }
        let lines = text.components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        guard let first = lines.first, first == "---" else { return [:] }
        var yaml: [String] = []
        for line in lines.dropFirst() {
            if line == "---" { break }
            yaml.append(line)
        }
        var content = yaml.joined(separator: "\n") + "\n"
        content = content.replacingOccurrences(of: "- no\n", with: "- \"no\"\n")  // the "Norway problem"
        content = content.replacingOccurrences(of: "\t", with: "  ")
        do { _ = try SafeYAML.compose(content, source: url.path) } catch let e as SmeltError { throw e } catch { return [:] }
        guard let data = try? Yams.load(yaml: content) as? [String: Any] else { return [:] }
        return data
    }

    /// Loads the card of a checkpoint folder. `totalParams` (the converted
    /// tensors' element count) decides size labels as gguf-py does.
    public static func load(folder: URL, config: JSONValue?, totalParams: Int, nameOverride: String? = nil) throws -> ModelCard {
        var m = ModelCard()
        let card = try frontMatter(folder: folder)
        func str(_ v: Any?) -> String? {
            switch v {
            case let s as String: return s
            case let i as Int: return String(i)
            case let d as Double: return String(d)
            case let b as Bool: return b ? "True" : "False"
            default: return nil
            }
        }
        func use(_ kp: WritableKeyPath<ModelCard, String?>, _ key: String) {
            if let v = card[key], m[keyPath: kp] == nil { m[keyPath: kp] = str(v) }
        }
        func useArray(_ kp: WritableKeyPath<ModelCard, [String]?>, _ key: String) {
            guard let v = card[key] else { return }
            var cur = m[keyPath: kp] ?? []
            if let s = v as? String { cur.append(s) } else if let a = v as? [Any] { cur += a.compactMap { str($0) } } else { return }
            m[keyPath: kp] = cur
        }
        if !card.isEmpty {
            use(\.name, "name"); use(\.author, "author"); use(\.version, "version"); use(\.organization, "organization")
            use(\.description, "description"); use(\.finetune, "finetune"); use(\.basename, "basename")
            use(\.sizeLabel, "size_label"); use(\.sourceURL, "url"); use(\.sourceDOI, "doi"); use(\.sourceUUID, "uuid")
            use(\.sourceRepoURL, "repo_url")
            use(\.name, "model_name"); use(\.author, "model_author"); use(\.version, "model_version")
            use(\.organization, "model_organization"); use(\.description, "model_description")
            use(\.finetune, "model_finetune"); use(\.basename, "model_basename"); use(\.sizeLabel, "model_size_label")
            use(\.sourceURL, "model_url"); use(\.sourceDOI, "model_doi"); use(\.sourceUUID, "model_uuid")
            use(\.sourceRepoURL, "model_repo_url")
            use(\.name, "model_name"); use(\.author, "model_creator"); use(\.basename, "model_type")
            if let v = card["base_model"] ?? card["base_models"] ?? card["base_model_sources"] {
                m.baseModels = (m.baseModels ?? []) + references(v, totalParams: totalParams)
            } else if card.keys.contains("base_model") || card.keys.contains("base_models") || card.keys.contains("base_model_sources") {
                m.baseModels = m.baseModels ?? []
            }
            if let v = card["datasets"] ?? card["dataset"] ?? card["dataset_sources"] {
                m.datasets = (m.datasets ?? []) + references(v, totalParams: totalParams)
            } else if card.keys.contains("datasets") || card.keys.contains("dataset") || card.keys.contains("dataset_sources") {
                m.datasets = m.datasets ?? []
            }
            if let l = card["license"] {
                if m.license == nil {
                    if let a = l as? [Any] { m.license = a.compactMap { str($0) }.joined(separator: ",") } else { m.license = str(l) }
                }
            }
            use(\.licenseName, "license_name"); use(\.licenseLink, "license_link")
            useArray(\.tags, "tags"); useArray(\.tags, "pipeline_tag")
            useArray(\.languages, "languages"); useArray(\.languages, "language")
        }
        func applyID(_ id: String) {
            let c = idComponents(id, totalParams: totalParams)
            if m.name == nil, let n = c.name { m.name = idToTitle(n) }
            if m.organization == nil, let o = c.org { m.organization = idToTitle(o) }
            if m.basename == nil { m.basename = c.basename }
            if m.finetune == nil { m.finetune = c.finetune }
            if m.version == nil { m.version = c.version }
            if m.sizeLabel == nil { m.sizeLabel = c.sizeLabel }
        }
        if let p = config?["_name_or_path"]?.stringValue, p.filter({ $0 == "/" }).count <= 1 { applyID(p) }
        applyID(folder.standardizedFileURL.lastPathComponent)

        // generation_config.json sampling defaults
        if let gen = try? JSONValue.parse(contentsOf: folder.appendingPathComponent("generation_config.json")) {
            let keys: [(String, String, GGUFValueType)] = [
                ("sequence", "sequence", .string), ("top_k", "top_k", .int32), ("top_p", "top_p", .float32),
                ("min_p", "min_p", .float32), ("xtc_probability", "xtc_probability", .float32),
                ("xtc_threshold", "xtc_threshold", .float32), ("temperature", "temp", .float32),
                ("penalty_last_n", "penalty_last_n", .int32), ("penalty_repeat", "penalty_repeat", .float32),
                ("mirostat", "mirostat", .int32), ("mirostat_tau", "mirostat_tau", .float32), ("mirostat_eta", "mirostat_eta", .float32),
            ]
            for (src, dst, t) in keys {
                guard let v = gen[src], !v.isNull else { continue }
                switch t {
                case .string: if let s = v.stringValue { m.sampling.append(("general.sampling.\(dst)", .string(s))) }
                case .int32: if let i = v.intValue { m.sampling.append(("general.sampling.\(dst)", .int32(Int32(truncatingIfNeeded: i)))) }
                default: if let d = v.doubleValue { m.sampling.append(("general.sampling.\(dst)", .float32(Float(d)))) }
                }
            }
        }
        if let n = nameOverride { m.name = n }
        return m
    }

    static func references(_ v: Any, totalParams: Int) -> [[String: String]] {
        var ids: [Any] = []
        if let s = v as? String { ids = [s] } else if let a = v as? [Any] { ids = a }
        return ids.compactMap { id -> [String: String]? in
            if let d = id as? [String: Any] { return d.compactMapValues { $0 as? String ?? ($0 as? CustomStringConvertible)?.description } }
            guard let s = id as? String else { return nil }
            var e: [String: String] = [:]
            if s.hasPrefix("http://") || s.hasPrefix("https://") || s.hasPrefix("ssh://") {
                e["repo_url"] = s
                if s.contains("huggingface.co"), let m = firstMatch(#"^https?://huggingface.co/([^/]+/[^/]+)$"#, s) {
                    let c = idComponents(m, totalParams: totalParams)
                    if let n = c.name { e["name"] = idToTitle(n) }
                    if let o = c.org { e["organization"] = idToTitle(o) }
                    if let v = c.version { e["version"] = v }
                }
            } else {
                let c = idComponents(s, totalParams: totalParams)
                if let n = c.name { e["name"] = idToTitle(n) }
                if let o = c.org { e["organization"] = idToTitle(o) }
                if let v = c.version { e["version"] = v }
                if let o = c.org, let n = c.name { e["repo_url"] = "https://huggingface.co/\(o)/\(n)" }
            }
            return e
        }
    }

    /// The `general.*` keys in gguf-py's `set_gguf_meta_model` order.
    public func ggufKeys() -> [(String, GGUFValue)] {
        var out: [(String, GGUFValue)] = sampling
        func add(_ k: String, _ v: String?) { if let v { out.append((k, .string(v))) } }
        add("general.name", name ?? "")
        add("general.author", author); add("general.version", version); add("general.organization", organization)
        add("general.finetune", finetune); add("general.basename", basename)
        add("general.description", description); add("general.quantized_by", quantizedBy)
        add("general.size_label", sizeLabel)
        add("general.license", license); add("general.license.name", licenseName); add("general.license.link", licenseLink)
        add("general.url", url); add("general.doi", doi); add("general.uuid", uuid); add("general.repo_url", repoURL)
        add("general.source.url", sourceURL); add("general.source.doi", sourceDOI)
        add("general.source.uuid", sourceUUID); add("general.source.repo_url", sourceRepoURL)
        for (prefix, list) in [("general.base_model", baseModels), ("general.dataset", datasets)] {
            guard let list else { continue }
            out.append(("\(prefix).count", .uint32(UInt32(list.count))))
            for (i, e) in list.enumerated() {
                for f in ["name", "author", "version", "organization", "description", "url", "doi", "uuid", "repo_url"] {
                    if let v = e[f] { out.append(("\(prefix).\(i).\(f)", .string(v))) }
                }
            }
        }
        if let tags { out.append(("general.tags", .strings(tags))) }
        if let languages { out.append(("general.languages", .strings(languages))) }
        return out
    }

    // MARK: gguf-py heuristics

    /// Python's `str.title()`.
    static func pyTitle(_ s: String) -> String {
        var out = ""
        var prevCased = false
        for ch in s {
            let cased = ch.isLetter && (ch.isUppercase || ch.isLowercase)
            if cased { out += prevCased ? ch.lowercased() : ch.uppercased() } else { out.append(ch) }
            prevCased = cased
        }
        return out
    }
    static func pyIsLower(_ s: String) -> Bool {
        var hasCased = false
        for ch in s where ch.isLetter && (ch.isUppercase || ch.isLowercase) {
            if ch.isUppercase { return false }
            hasCased = true
        }
        return hasCased
    }

    /// gguf-py `Metadata.id_to_title`.
    public static func idToTitle(_ s: String) -> String {
        s.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "-", with: " ")
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
            .map { w in pyIsLower(w) && !fullMatch(#"(v\d+(?:\.\d+)*|\d.*)"#, w, prefixOnly: true) ? pyTitle(w) : w }
            .joined(separator: " ")
    }

    static func fullMatch(_ pattern: String, _ s: String, ignoreCase: Bool = false, prefixOnly: Bool = false) -> Bool {
        let p = prefixOnly ? "^(?:\(pattern))" : "^(?:\(pattern))$"
        guard let re = try? NSRegularExpression(pattern: p, options: ignoreCase ? [.caseInsensitive] : []) else { return false }
        return re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }
    static func firstMatch(_ pattern: String, _ s: String) -> String? {
        guard let re = try? NSRegularExpression(pattern: pattern),
              let m = re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)), m.numberOfRanges > 1,
              let r = Range(m.range(at: 1), in: s) else { return nil }
        return String(s[r])
    }

    /// gguf-py `Metadata.get_model_id_components`.
    public static func idComponents(_ id: String, totalParams: Int)
        -> (name: String?, org: String?, basename: String?, finetune: String?, version: String?, sizeLabel: String?) {
        if id.contains(" ") { return (id, nil, nil, nil, nil, nil) }
        var org: String?
        var full: String
        if let slash = id.firstIndex(of: "/") { org = String(id[..<slash]); full = String(id[id.index(after: slash)...]) } else { full = id }
        if let o = org, o.first == "." { org = nil }
        var parts = full.components(separatedBy: "-").filter { !$0.isEmpty }
        var types = [Set<String>](repeating: [], count: parts.count)
        for (i, part0) in parts.enumerated() {
            var part = part0
            if fullMatch(#"(v|iter)?\d+([.]\d+)*"#, part, ignoreCase: true) {
                types[i].insert("version")
            } else if fullMatch(#"i?q\d(_\w)*|b?fp?(16|32)"#, part, ignoreCase: true) {
                types[i].insert("type"); parts[i] = part.uppercased()
            } else if i > 0 && fullMatch(#"(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)"#, part, ignoreCase: true) {
                part = part.replacingOccurrences(of: "_", with: ".")
                var chars = Array(part)
                if let last = chars.last, last.isNumber, chars.count >= 2 {
                    chars = Array(chars.dropLast(2)) + ["."] + [chars[chars.count - 1], chars[chars.count - 2]]
                    part = String(chars)
                }
                chars = Array(part)
                if chars.count > 1, chars[chars.count - 2].isNumber, "kmbt".contains(chars.last!) {
                    part = String(chars.dropLast()) + chars.last!.uppercased()
                }
                if totalParams != 0, let num = Double(String(part.dropLast())) {
                    let idx = " KMBT".firstIndex(of: part.last!).map { " KMBT".distance(from: " KMBT".startIndex, to: $0) } ?? -1
                    let label = num * pow(1000, Double(idx))
                    if (totalParams < 0 && label < Double(abs(totalParams) / 8))
                        || (totalParams > 0 && abs(label - Double(totalParams)) > Double(7 * totalParams / 8)) {
                        types[i].insert("finetune")
                        part = String(part.dropLast()) + part.last!.lowercased()
                    }
                }
                if types[i].isEmpty { types[i].insert("size_label") }
                parts[i] = part
            } else if i > 0 && fullMatch("chat|instruct|vision|lora", part, ignoreCase: true) {
                if totalParams < 0 && part.lowercased() == "lora" { types[i].insert("type") } else { types[i].insert("finetune") }
            }
        }
        if zip(parts, types).contains(where: { $0.1.contains("size_label") && $0.0.contains(where: \.isNumber) }) {
            for i in parts.indices where types[i].contains("size_label") && parts[i].allSatisfy(\.isLetter) {
                types[i].remove("size_label")
            }
        }
        var atStart = true
        for i in parts.indices {
            if atStart && ((types[i].isEmpty && parts[i].first!.isLetter) || types[i].contains("version")) {
                types[i].insert("basename")
            } else {
                atStart = false
                if types[i].isEmpty { types[i].insert("finetune") }
            }
        }
        for i in parts.indices.reversed() {
            if types[i].contains("basename") && types[i].count > 1 { types[i].remove("basename") } else { break }
        }
        func join(_ f: (Set<String>) -> Bool, dedupe: Bool = false) -> String? {
            var sel = zip(parts, types).filter { f($0.1) }.map(\.0)
            if dedupe { var seen = Set<String>(); sel = sel.filter { seen.insert($0).inserted } }
            return sel.isEmpty ? nil : sel.joined(separator: "-")
        }
        var basename = join { $0.contains("basename") }
        let size = join({ $0.contains("size_label") }, dedupe: true)
        let finetune = join { $0.contains("finetune") }
        let version = join { $0.contains("version") && !$0.contains("basename") }
        if size == nil && finetune == nil && version == nil { basename = nil }
        return (full, org, basename, finetune, version, size)
    }

    /// gguf-py `size_label` / `model_weight_count_rounded_notation` (dense models).
    public static func sizeLabel(totalParams: Int) -> String {
        let n = Double(abs(totalParams))
        let (scaled, suffix): (Double, String) = n > 1e12 ? (n * 1e-12, "T") : n > 1e9 ? (n * 1e-9, "B") : n > 1e6 ? (n * 1e-6, "M") : (n * 1e-3, "K")
        let rounded = String(Int(scaled.rounded(.toNearestOrEven)))
        let digits = rounded.drop { $0 == "0" }.count
        let fix = max(2 - digits, 0)
        return String(format: "%.\(fix)f", scaled) + suffix
    }
}
