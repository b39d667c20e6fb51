import Foundation

/// The weights of a Hugging Face checkpoint folder: one `model.safetensors`,
/// or shards listed by `model.safetensors.index.json` (or, without an index,
/// every `*.safetensors` file in the folder). Validates that every indexed
/// tensor is in its shard, that no tensor appears twice and that no shard
/// holds tensors the index does not list.
public final class SafetensorsCheckpoint: @unchecked Sendable {
    public let folder: URL
    /// Shards in name order.
    public let files: [SafetensorsFile]
    /// All tensors: for an indexed checkpoint in shard order then header order.
    public let tensors: [SafetensorsTensor]
    private let byName: [String: Int]

    public init(folder: URL) throws {
        self.folder = folder
        let fm = FileManager.default
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        var files: [SafetensorsFile] = []
        var all: [SafetensorsTensor] = []
        var names: [String: Int] = [:]
        func add(_ f: SafetensorsFile) throws {
            for t in f.tensors {
                if let prev = names[t.name] {
                    throw SmeltError("tensor '\(t.name)' is in both \(all[prev].url.lastPathComponent) and \(f.url.lastPathComponent)")
                }
                names[t.name] = all.count
                all.append(t)
            }
        }
        if fm.fileExists(atPath: index.path) {
            let json = try JSONValue.parse(contentsOf: index)
            guard let map = json["weight_map"]?.objectValue else { throw SmeltError("\(index.path): no weight_map") }
            var shardOf: [String: String] = [:]
            var shardNames: [String] = []
            for (t, s) in map {
                guard let s = s.stringValue else { throw SmeltError("\(index.path): weight_map entry '\(t)' is not a file name") }
                guard shardOf[t] == nil else { throw SmeltError("\(index.path): tensor '\(t)' is listed twice") }
                guard !s.contains("/") && s != ".." else { throw SmeltError("\(index.path): shard name '\(s)' is not a plain file name") }
                shardOf[t] = s
                if !shardNames.contains(s) { shardNames.append(s) }
            }
            shardNames.sort()
            for s in shardNames {
                let u = folder.appendingPathComponent(s)
                guard fm.fileExists(atPath: u.path) else { throw SmeltError("\(index.path) names shard \(s), which is missing") }
                let f = try SafetensorsFile(url: u)
                for t in f.tensors where shardOf[t.name] != s {
                    if let other = shardOf[t.name] {
                        throw SmeltError("\(u.path): tensor '\(t.name)' is here but the index puts it in \(other)")
                    }
                    throw SmeltError("\(u.path): tensor '\(t.name)' is not listed in model.safetensors.index.json")
                }
                files.append(f)
                try add(f)
            }
            for (t, s) in map where names[t] == nil {
                throw SmeltError("\(folder.appendingPathComponent(s.stringValue!).path): tensor '\(t)' is listed in the index but absent from the shard")
            }
        } else {
            let entries = (try? fm.contentsOfDirectory(atPath: folder.path)) ?? []
            let st = entries.filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !st.isEmpty else {
                let hint = entries.contains { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") } ? " (PyTorch .bin checkpoints are not supported: convert them to safetensors first)" : ""
                throw SmeltError("\(folder.path): no .safetensors files\(hint)")
            }
            for s in st {
                let f = try SafetensorsFile(url: folder.appendingPathComponent(s))
                files.append(f)
                try add(f)
            }
        }
        self.files = files
        tensors = all
        byName = names
    }

    /// The tensor named `name`, if present.
    public func tensor(named name: String) -> SafetensorsTensor? { byName[name].map { tensors[$0] } }

    /// True when `url` is a folder that looks like an HF checkpoint.
    public static func isCheckpointFolder(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
    }
}
