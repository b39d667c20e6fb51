import Foundation
import SmeltFormats

/// A checkpoint's `config.json`, with `text_config` merged into the root as
/// llama.cpp's converter does, the config class's defaults filled in
/// (`ConfigDefaults`), and lookups by a list of candidate names.
public struct HFConfig: Sendable {
    /// The merged hyperparameters, in file order.
    public let json: JSONValue
    /// `architectures[0]`.
    public let architecture: String

    public init(folder: URL) throws {
        let url = folder.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SmeltError("\(folder.path): no config.json (not a Hugging Face checkpoint folder)")
        }
        try self.init(json: JSONValue.parse(contentsOf: url), source: url.path)
        try HyperparameterLimits.check(self, source: url.path)
    }

    public init(json raw: JSONValue, source: String = "config.json") throws {
        guard var members = raw.objectValue else { throw SmeltError("\(source): not a JSON object") }
        if let text = raw["text_config"]?.objectValue {
            for (k, v) in text {
                if let i = members.firstIndex(where: { $0.0 == k }) { members[i].1 = v } else { members.append((k, v)) }
            }
        }
        // The defaults transformers' config class fills in (llama.cpp reads config.json through AutoConfig).
        json = .object(ConfigDefaults.apply(to: members))
        guard let arch = raw["architectures"]?.arrayValue?.first?.stringValue else {
            throw SmeltError("\(source): no \"architectures\" entry: cannot tell which model this is")
        }
        architecture = arch
    }

    public subscript(key: String) -> JSONValue? {
        guard let v = json[key], !v.isNull else { return nil }
        return v
    }
    /// The first of `keys` present (and not null).
    public func find(_ keys: [String]) -> JSONValue? {
        for k in keys { if let v = self[k] { return v } }
        return nil
    }
    public func int(_ keys: String...) -> Int? { find(keys)?.intValue }
    public func double(_ keys: String...) -> Double? { find(keys)?.doubleValue }

    /// An integer that must be present.
    public func requireInt(_ keys: String...) throws -> Int {
        guard let v = find(keys)?.intValue else { throw SmeltError("config.json: missing integer \(keys.joined(separator: " / "))") }
        return v
    }
}
