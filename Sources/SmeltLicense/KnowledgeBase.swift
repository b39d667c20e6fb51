import Foundation
import SmeltFormats
import Yams

/// How far a license lets you go with one kind of use, ordered from least to most restrictive.
/// `unknown` means "cannot conclude": combined with anything but `forbidden` it stays `unknown`.
public enum Permission: String, Codable, Sendable, CaseIterable {
    /// Allowed, provided the listed obligations (notices, names, policies) are met.
    case allowed
    /// Allowed only under a condition you must check yourself (user-count limit, non-commercial only, ...).
    case conditional
    /// Not allowed without a separate agreement with the rights holder.
    case forbidden
    /// Cannot conclude: some license in the lineage is unknown.
    case unknown

    var rank: Int {
        switch self {
        case .allowed: return 0
        case .conditional: return 1
        case .forbidden: return 3
        case .unknown: return 2
        }
    }

    /// The most restrictive of two values: `forbidden` beats everything, then `unknown`, then `conditional`.
    public func combined(with other: Permission) -> Permission { rank >= other.rank ? self : other }
}

/// What a license demands of derivatives (fine-tunes, merges, quantized files).
public enum DerivativeTerms: String, Codable, Sendable {
    /// Permissive: derivatives may be released under other terms if notices are kept.
    case any
    /// Share-alike: derivatives must be released under this same license (or a listed compatible one).
    case same
    /// Derivatives stay subject to this license's restrictions, whatever else is added.
    case carry
    /// Derivatives may not be shared at all.
    case none
}

/// One license of the knowledge base and its properties.
public struct LicenseTerms: Codable, Sendable, Equatable {
    /// Hugging Face style id, e.g. `apache-2.0`, `llama3.1`, `mrl`.
    public var id: String
    /// Full name of the license.
    public var name: String
    /// Where the license text lives (the knowledge base's source for this entry).
    public var url: String
    /// Other spellings accepted in `license` / `license_name` fields.
    public var aliases: [String]?
    /// URL fragments that identify the license in a `license_link`.
    public var links: [String]?
    /// Commercial use of the model or its outputs in a product or service.
    public var commercial: Permission
    /// Redistributing the unmodified weights.
    public var redistributeWeights: Permission
    /// Redistributing derivatives: fine-tunes, merges, adapters, and quantized files.
    public var redistributeDerivatives: Permission
    /// What the license demands of derivatives.
    public var derivativeTerms: DerivativeTerms
    /// Share-alike licenses a combined work may instead be released under.
    public var compatibleWith: [String]?
    /// Whether attribution / a copy of the license must accompany copies.
    public var attribution: Bool
    /// Notice text that must be shipped with copies, if the license prescribes one.
    public var notice: String?
    /// Naming requirements ("Built with Llama", "Llama" prefix).
    public var naming: [String]?
    /// Acceptable-use policy that binds users and must be passed on.
    public var usePolicy: String?
    /// Monthly-active-user threshold above which a separate license is required.
    public var userLimit: Int?
    /// The condition behind each `conditional` value, keyed by property name.
    public var conditions: [String: String]?
    /// Phrase sets recognising the license text, notice or policy (all phrases of a set must occur).
    public var fingerprints: [[String]]?
    /// Free-text remarks (documented judgement calls).
    public var notes: String?

    enum CodingKeys: String, CodingKey {
        case id, name, url, aliases, links, commercial
        case redistributeWeights = "redistribute_weights"
        case redistributeDerivatives = "redistribute_derivatives"
        case derivativeTerms = "derivative_terms"
        case compatibleWith = "compatible_with"
        case attribution, notice, naming
        case usePolicy = "use_policy"
        case userLimit = "user_limit"
        case conditions, fingerprints, notes
    }

    /// A placeholder entry (`other`, `unknown`): every property is unknown.
    public var isPlaceholder: Bool { LicenseProperty.allCases.allSatisfy { permission($0) == .unknown } }

    /// Whether derivatives must use this same license.
    public var shareAlike: Bool { derivativeTerms == .same }

    /// The value of one property.
    public func permission(_ p: LicenseProperty) -> Permission {
        switch p {
        case .commercial: return commercial
        case .redistributeWeights: return redistributeWeights
        case .redistributeDerivatives: return redistributeDerivatives
        }
    }
}

/// The permission-valued properties combined over a lineage.
public enum LicenseProperty: String, Codable, Sendable, CaseIterable {
    /// Commercial use.
    case commercial
    /// Redistributing the unmodified weights.
    case redistributeWeights = "redistribute_weights"
    /// Redistributing derivatives (quantized files included).
    case redistributeDerivatives = "redistribute_derivatives"
}

/// A well-known model: repo id → license, optionally with its own base models.
public struct KnownModel: Codable, Sendable, Equatable {
    /// `owner/name` on the Hugging Face hub.
    public var id: String
    /// Knowledge-base license id.
    public var license: String
    /// Other repo ids of the same weights (renames).
    public var aliases: [String]?
    /// Base models, when the model is itself a derivative.
    public var base: [String]?
    /// Relation to `base`: finetune, merge, adapter, quantized.
    public var relation: String?
}

/// The license knowledge base: licenses and well-known models, versioned data.
public struct KnowledgeBase: Codable, Sendable {
    /// Version of the data (date based), printed in reports.
    public var version: String
    /// All licenses.
    public var licenses: [LicenseTerms]
    /// Well-known models.
    public var models: [KnownModel]

    /// The knowledge base shipped with Smelt (`KnowledgeBase+Data.swift`).
    public static let builtIn: KnowledgeBase = {
        do { return try KnowledgeBase(yaml: KnowledgeBase.builtInYAML) } catch {
            // The data is part of the source and tested; an empty base keeps the tool answering "cannot conclude".
            return KnowledgeBase(version: "invalid (\(error))", licenses: [], models: [])
        }
    }()

    /// The built-in knowledge base, or an error when its data does not parse (the CLI checks this first).
    public static func validatedBuiltIn() throws -> KnowledgeBase { try KnowledgeBase(yaml: builtInYAML) }

    /// Memberwise initialiser.
    public init(version: String, licenses: [LicenseTerms], models: [KnownModel]) {
        self.version = version
        self.licenses = licenses
        self.models = models
    }

    /// Parses knowledge-base YAML and validates it (unique ids, known license references).
    public init(yaml: String) throws {
        let kb: KnowledgeBase
        do { kb = try YAMLDecoder().decode(KnowledgeBase.self, from: yaml) } catch {
            throw SmeltError("license knowledge base: \(error)")
        }
        var seen = Set<String>()
        for l in kb.licenses {
            guard seen.insert(l.id.lowercased()).inserted else { throw SmeltError("license knowledge base: duplicate license id \(l.id)") }
        }
        for m in kb.models where !seen.contains(m.license.lowercased()) {
            throw SmeltError("license knowledge base: model \(m.id) refers to unknown license \(m.license)")
        }
        self = kb
    }

    /// The license with this id or alias (case-insensitive, punctuation-tolerant).
    public func license(named raw: String) -> LicenseTerms? {
        let key = KnowledgeBase.key(raw)
        guard !key.isEmpty else { return nil }
        return licenses.first { l in
            KnowledgeBase.key(l.id) == key || (l.aliases ?? []).contains { KnowledgeBase.key($0) == key }
        }
    }

    /// The license whose `links` fragment occurs in a `license_link` URL.
    public func license(link: String) -> LicenseTerms? {
        let u = link.lowercased()
        return licenses.first { l in
            (l.links ?? []).contains { u.contains($0.lowercased()) } || (!l.url.isEmpty && u == l.url.lowercased())
        }
    }

    /// The well-known model with this repo id (case-insensitive, aliases included).
    public func model(_ repoID: String) -> KnownModel? {
        let k = repoID.lowercased()
        return models.first { $0.id.lowercased() == k || ($0.aliases ?? []).contains { $0.lowercased() == k } }
    }

    /// Recognises a license (or its notice / use policy) from text content. The most specific match wins:
    /// the matching phrase set with the longest single phrase (a named title beats generic words), then the
    /// longest phrases in total.
    public func recognise(text: String) -> LicenseTerms? {
        let t = " " + KnowledgeBase.normalise(text) + " "
        var best: (LicenseTerms, Int, Int)?
        for l in licenses {
            for set in l.fingerprints ?? [] where !set.isEmpty {
                let phrases = set.map { " " + KnowledgeBase.normalise($0) + " " }
                guard phrases.allSatisfy({ t.contains($0) }) else { continue }
                let longest = phrases.map(\.count).max() ?? 0
                let total = phrases.reduce(0) { $0 + $1.count }
                if let b = best, (longest, total) <= (b.1, b.2) { continue }
                best = (l, longest, total)
            }
        }
        return best?.0
    }

    /// Lower-case letters and digits, every other run of characters collapsed to one space.
    static func normalise(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        var space = true
        for ch in s.lowercased().unicodeScalars {
            if CharacterSet.alphanumerics.contains(ch) && ch.isASCII || ch == "+" {
                out.unicodeScalars.append(ch); space = false
            } else if !space {
                out.append(" "); space = true
            }
        }
        if out.hasSuffix(" ") { out.removeLast() }
        return out
    }

    /// Id comparison key: letters, digits and `+` only.
    static func key(_ s: String) -> String {
        String(s.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "+" }
            .map(Character.init))
    }
}
