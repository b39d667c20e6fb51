import Foundation
import SmeltFormats

/// compressed-tensors' `QuantizationConfig`: the `quantization_config` object of a checkpoint's
/// config.json (`config_groups`, `ignore`, `format`, `quantization_status`, …), serialised as
/// compressed-tensors / transformers write it (keys sorted).
public struct CTQuantizationConfig: Equatable, Sendable {
    /// `config_groups` in order ("group_0", "group_1", …).
    public var groups: [(name: String, scheme: CTQuantizationScheme)]
    /// Module names (or `re:` patterns) that are not quantized.
    public var ignore: [String]
    /// The global format: the groups' format when they share one, else "mixed-precision".
    public var format: String
    public var quantizationStatus: String
    public var quantMethod: String
    /// compressed-tensors' version, written as `version` when known.
    public var version: String?

    public init(groups: [(name: String, scheme: CTQuantizationScheme)], ignore: [String],
                quantizationStatus: String = "compressed", version: String? = CTQuantizationConfig.referenceVersion) {
        self.groups = groups; self.ignore = ignore; self.quantizationStatus = quantizationStatus
        self.quantMethod = "compressed-tensors"; self.version = version
        let formats = Set(groups.map { ($0.scheme.format ?? $0.scheme.inferredFormat).rawValue })
        format = formats.count == 1 ? (formats.first ?? "dense") : CTCompressionFormat.mixedPrecision.rawValue
    }

    /// The compressed-tensors release whose serialisation Smelt reproduces (docs/COMPRESSED-TENSORS.md).
    public static let referenceVersion = "0.19.0"

    public static func == (a: CTQuantizationConfig, b: CTQuantizationConfig) -> Bool {
        a.json == b.json
    }

    /// The `quantization_config` object.
    public var json: JSONValue {
        var m: [(String, JSONValue)] = [
            ("config_groups", .object(groups.map { ($0.name, $0.scheme.json) })),
            ("format", .string(format)),
            ("global_compression_ratio", .null),
            ("ignore", .array(ignore.map { .string($0) })),
            ("kv_cache_scheme", .null),
            ("quant_method", .string(quantMethod)),
            ("quantization_status", .string(quantizationStatus)),
            // llm-compressor's ModelCompressor writes these (no sparsity, no transforms)
            ("sparsity_config", .object([])),
            ("transform_config", .object([])),
        ]
        if let version { m.append(("version", .string(version))) }
        m.sort { $0.0 < $1.0 }
        return .object(m)
    }

    /// Reads `quantization_config` (`context` names the file in errors).
    public init(json: JSONValue, context: String) throws {
        guard json.objectValue != nil else { throw SmeltError("\(context): quantization_config is not an object") }
        let method = json["quant_method"]?.stringValue ?? ""
        guard method == "compressed-tensors" else {
            throw SmeltError("\(context): quant_method '\(method)' is not compressed-tensors")
        }
        guard let cg = json["config_groups"]?.objectValue, !cg.isEmpty else {
            throw SmeltError("\(context): quantization_config has no config_groups")
        }
        var groups: [(name: String, scheme: CTQuantizationScheme)] = []
        for (name, v) in cg {
            if v.arrayValue != nil {   // a preset name mapped to its targets
                guard let p = CTSchemePreset(name: name) else { throw SmeltError("\(context): config group '\(name)' is not a preset Smelt knows") }
                var s = p.scheme(targets: v.arrayValue?.compactMap { $0.stringValue } ?? [])
                s.format = nil
                groups.append((name, s))
            } else {
                groups.append((name, try CTQuantizationScheme(json: v, context: "\(context) config group '\(name)'")))
            }
        }
        if let kv = json["kv_cache_scheme"], !kv.isNull { throw SmeltError("\(context): kv_cache_scheme is not supported") }
        for k in ["sparsity_config", "transform_config"] {
            if let v = json[k], !v.isNull, !(v.objectValue?.isEmpty ?? false) { throw SmeltError("\(context): \(k) is not supported (only quantized checkpoints are read)") }
        }
        ignore = json["ignore"]?.arrayValue?.compactMap { $0.stringValue } ?? []
        format = json["format"]?.stringValue ?? "dense"
        quantizationStatus = json["quantization_status"]?.stringValue ?? "initialized"
        quantMethod = method
        version = json["version"]?.stringValue
        self.groups = groups
        for i in self.groups.indices where self.groups[i].scheme.format == nil {
            if let f = CTCompressionFormat(rawValue: format), f != .mixedPrecision { self.groups[i].scheme.format = f }
        }
    }

    /// The group whose targets match a linear module (compressed-tensors' `match_name` / class match):
    /// an exact name, a `re:` regular expression searched from the start of the name, or the class "Linear";
    /// nil when the module is ignored or no group targets it.
    public func group(forLinear module: String) -> Int? {
        if ignore.contains(where: { Self.matches($0, module) }) { return nil }
        return groups.firstIndex { $0.scheme.targets.contains { $0 == "Linear" || Self.matches($0, module) } }
    }

    /// compressed-tensors' name matching: `re:PATTERN` is `re.match` (anchored at the start), anything
    /// else must equal the name.
    public static func matches(_ target: String, _ name: String) -> Bool {
        if target.hasPrefix("re:") {
            let p = String(target.dropFirst(3))
            guard let re = try? NSRegularExpression(pattern: p) else { return false }
            let ns = name as NSString
            return re.firstMatch(in: name, options: [.anchored], range: NSRange(location: 0, length: ns.length)) != nil
        }
        return target == name
    }
}
