import Foundation
import SmeltFormats

extension LicenseReport {
    /// The human-readable report printed by `smelt license`. `use` adds the verdict section for that use.
    public func text(use: IntendedUse? = nil) -> String {
        var out: [String] = []
        out.append("License report for \(lineage.id)  (knowledge base \(knowledgeBaseVersion); not legal advice)")
        out.append("")
        out.append("Lineage")
        LicenseReport.renderTree(lineage, prefix: "", childPrefix: "", into: &out)

        out.append("")
        out.append("Effective terms (most restrictive over the lineage)")
        func row(_ label: String, _ t: EffectiveTerm) {
            let who: String
            switch t.value {
            case .allowed: who = ""
            case .unknown: who = t.unknownBecause.joined(separator: "; ")
            default: who = t.decidedBy.joined(separator: ", ")
            }
            let line = "  " + label.padding(toLength: 40, withPad: " ", startingAt: 0)
                + LicenseReport.show(t.value).padding(toLength: 17, withPad: " ", startingAt: 0) + who
            out.append(line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression))
            for c in t.conditions { out.append("      condition: \(c)") }
        }
        row("commercial use", effective.commercial)
        row("redistribute the weights as they are", effective.redistribute)
        row("redistribute quantized / derived", effective.redistributeQuantized)
        out.append("  " + "share-alike".padding(toLength: 40, withPad: " ", startingAt: 0)
                   + (effective.shareAlike.isEmpty ? "no" : effective.shareAlike.joined(separator: ", ")))
        out.append("  " + "user-count limit".padding(toLength: 40, withPad: " ", startingAt: 0)
                   + (effective.userLimit.map { "\(LicenseReport.grouped($0)) monthly active users" } ?? "none"))

        out.append("")
        out.append("Obligations when publishing it or a derivative" + (obligations.complete ? "" : " (incomplete: unknown licenses may add more)"))
        let sections: [(String, [String])] = [
            ("ship a copy of", obligations.licenseCopies),
            ("ship this notice", obligations.notices.map { "\"\($0)\"" }),
            ("keep these files", obligations.files),
            ("naming", obligations.naming),
            ("pass on the use policy", obligations.usePolicies),
            ("share-alike", obligations.shareAlike),
        ]
        var any = false
        for (title, items) in sections where !items.isEmpty {
            any = true
            out.append("  \(title):")
            for i in items { out.append("    - \(i)") }
        }
        if !any { out.append("  none known") }

        out.append("")
        out.append("Conflicts")
        if conflicts.isEmpty { out.append("  none") } else { for c in conflicts { out.append("  - \(c)") } }
        if !unresolved.isEmpty {
            out.append("")
            out.append("Unresolved lineage")
            for u in unresolved { out.append("  - \(u)") }
        }
        if !warnings.isEmpty {
            out.append("")
            out.append("Warnings")
            for w in warnings { out.append("  - \(w)") }
        }

        out.append("")
        let shown = use.map { [verdict(for: $0)] } ?? verdicts
        out.append(use == nil ? "Verdicts" : "Verdict")
        for v in shown {
            out.append("  \(v.use.rawValue): \(LicenseReport.show(v.outcome))")
            for r in v.reasons { out.append("    - \(r)") }
            for c in v.conditions { out.append("    - only if: \(c)") }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func show(_ p: Permission) -> String {
        switch p {
        case .allowed: return "allowed"
        case .conditional: return "conditional"
        case .forbidden: return "FORBIDDEN"
        case .unknown: return "CANNOT CONCLUDE"
        }
    }

    static func show(_ o: Outcome) -> String {
        switch o {
        case .allowed: return "ALLOWED (exit 0)"
        case .notAllowed: return "NOT ALLOWED (exit 3)"
        case .cannotConclude: return "CANNOT CONCLUDE (exit 4)"
        }
    }

    static func grouped(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return out
    }

    static func describe(_ n: LineageNode) -> String {
        var parts = [n.id]
        if let r = n.relation { parts.append("[\(r)]") }
        switch n.status {
        case .repeated: parts.append("(shown above)")
        case .unknown: parts.append("UNKNOWN: \(n.foundIn)")
        case .cycle: parts.append("CYCLE: \(n.foundIn)")
        case .tooDeep: parts.append("NOT FOLLOWED (too deep)")
        case .resolved:
            if n.evidence.isEmpty {
                let inherits = (n.relation == "merge" || n.relation == "quantized") && !n.parents.isEmpty
                parts.append(inherits ? "license: none declared (inherits)" : "license: NONE DECLARED")
            } else {
                var groups: [(String, [String])] = []
                for e in n.evidence {
                    let name = e.licenseID ?? "'\(e.declared)' (not recognised)"
                    if let i = groups.firstIndex(where: { $0.0 == name }) { groups[i].1.append(e.source) }
                    else { groups.append((name, [e.source])) }
                }
                parts.append("license: " + groups.map { "\($0.0) [\($0.1.joined(separator: ", "))]" }.joined(separator: "; "))
            }
            if n.foundIn != "known-model table" { parts.append("— \(n.foundIn)") }
        }
        return parts.joined(separator: "  ")
    }

    static func renderTree(_ n: LineageNode, prefix: String, childPrefix: String, into out: inout [String]) {
        out.append("  " + prefix + describe(n))
        for (i, p) in n.parents.enumerated() {
            let last = i == n.parents.count - 1
            renderTree(p, prefix: childPrefix + (last ? "└─ " : "├─ "), childPrefix: childPrefix + (last ? "   " : "│  "), into: &out)
        }
    }
}

extension LicenseReport {
    /// The report as pretty JSON (stable key order).
    public func json() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            // Re-serialised by SmeltFormats' JSON writer: the project's one pretty-printing style.
            return try JSONValue.parse(enc.encode(self)).serialized(pretty: true) + "\n"
        } catch { throw SmeltError("cannot encode the report as JSON: \(error)") }
    }
}
