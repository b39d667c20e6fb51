import Foundation
import SmeltFormats

/// How a lineage node was resolved.
public enum NodeStatus: String, Codable, Sendable {
    /// Found (model folder, cards folder or known-model table).
    case resolved
    /// Not found offline: its terms are unknown.
    case unknown
    /// Refers back to one of its own descendants: the true ancestry is unknown.
    case cycle
    /// Already shown elsewhere in the tree (shared ancestor); counted once.
    case repeated
    /// Beyond the depth limit: not followed.
    case tooDeep = "too-deep"
}

/// One model in the lineage tree.
public struct LineageNode: Codable, Sendable, Equatable {
    /// Repo id, local path or folder name.
    public var id: String
    /// How this node was resolved.
    public var status: NodeStatus
    /// How this model was made from its parents: merge, finetune, adapter, quantized, derived (nil for a root model).
    public var relation: String?
    /// Where the model's description was found.
    public var foundIn: String
    /// License evidence for this node.
    public var evidence: [LicenseEvidence]
    /// Files found next to the model that travel with copies (LICENSE, NOTICE, ...).
    public var noticeFiles: [String]
    /// Parents (base models, merge sources, adapter bases).
    public var parents: [LineageNode]
    /// Non-fatal remarks about this node.
    public var warnings: [String]

    /// Knowledge-base license ids of this node (distinct, evidence order).
    public var licenseIDs: [String] {
        var out: [String] = []
        for e in evidence { if let id = e.licenseID, !out.contains(id) { out.append(id) } }
        return out
    }

    /// Every node of the subtree, depth first, this one first.
    public var allNodes: [LineageNode] { [self] + parents.flatMap { $0.allNodes } }
}

/// Resolves a model's lineage offline and builds its license report.
public struct LicenseResolver: Sendable {
    /// The knowledge base (licenses and well-known models).
    public var knowledgeBase: KnowledgeBase
    /// Optional folder of model cards that extends (and overrides) the known-model table.
    public var cardsDirectory: URL?
    /// Parents deeper than this are not followed (reported, answer "cannot conclude").
    public var maxDepth: Int

    /// Creates a resolver.
    public init(knowledgeBase: KnowledgeBase = .builtIn, cardsDirectory: URL? = nil, maxDepth: Int = 32) {
        self.knowledgeBase = knowledgeBase
        self.cardsDirectory = cardsDirectory
        self.maxDepth = maxDepth
    }

    /// Reads the model at `path` (folder, model card or .gguf), resolves its lineage and combines the terms.
    public func report(for path: URL) throws -> LicenseReport {
        if let c = cardsDirectory {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: c.path, isDirectory: &isDir), isDir.boolValue else {
                throw SmeltError("--cards \(c.path): not a folder")
            }
        }
        let root = try lineage(for: path)
        return LicenseReport(root: root, knowledgeBase: knowledgeBase)
    }

    /// The lineage tree of the model at `path`.
    public func lineage(for path: URL) throws -> LineageNode {
        let desc = try ModelFolderReader.describe(path, kb: knowledgeBase)
        var visited: Set<String> = [desc.id.lowercased()]
        let folder = isDirectory(path) ? path : path.deletingLastPathComponent()
        return build(desc, foundIn: "model at \(path.path)", folder: folder, stack: [desc.id.lowercased()], visited: &visited)
    }

    func isDirectory(_ u: URL) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: u.path, isDirectory: &d) && d.boolValue
    }

    func build(_ d: ModelDescription, foundIn: String, folder: URL?, stack: [String], visited: inout Set<String>) -> LineageNode {
        var node = LineageNode(id: d.id, status: .resolved, relation: d.parents.isEmpty ? nil : d.relation, foundIn: foundIn,
                               evidence: d.evidence, noticeFiles: d.noticeFiles, parents: [], warnings: d.warnings)
        for p in d.parents {
            let key = p.id.lowercased()
            let declared = "declared in \(p.source)"
            if stack.contains(key) {
                node.parents.append(LineageNode(id: p.id, status: .cycle, relation: nil, foundIn: declared, evidence: [],
                                                noticeFiles: [], parents: [], warnings: ["lineage cycle: \(p.id) is its own ancestor"]))
                continue
            }
            if visited.contains(key) {
                node.parents.append(LineageNode(id: p.id, status: .repeated, relation: nil, foundIn: declared, evidence: [],
                                                noticeFiles: [], parents: [], warnings: []))
                continue
            }
            if stack.count >= maxDepth {
                node.parents.append(LineageNode(id: p.id, status: .tooDeep, relation: nil, foundIn: declared, evidence: [],
                                                noticeFiles: [], parents: [], warnings: ["lineage deeper than \(maxDepth) levels"]))
                continue
            }
            visited.insert(key)
            if let inline = d.inlineParents.first(where: { $0.id.lowercased() == key }) {
                node.parents.append(build(inline, foundIn: d.inlineSource ?? "inline", folder: nil, stack: stack + [key], visited: &visited))
                continue
            }
            switch locate(p.id, relativeTo: folder) {
            case let .described(desc, where_, dir):
                node.parents.append(build(desc, foundIn: where_, folder: dir, stack: stack + [key], visited: &visited))
            case let .failed(message):
                node.parents.append(LineageNode(id: p.id, status: .unknown, relation: nil, foundIn: declared, evidence: [],
                                                noticeFiles: [], parents: [], warnings: [message]))
            case .notFound:
                node.parents.append(LineageNode(id: p.id, status: .unknown, relation: nil, foundIn: "not found offline (\(declared))",
                                                evidence: [], noticeFiles: [], parents: [], warnings: []))
            }
        }
        return node
    }

    enum Located {
        case described(ModelDescription, String, URL?)
        case failed(String)
        case notFound
    }

    /// Finds a parent: a local path, then the cards folder, then the known-model table.
    func locate(_ id: String, relativeTo folder: URL?) -> Located {
        let fm = FileManager.default
        // 1. A local path (mergekit configs often name local folders).
        var candidates: [URL] = []
        if id.hasPrefix("/") { candidates.append(URL(fileURLWithPath: id)) }
        else if id.hasPrefix("~") { candidates.append(URL(fileURLWithPath: (id as NSString).expandingTildeInPath)) }
        else if let f = folder {
            candidates.append(f.appendingPathComponent(id))
        }
        for c in candidates where fm.fileExists(atPath: c.path) {
            do {
                let d = try ModelFolderReader.describe(c, id: id, kb: knowledgeBase)
                return .described(d, "local path \(c.path)", isDirectory(c) ? c : c.deletingLastPathComponent())
            } catch { return .failed("\(error)") }
        }
        // 2. The cards folder.
        if let dir = cardsDirectory, let card = cardLocation(id, in: dir) {
            do {
                let d = try ModelFolderReader.describe(card, id: id, kb: knowledgeBase)
                return .described(d, "cards folder \(card.path)", isDirectory(card) ? card : card.deletingLastPathComponent())
            } catch { return .failed("\(error)") }
        }
        // 3. The known-model table.
        if let m = knowledgeBase.model(id) {
            var d = ModelDescription(id: id)
            d.evidence = [LicenseEvidence(declared: m.license, licenseID: m.license,
                                          source: "known-model table (knowledge base \(knowledgeBase.version))")]
            for b in m.base ?? [] { d.addParent(b, source: "known-model table") }
            if !d.parents.isEmpty { d.relation = m.relation ?? "finetune" }
            return .described(d, "known-model table", nil)
        }
        return .notFound
    }

    /// Where a repo id's card lives in a cards folder. Layouts: `owner/name/` (a model folder or README.md),
    /// `owner/name.md`, `owner--name/`, `owner--name.md`, `owner__name.md`, and the Hugging Face cache
    /// `models--owner--name/snapshots/<rev>/`.
    func cardLocation(_ id: String, in dir: URL) -> URL? {
        let fm = FileManager.default
        let flat = [id.replacingOccurrences(of: "/", with: "--"), id.replacingOccurrences(of: "/", with: "__")]
        var candidates: [URL] = [dir.appendingPathComponent(id), dir.appendingPathComponent(id + ".md")]
        for f in flat { candidates += [dir.appendingPathComponent(f), dir.appendingPathComponent(f + ".md")] }
        for c in candidates {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: c.path, isDirectory: &isDir) { return c }
        }
        // Case-insensitive matches (hub ids are case-insensitive; most file systems here are not).
        func entry(_ folder: URL, _ wanted: Set<String>) -> URL? {
            let names = ((try? fm.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
            return names.first { wanted.contains($0.lowercased()) }.map { folder.appendingPathComponent($0) }
        }
        if let u = entry(dir, Set(flat.flatMap { [$0.lowercased(), $0.lowercased() + ".md"] })) { return u }
        let parts = id.split(separator: "/").map(String.init)
        if parts.count == 2, let owner = entry(dir, [parts[0].lowercased()]),
           let u = entry(owner, [parts[1].lowercased(), parts[1].lowercased() + ".md"]) { return u }
        // Hugging Face hub cache: the snapshot `refs/main` points at, else the first one.
        if let repo = entry(dir, ["models--" + id.replacingOccurrences(of: "/", with: "--").lowercased()]) {
            let snaps = repo.appendingPathComponent("snapshots")
            let main = (try? String(contentsOf: repo.appendingPathComponent("refs/main"), encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if let m = main, !m.isEmpty, fm.fileExists(atPath: snaps.appendingPathComponent(m).path) {
                return snaps.appendingPathComponent(m)
            }
            let revs = ((try? fm.contentsOfDirectory(atPath: snaps.path)) ?? []).sorted()
            if let r = revs.first { return snaps.appendingPathComponent(r) }
        }
        return nil
    }
}
