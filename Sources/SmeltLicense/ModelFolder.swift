import Foundation
import SmeltFormats
import SmeltModel
import Yams

/// One piece of evidence about a model's license: what was written, where, and what it maps to.
public struct LicenseEvidence: Codable, Sendable, Equatable {
    /// The text as found (`apache-2.0`, `other / mrl`, `LICENSE: recognised text`).
    public var declared: String
    /// The knowledge-base id it maps to, nil when not recognised.
    public var licenseID: String?
    /// Where it was found (`README.md front matter`, `LICENSE (text recognised)`, ...).
    public var source: String
}

/// A declared parent of a model.
public struct ParentReference: Codable, Sendable, Equatable {
    /// Repo id or local path, as written (normalised: no URL prefix, no `@revision`).
    public var id: String
    /// Where it was declared (`README.md base_model`, `mergekit_config.yml`, ...).
    public var source: String
}

/// What a model folder (or GGUF file) says about itself.
public struct ModelDescription: Sendable, Equatable {
    /// Display id: repo id when known, else the folder or file name.
    public var id: String
    /// License evidence, in priority order.
    public var evidence: [LicenseEvidence] = []
    /// Declared parents, first occurrence wins.
    public var parents: [ParentReference] = []
    /// Relation to the parents: merge, finetune, adapter, quantized (nil when not stated or inferred).
    public var relation: String?
    /// Where the relation came from.
    public var relationSource: String?
    /// Files in the folder that must travel with copies (LICENSE, NOTICE, USE_POLICY.md).
    public var noticeFiles: [String] = []
    /// Non-fatal remarks (unreadable files, ignored hints).
    public var warnings: [String] = []
    /// Parents already described here (the source model recorded in a GGUF header), used before any lookup.
    public var inlineParents: [ModelDescription] = []
    /// Where `inlineParents` were read.
    public var inlineSource: String?

    /// Most parents one model may declare (a card's `base_model` list longer than this is an error).
    public static let maxParents = 256

    mutating func addParent(_ raw: String, source: String) {
        for id in ModelDescription.splitParents(raw) where parents.count < 4 * ModelDescription.maxParents
            && !parents.contains(where: { $0.id.lowercased() == id.lowercased() }) {
            parents.append(ParentReference(id: id, source: source))
        }
    }

    /// Normalises a parent reference: strips the hub URL prefix and `@revision`; splits mergekit's `model+lora`.
    static func splitParents(_ raw: String) -> [String] {
        var s = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        for prefix in ["https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf://", "hf.co/"]
        where s.lowercased().hasPrefix(prefix) { s = String(s.dropFirst(prefix.count)) }
        if s.hasSuffix("/") { s.removeLast() }
        let parts = s.contains("+") && !s.hasPrefix("/") ? s.split(separator: "+").map(String.init) : [s]
        return parts.map { p in
            var p = p
            if !p.hasPrefix("/") && !p.hasPrefix("."), let at = p.firstIndex(of: "@") { p = String(p[..<at]) }
            return p
        }.filter { !$0.isEmpty }
    }
}

/// Reads model cards, license files, mergekit / adapter / HF configs and GGUF headers.
public enum ModelFolderReader {
    /// License-like files looked at, in this order (matched case-insensitively).
    static let licenseFileNames = ["LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "LICENCE.md", "LICENSE-MODEL",
                                   "NOTICE", "NOTICE.md", "NOTICE.txt", "Notice", "USE_POLICY.md", "USE_POLICY.txt"]

    /// Describes a model folder or a `.gguf` file. `id` overrides the display id (repo id from a cards folder).
    public static func describe(_ url: URL, id: String? = nil, kb: KnowledgeBase) throws -> ModelDescription {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SmeltError("\(url.path): no such file or folder")
        }
        if !isDir.boolValue {
            if url.pathExtension.lowercased() == "gguf" { return try describeGGUFFile(url, id: id, kb: kb) }
            if url.lastPathComponent.lowercased().hasSuffix(".md") {
                var d = ModelDescription(id: id ?? url.deletingPathExtension().lastPathComponent)
                try readCard(url, into: &d, kb: kb, folder: url.deletingLastPathComponent(), label: url.lastPathComponent)
                return d
            }
            throw SmeltError("\(url.path): expected a model folder, a model card (.md) or a .gguf file")
        }
        var d = ModelDescription(id: id ?? url.standardizedFileURL.lastPathComponent)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        func find(_ n: String) -> URL? {
            names.first { $0.lowercased() == n.lowercased() }.map { url.appendingPathComponent($0) }
        }

        if let readme = find("README.md") {
            try readCard(readme, into: &d, kb: kb, folder: url, label: readme.lastPathComponent)
        }
        readLicenseFiles(names: names, folder: url, into: &d, kb: kb)

        for cfgName in ["mergekit_config.yml", "mergekit_config.yaml", "mergekit_moe_config.yml"] {
            if let cfg = find(cfgName) { try readMergekit(cfg, into: &d) }
        }
        if let adapter = find("adapter_config.json") {
            // A broken config hides the base model: bad input, not something to skip.
            let j = try JSONValue.parse(contentsOf: adapter)
            if let base = j["base_model_name_or_path"]?.stringValue, !base.isEmpty {
                d.addParent(base, source: "adapter_config.json base_model_name_or_path")
            } else {
                d.warnings.append("adapter_config.json names no base_model_name_or_path")
            }
            if d.relation == nil { d.relation = "adapter"; d.relationSource = "adapter_config.json" }
        }
        if d.parents.isEmpty, let config = find("config.json") {
            if let j = try? JSONValue.parse(contentsOf: config), let n = j["_name_or_path"]?.stringValue,
               looksLikeRepoID(n), n.lowercased() != d.id.lowercased() {
                d.addParent(n, source: "config.json _name_or_path")
                d.relation = "derived"; d.relationSource = "config.json _name_or_path (the model it was saved from)"
            }
        }
        let ggufs = names.filter { $0.lowercased().hasSuffix(".gguf") }.sorted()
        // GGUF files and no declared parent: the files are quantized copies of the source model in their header.
        if let g = ggufs.first, d.parents.isEmpty {
            do {
                var file = try describeGGUFFile(url.appendingPathComponent(g), id: nil, kb: kb)
                if file.inlineParents.first?.id.lowercased() == d.id.lowercased() {  // same name as the folder: not a cycle
                    let renamed = "\(d.id) (GGUF source)"
                    file.inlineParents[0].id = renamed
                    file.parents[0].id = renamed
                }
                d.parents = file.parents
                d.inlineParents = file.inlineParents
                d.inlineSource = file.inlineSource
                d.relation = "quantized"; d.relationSource = "\(g) (GGUF file)"
            } catch { d.warnings.append("\(g): \(error)") }
        }
        if d.relation == nil, !ggufs.isEmpty, !d.parents.isEmpty {
            d.relation = "quantized"; d.relationSource = "folder holds .gguf files"
        }
        if d.relation == nil, !d.parents.isEmpty {
            d.relation = "finetune"; d.relationSource = "default for a declared base model"
        }
        return d
    }

    /// A Hugging Face repo id: `owner/name`, no absolute or relative path.
    static func looksLikeRepoID(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && !s.hasPrefix(".") && !s.hasPrefix("/") && !s.hasPrefix("~")
            && parts.allSatisfy { !$0.isEmpty && !$0.contains(" ") }
    }

    // MARK: README front matter

    /// The YAML between the leading `---` lines of a model card, nil when there is none.
    static func frontMatter(_ text: String) -> String? {
        var lines = text.components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        if let f = lines.first, f.hasPrefix("\u{FEFF}") { lines[0] = String(f.dropFirst()) }
        guard lines.first?.trimmingCharacters(in: .whitespaces) == "---" else { return nil }
        guard let end = lines.dropFirst().firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "---" }) else { return nil }
        return lines[1..<end].joined(separator: "\n")
    }

    static func strings(_ v: Any?) -> [String] {
        if let s = v as? String { return [s] }
        if let a = v as? [Any] { return a.compactMap { $0 as? String } }
        return []
    }

    static func readCard(_ url: URL, into d: inout ModelDescription, kb: KnowledgeBase, folder: URL, label: String) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw SmeltError("cannot read \(url.path)") }
        let text = String(decoding: data, as: UTF8.self)
        guard let yaml = frontMatter(text) else {
            d.warnings.append("\(label) has no YAML front matter")
            return
        }
        let loaded: Any?
        do { loaded = try SafeYAML.load(yaml, source: url.path) } catch let e as SmeltError { throw e } catch {
            throw SmeltError("\(url.path): invalid YAML front matter: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        guard let fm = loaded as? [String: Any] else { return }
        let src = "\(label) front matter"

        let licenses = strings(fm["license"])
        let name = strings(fm["license_name"]).first
        let link = strings(fm["license_link"]).first
        for lic in licenses {
            let k = KnowledgeBase.key(lic)
            if k != "other" && k != "unknown" {
                d.evidence.append(LicenseEvidence(declared: lic, licenseID: kb.license(named: lic)?.id, source: "\(src) license"))
                continue
            }
            // `other`: look at license_name, then license_link (URL or local file).
            if let n = name, let l = kb.license(named: n) {
                d.evidence.append(LicenseEvidence(declared: "\(lic) / \(n)", licenseID: l.id, source: "\(src) license_name"))
            } else if let ln = link, let l = licenseFromLink(ln, folder: folder, kb: kb) {
                d.evidence.append(LicenseEvidence(declared: "\(lic) / \(ln)", licenseID: l.id, source: "\(src) license_link"))
            } else {
                let shown = [lic, name, link].compactMap { $0 }.joined(separator: " / ")
                d.evidence.append(LicenseEvidence(declared: shown, licenseID: k == "unknown" ? "unknown" : nil, source: "\(src) license"))
            }
        }
        if licenses.isEmpty, let n = name ?? link {
            let l = kb.license(named: n) ?? link.flatMap { licenseFromLink($0, folder: folder, kb: kb) }
            d.evidence.append(LicenseEvidence(declared: n, licenseID: l?.id, source: "\(src) license_name"))
        }
        let bases = strings(fm["base_model"])
        guard bases.count <= ModelDescription.maxParents else {
            throw SmeltError("\(url.path): \(bases.count) base_model entries (at most \(ModelDescription.maxParents))")
        }
        for b in bases { d.addParent(b, source: "\(src) base_model") }
        if let rel = strings(fm["base_model_relation"]).first?.lowercased() {
            d.relation = rel; d.relationSource = "\(src) base_model_relation"
        } else {
            let tags = strings(fm["tags"]).map { $0.lowercased() }
            if tags.contains("merge") || tags.contains("mergekit") {
                d.relation = "merge"; d.relationSource = "\(src) tags"
            }
        }
    }

    static func licenseFromLink(_ link: String, folder: URL, kb: KnowledgeBase) -> LicenseTerms? {
        if let l = kb.license(link: link) { return l }
        // A link to a well-known model's own LICENSE file on the hub: that model's license.
        if let r = link.range(of: "huggingface.co/") {
            let parts = link[r.upperBound...].split(separator: "/")
            if parts.count >= 2, let m = kb.model("\(parts[0])/\(parts[1])") { return kb.license(named: m.license) }
        }
        // A relative link to a file in the repo: read it.
        if !link.contains("://") {
            let f = folder.appendingPathComponent(link)
            if let data = FileManager.default.contents(atPath: f.path) {
                return kb.recognise(text: String(decoding: data.prefix(200_000), as: UTF8.self))
            }
        }
        return nil
    }

    // MARK: license files

    static func readLicenseFiles(names: [String], folder: URL, into d: inout ModelDescription, kb: KnowledgeBase) {
        var used = Set<String>()
        for wanted in licenseFileNames {
            guard let name = names.first(where: { $0.lowercased() == wanted.lowercased() }), used.insert(name).inserted else { continue }
            let url = folder.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path) else { continue }
            d.noticeFiles.append(name)
            let text = String(decoding: data.prefix(400_000), as: UTF8.self)
            if let l = kb.recognise(text: text) {
                d.evidence.append(LicenseEvidence(declared: l.name, licenseID: l.id, source: "\(name) (text recognised)"))
            } else if name.lowercased().hasPrefix("licen") {
                // The card's declaration stands when it names a known license; otherwise the file makes the terms unknown.
                if d.evidence.contains(where: { $0.licenseID != nil }) {
                    d.warnings.append("\(name): text not recognised; relying on the model card's license")
                } else {
                    d.evidence.append(LicenseEvidence(declared: "unrecognised text", licenseID: nil, source: "\(name) (text not recognised)"))
                }
            }
        }
    }

    // MARK: mergekit

    static func readMergekit(_ url: URL, into d: inout ModelDescription) throws {
        let label = url.lastPathComponent
        guard let data = FileManager.default.contents(atPath: url.path) else { throw SmeltError("cannot read \(url.path)") }
        let loaded: Any?
        do { loaded = try SafeYAML.load(String(decoding: data, as: UTF8.self), source: url.path) } catch let e as SmeltError { throw e } catch {
            throw SmeltError("\(url.path): invalid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        guard let cfg = loaded as? [String: Any] else { throw SmeltError("\(url.path): expected a YAML mapping") }
        func model(_ v: Any?) -> String? {
            if let s = v as? String { return s }
            if let m = v as? [String: Any] {
                if let s = m["model"] as? String { return s }
                if let inner = m["model"] as? [String: Any], let p = inner["path"] as? String { return p }
                if let p = m["path"] as? String { return p }
            }
            return nil
        }
        if let b = model(cfg["base_model"]) { d.addParent(b, source: "\(label) base_model") }
        for m in cfg["models"] as? [Any] ?? [] {
            if let s = model(m) { d.addParent(s, source: "\(label) models") }
        }
        for s in cfg["slices"] as? [Any] ?? [] {
            for src in (s as? [String: Any])?["sources"] as? [Any] ?? [] {
                if let m = model(src) { d.addParent(m, source: "\(label) slices") }
            }
        }
        for e in cfg["experts"] as? [Any] ?? [] {  // mergekit-moe
            if let m = (e as? [String: Any])?["source_model"] as? String { d.addParent(m, source: "\(label) experts") }
        }
        if d.relation == nil || d.relation == "finetune" { d.relation = "merge"; d.relationSource = label }
    }

    // MARK: GGUF

    /// A GGUF file: a quantized copy (no license of its own) of the source model its header describes.
    static func describeGGUFFile(_ url: URL, id: String?, kb: KnowledgeBase) throws -> ModelDescription {
        let source = try describeGGUF(url, id: nil, kb: kb)
        var d = ModelDescription(id: id ?? url.lastPathComponent)
        d.parents = [ParentReference(id: source.id, source: "\(url.lastPathComponent) GGUF metadata (source model)")]
        d.inlineParents = [source]
        d.inlineSource = "GGUF metadata of \(url.lastPathComponent)"
        d.relation = "quantized"; d.relationSource = "GGUF file"
        return d
    }

    /// The source model described by a GGUF header: its license and base models.
    static func describeGGUF(_ url: URL, id: String?, kb: KnowledgeBase) throws -> ModelDescription {
        let md = try GGUFGeneralMetadata.read(url)
        let repo = md.string("general.source.repo_url").map { ModelDescription.splitParents($0).first ?? $0 }
        var d = ModelDescription(id: id ?? repo ?? md.string("general.name") ?? "source of \(url.lastPathComponent)")
        let src = "\(url.lastPathComponent) GGUF metadata"
        if let lic = md.string("general.license") {
            let k = KnowledgeBase.key(lic)
            var l = kb.license(named: lic)
            if k == "other" {
                l = md.string("general.license.name").flatMap { kb.license(named: $0) }
                    ?? md.string("general.license.link").flatMap { kb.license(link: $0) }
            }
            let shown = [lic, md.string("general.license.name")].compactMap { $0 }.joined(separator: " / ")
            d.evidence.append(LicenseEvidence(declared: shown, licenseID: l?.id, source: "\(src) general.license"))
        }
        let n = md.int("general.base_model.count") ?? 0
        guard (0...ModelDescription.maxParents).contains(n) else {
            throw SmeltError("\(url.path): metadata general.base_model.count = \(n) (0 to \(ModelDescription.maxParents))")
        }
        for i in 0..<n {
            let p = "general.base_model.\(i)."
            if let u = md.string(p + "repo_url"), u.contains("huggingface.co/") {
                d.addParent(u, source: "\(src) \(p)repo_url")
            } else if let org = md.string(p + "organization"), let name = md.string(p + "name") {
                d.addParent("\(org)/\(name)", source: "\(src) \(p)organization+name")
            } else if let name = md.string(p + "name") {
                d.addParent(name, source: "\(src) \(p)name")
            }
        }
        if !d.parents.isEmpty { d.relation = "derived"; d.relationSource = "\(src) general.base_model" }
        return d
    }
}
