import Foundation
import SmeltFormats

/// The uses `smelt license --use` can ask about.
public enum IntendedUse: String, Codable, Sendable, CaseIterable {
    /// Using the model (or its outputs) commercially.
    case commercial
    /// Republishing the model's weights as they are.
    case redistribute
    /// Publishing a quantized (or otherwise derived) copy, e.g. a GGUF.
    case redistributeQuantized = "redistribute-quantized"
}

/// The answer for one intended use, with its exit status.
public enum Outcome: String, Codable, Sendable {
    /// Allowed (possibly under printed conditions): exit 0.
    case allowed
    /// Not allowed without a separate agreement, or impossible because of a conflict: exit 3 (refused by policy).
    case notAllowed = "not-allowed"
    /// An unknown license, parent or cycle could restrict it: exit 4 (undetermined).
    case cannotConclude = "cannot-conclude"

    /// `smelt license` exit status (Smelt's convention, docs/COMMANDS.md): 0 allowed, 3 not allowed, 4 cannot conclude.
    public var exitCode: Int32 {
        switch self {
        case .allowed: return 0
        case .notAllowed: return 3
        case .cannotConclude: return 4
        }
    }
}

/// The verdict for one intended use.
public struct Verdict: Codable, Sendable, Equatable {
    /// The use asked about.
    public var use: IntendedUse
    /// Allowed, not allowed, or cannot conclude.
    public var outcome: Outcome
    /// Why (the deciding licenses, unknown parents, conflicts).
    public var reasons: [String]
    /// Conditions that must hold for an `allowed` outcome (user limits, non-commercial only, ...).
    public var conditions: [String]
}

/// One property combined over the whole lineage: the most restrictive value wins.
public struct EffectiveTerm: Codable, Sendable, Equatable {
    /// The combined value.
    public var value: Permission
    /// `node (license)` entries responsible for the value (empty when `allowed`).
    public var decidedBy: [String]
    /// Conditions of the `conditional` licenses involved.
    public var conditions: [String]
    /// Why the value cannot be concluded (unknown licenses / parents), if it cannot.
    public var unknownBecause: [String]
}

/// The effective terms of a model, combined over its lineage.
public struct EffectiveTerms: Codable, Sendable, Equatable {
    /// Commercial use.
    public var commercial: EffectiveTerm
    /// Republishing this model's weights as they are (the model itself, derivative of its ancestors).
    public var redistribute: EffectiveTerm
    /// Publishing a quantized or otherwise derived copy.
    public var redistributeQuantized: EffectiveTerm
    /// Share-alike licenses in the lineage.
    public var shareAlike: [String]
    /// Lowest monthly-active-user limit in the lineage, if any.
    public var userLimit: Int?
    /// Distinct knowledge-base license ids in the lineage.
    public var licenses: [String]

    /// The term deciding an intended use.
    public func term(for use: IntendedUse) -> EffectiveTerm {
        switch use {
        case .commercial: return commercial
        case .redistribute: return redistribute
        case .redistributeQuantized: return redistributeQuantized
        }
    }
}

/// What anyone publishing the model or a derivative must do.
public struct Obligations: Codable, Sendable, Equatable {
    /// Copies of license texts to ship (`name <url>`).
    public var licenseCopies: [String]
    /// Notice lines to ship verbatim (in a NOTICE / "Notice" file).
    public var notices: [String]
    /// Files found in the lineage's folders that must travel with copies.
    public var files: [String]
    /// Naming requirements ("Built with Llama", "Llama" prefix).
    public var naming: [String]
    /// Use policies that bind users and must be passed on.
    public var usePolicies: [String]
    /// Share-alike: licenses derivatives must be released under.
    public var shareAlike: [String]
    /// False when unknown parents may add obligations not listed here.
    public var complete: Bool
}

/// A license of the lineage with its source and remarks.
public struct LicenseSummary: Codable, Sendable, Equatable {
    /// Knowledge-base id.
    public var id: String
    /// Full name.
    public var name: String
    /// Source of the license text.
    public var url: String
    /// Nodes under this license.
    public var models: [String]
    /// Remarks from the knowledge base.
    public var notes: String?
}

/// Values for GGUF `general.license*` / `general.base_model.*` keys (used by convert / quantize).
public struct GGUFLicenseMetadata: Codable, Sendable, Equatable {
    /// One direct base model.
    public struct BaseModel: Codable, Sendable, Equatable {
        public var name: String
        public var organization: String?
        public var repoURL: String?
    }
    /// `general.license`.
    public var license: String?
    /// `general.license.name`.
    public var licenseName: String?
    /// `general.license.link`.
    public var licenseLink: String?
    /// `general.base_model.{i}.*`.
    public var baseModels: [BaseModel]

    /// The GGUF key/value pairs, in writing order (`general.base_model.count` as a decimal string).
    public var keyValues: [(key: String, value: String)] {
        var out: [(String, String)] = []
        if let l = license { out.append(("general.license", l)) }
        if let n = licenseName { out.append(("general.license.name", n)) }
        if let l = licenseLink { out.append(("general.license.link", l)) }
        if !baseModels.isEmpty { out.append(("general.base_model.count", String(baseModels.count))) }
        for (i, b) in baseModels.enumerated() {
            out.append(("general.base_model.\(i).name", b.name))
            if let o = b.organization { out.append(("general.base_model.\(i).organization", o)) }
            if let u = b.repoURL { out.append(("general.base_model.\(i).repo_url", u)) }
        }
        return out
    }
}

/// The license report of a model: lineage, effective terms, obligations, conflicts and verdicts.
public struct LicenseReport: Codable, Sendable, Equatable {
    /// Knowledge-base version used.
    public var knowledgeBaseVersion: String
    /// The lineage tree, the model itself at the root.
    public var lineage: LineageNode
    /// Combined terms.
    public var effective: EffectiveTerms
    /// Obligations for anyone publishing it or a derivative.
    public var obligations: Obligations
    /// Incompatible terms (e.g. share-alike + a license whose restrictions must travel).
    public var conflicts: [String]
    /// Remarks: mislabelled licenses, disagreeing evidence, unreadable files.
    public var warnings: [String]
    /// Unknown parents and cycles.
    public var unresolved: [String]
    /// The lineage's licenses.
    public var licenses: [LicenseSummary]
    /// Verdicts for every intended use.
    public var verdicts: [Verdict]

    /// The verdict for one use.
    public func verdict(for use: IntendedUse) -> Verdict {
        verdicts.first { $0.use == use } ?? LicenseReport.decide(use, effective, conflicts)
    }

    /// Builds the report from a resolved lineage.
    public init(root: LineageNode, knowledgeBase kb: KnowledgeBase) {
        knowledgeBaseVersion = kb.version
        lineage = root
        var b = Builder(kb: kb)
        b.collect(root, isRoot: true)
        effective = b.effectiveTerms()
        obligations = b.obligations(root: root)
        conflicts = b.conflicts(root: root)
        warnings = b.warnings
        unresolved = b.unresolved
        licenses = b.summaries()
        let (eff, conf) = (effective, conflicts)
        verdicts = IntendedUse.allCases.map { LicenseReport.decide($0, eff, conf) }
    }

    static func decide(_ use: IntendedUse, _ eff: EffectiveTerms, _ conflicts: [String]) -> Verdict {
        let t = eff.term(for: use)
        if use != .commercial, !conflicts.isEmpty {
            let also = t.value == .forbidden ? t.decidedBy.map { "forbidden by \($0)" } : []
            return Verdict(use: use, outcome: .notAllowed, reasons: conflicts.map { "conflict: \($0)" } + also, conditions: [])
        }
        switch t.value {
        case .allowed:
            return Verdict(use: use, outcome: .allowed, reasons: ["every license in the lineage allows it (obligations apply)"], conditions: [])
        case .conditional:
            return Verdict(use: use, outcome: .allowed, reasons: ["allowed under conditions: \(t.decidedBy.joined(separator: ", "))"],
                           conditions: t.conditions)
        case .forbidden:
            return Verdict(use: use, outcome: .notAllowed, reasons: t.decidedBy.map { "forbidden by \($0)" }, conditions: [])
        case .unknown:
            return Verdict(use: use, outcome: .cannotConclude, reasons: t.unknownBecause, conditions: t.conditions)
        }
    }

    /// One line for convert / quantize when the terms forbid (or do not let us confirm) redistributing
    /// a quantized copy; nil when it is allowed (possibly with conditions).
    public var redistributionWarning: String? {
        let v = verdict(for: .redistributeQuantized)
        switch v.outcome {
        case .allowed: return nil
        case .notAllowed:
            return "warning: the license terms of \(lineage.id) do not allow publishing quantized copies (\(v.reasons.joined(separator: "; "))); run `smelt license` for details"
        case .cannotConclude:
            return "warning: cannot confirm that quantized copies of \(lineage.id) may be published (\(v.reasons.joined(separator: "; "))); run `smelt license` for details"
        }
    }

    /// Values for the GGUF `general.license*` and `general.base_model.*` keys of a converted or quantized file.
    public func ggufMetadata(knowledgeBase kb: KnowledgeBase = .builtIn) -> GGUFLicenseMetadata {
        var md = GGUFLicenseMetadata(license: nil, licenseName: nil, licenseLink: nil, baseModels: [])
        // The model's own declaration first (known ids, then unrecognised names kept verbatim), else the lineage's.
        var own = lineage.licenseIDs
        for e in lineage.evidence where e.licenseID == nil && !own.contains(e.declared) { own.append(e.declared) }
        let ids = own.isEmpty ? effective.licenses : own
        if ids.count == 1, let l = kb.license(named: ids[0]) {
            md.license = l.id; md.licenseName = l.name; md.licenseLink = l.url.isEmpty ? nil : l.url
        } else if !ids.isEmpty {
            md.license = "other"; md.licenseName = ids.joined(separator: " + ")
        }
        for p in lineage.parents {
            let parts = p.id.split(separator: "/")
            let isRepo = ModelFolderReader.looksLikeRepoID(p.id)
            md.baseModels.append(.init(name: isRepo ? String(parts[1]) : p.id,
                                       organization: isRepo ? String(parts[0]) : nil,
                                       repoURL: isRepo ? "https://huggingface.co/\(p.id)" : nil))
        }
        return md
    }
}

/// Collects contributions from the tree and combines them.
struct Builder {
    struct Contribution {
        var node: String
        var isRoot: Bool
        var license: LicenseTerms?
        var reason: String  // for unknown contributions
    }
    let kb: KnowledgeBase
    var contributions: [Contribution] = []
    var warnings: [String] = []
    var unresolved: [String] = []

    init(kb: KnowledgeBase) { self.kb = kb }

    mutating func collect(_ n: LineageNode, isRoot: Bool) {
        for w in n.warnings where !warnings.contains("\(n.id): \(w)") { warnings.append("\(n.id): \(w)") }
        switch n.status {
        case .repeated: return
        case .unknown:
            unresolved.append("\(n.id): not found in the model folder, the cards folder or the known-model table")
            contributions.append(Contribution(node: n.id, isRoot: isRoot, license: nil,
                                              reason: "\(n.id): parent not found offline (add its card with --cards)"))
            return
        case .cycle:
            unresolved.append("\(n.id): lineage cycle")
            contributions.append(Contribution(node: n.id, isRoot: isRoot, license: nil,
                                              reason: "\(n.id): lineage cycle, the true ancestry is unknown"))
            return
        case .tooDeep:
            unresolved.append("\(n.id): lineage too deep")
            contributions.append(Contribution(node: n.id, isRoot: isRoot, license: nil, reason: "\(n.id): lineage too deep to follow"))
            return
        case .resolved: break
        }
        if n.evidence.isEmpty {
            let inherits = (n.relation == "merge" || n.relation == "quantized") && !n.parents.isEmpty
            if !inherits {
                contributions.append(Contribution(node: n.id, isRoot: isRoot, license: nil,
                                                  reason: "\(n.id): no license declared"))
            }
        } else {
            var seen = Set<String>()
            for e in n.evidence {
                if let id = e.licenseID, let l = kb.license(named: id) {
                    guard seen.insert(l.id).inserted else { continue }
                    contributions.append(Contribution(node: n.id, isRoot: isRoot, license: l.isPlaceholder ? nil : l,
                                                      reason: "\(n.id): license '\(e.declared)' is not identified (\(e.source))"))
                } else {
                    contributions.append(Contribution(node: n.id, isRoot: isRoot, license: nil,
                                                      reason: "\(n.id): license '\(e.declared)' is not in the knowledge base (\(e.source))"))
                }
            }
            let ids = n.licenseIDs.filter { kb.license(named: $0)?.isPlaceholder == false }
            if ids.count > 1 {
                warnings.append("\(n.id): the evidence names several licenses (\(ids.joined(separator: ", "))); all of them are applied")
            }
        }
        for p in n.parents { collect(p, isRoot: false) }
    }

    func term(_ pick: (Contribution) -> Permission, property: (Contribution) -> LicenseProperty) -> EffectiveTerm {
        var value = Permission.allowed
        for c in contributions { value = value.combined(with: pick(c)) }
        var conditions: [String] = [], unknown: [String] = []
        var byLicense: [(String, [String])] = []  // license id -> nodes, in lineage order
        for c in contributions {
            let v = pick(c)
            if v == .unknown, !unknown.contains(c.reason) { unknown.append(c.reason) }
            if v == value, value != .allowed, value != .unknown, let l = c.license {
                if let i = byLicense.firstIndex(where: { $0.0 == l.id }) {
                    if !byLicense[i].1.contains(c.node) { byLicense[i].1.append(c.node) }
                } else { byLicense.append((l.id, [c.node])) }
            }
            if v == .conditional, value == .conditional || value == .unknown,
               let l = c.license, let text = l.conditions?[property(c).rawValue] {
                let s = "\(l.id): \(text)"
                if !conditions.contains(s) { conditions.append(s) }
            }
        }
        let decided = byLicense.map { "\($0.0) (\($0.1.joined(separator: ", ")))" }
        return EffectiveTerm(value: value, decidedBy: decided, conditions: conditions, unknownBecause: value == .unknown ? unknown : [])
    }

    func effectiveTerms() -> EffectiveTerms {
        func perm(_ c: Contribution, _ p: LicenseProperty) -> Permission { c.license?.permission(p) ?? .unknown }
        let asIs: (Contribution) -> LicenseProperty = { $0.isRoot ? .redistributeWeights : .redistributeDerivatives }
        let known = contributions.compactMap { $0.license }
        var ids: [String] = []
        for l in known where !ids.contains(l.id) { ids.append(l.id) }
        return EffectiveTerms(
            commercial: term({ perm($0, .commercial) }, property: { _ in .commercial }),
            redistribute: term({ perm($0, asIs($0)) }, property: asIs),
            redistributeQuantized: term({ perm($0, .redistributeDerivatives) }, property: { _ in .redistributeDerivatives }),
            shareAlike: ids.filter { kb.license(named: $0)?.shareAlike == true },
            userLimit: known.compactMap { $0.userLimit }.min(),
            licenses: ids)
    }

    func obligations(root: LineageNode) -> Obligations {
        var o = Obligations(licenseCopies: [], notices: [], files: [], naming: [], usePolicies: [], shareAlike: [],
                            complete: !contributions.contains { $0.license == nil })
        func add(_ s: String, _ list: inout [String]) { if !list.contains(s) { list.append(s) } }
        var copies: [String: [String]] = [:], order: [String] = []
        for c in contributions {
            guard let l = c.license else { continue }
            if l.attribution { copies[l.id, default: []].append(c.node); if !order.contains(l.id) { order.append(l.id) } }
            if let n = l.notice { add(n, &o.notices) }
            for n in l.naming ?? [] { add("\(l.id): \(n)", &o.naming) }
            if let p = l.usePolicy { add("\(l.id): \(p)", &o.usePolicies) }
            if l.shareAlike { add("release derivatives under \(l.name) (\(l.id))", &o.shareAlike) }
        }
        for id in order {
            guard let l = kb.license(named: id) else { continue }
            let url = l.url.isEmpty ? "" : " <\(l.url)>"
            add("\(l.name)\(url), for \(copies[id, default: []].joined(separator: ", "))", &o.licenseCopies)
        }
        for n in root.allNodes where n.status == .resolved && !n.noticeFiles.isEmpty {
            add("\(n.id): \(n.noticeFiles.joined(separator: ", "))", &o.files)
        }
        return o
    }

    func compatible(_ a: LicenseTerms, _ b: LicenseTerms) -> Bool {
        a.id == b.id || (a.compatibleWith ?? []).contains(b.id) || (b.compatibleWith ?? []).contains(a.id)
    }

    mutating func conflicts(root: LineageNode) -> [String] {
        var out: [String] = []
        func add(_ s: String) { if !out.contains(s) { out.append(s) } }
        var ls: [LicenseTerms] = []
        for c in contributions { if let l = c.license, !ls.contains(where: { $0.id == l.id }) { ls.append(l) } }
        // Share-alike against any other license whose own terms must also bind derivatives.
        for s in ls where s.shareAlike {
            for l in ls where l.id != s.id && l.derivativeTerms != .any && !compatible(s, l) {
                add("\(s.id) is share-alike (derivatives only under \(s.id), no added restrictions) but \(l.id) terms also bind derivatives")
            }
        }
        // Each node's declared license against the terms it inherits.
        checkDeclarations(root, &out)
        return out
    }

    /// A node declaring a license that drops inherited terms: share-alike → conflict, other binding terms → warning.
    mutating func checkDeclarations(_ n: LineageNode, _ out: inout [String]) {
        let own = n.licenseIDs.compactMap { kb.license(named: $0) }.filter { !$0.isPlaceholder }
        if !own.isEmpty {
            var inherited: [(String, LicenseTerms)] = []
            for a in n.parents.flatMap({ $0.allNodes }) where a.status == .resolved {
                for id in a.licenseIDs { if let l = kb.license(named: id), !l.isPlaceholder { inherited.append((a.id, l)) } }
            }
            for (aid, l) in inherited where l.derivativeTerms != .any && !own.contains(where: { $0.id == l.id }) {
                if l.shareAlike {
                    // Directional: the ancestor's share-alike license must allow the declared one.
                    if !own.allSatisfy({ $0.id == l.id || (l.compatibleWith ?? []).contains($0.id) }) {
                        let s = "\(n.id) declares \(own.map(\.id).joined(separator: ", ")) but derives from \(aid), share-alike under \(l.id)"
                        if !out.contains(s) { out.append(s) }
                    }
                } else {
                    let s = "\(n.id) declares \(own.map(\.id).joined(separator: ", ")) but derives from \(aid) under \(l.id), whose terms still apply"
                    if !warnings.contains(s) { warnings.append(s) }
                }
            }
        }
        for p in n.parents { checkDeclarations(p, &out) }
    }

    func summaries() -> [LicenseSummary] {
        var out: [LicenseSummary] = []
        for c in contributions {
            guard let l = c.license else { continue }
            if let i = out.firstIndex(where: { $0.id == l.id }) {
                if !out[i].models.contains(c.node) { out[i].models.append(c.node) }
            } else {
                out.append(LicenseSummary(id: l.id, name: l.name, url: l.url, models: [c.node], notes: l.notes))
            }
        }
        return out
    }
}
