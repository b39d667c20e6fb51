import Foundation

/// What `smelt inspect` shows of a GGUF file, a safetensors file or an HF
/// checkpoint folder: metadata and a tensor table, as plain values.
public struct InspectReport: Sendable {
    /// One tensor row.
    public struct Tensor: Sendable {
        public let name: String
        /// ggml type name for GGUF, dtype for safetensors.
        public let type: String
        /// GGUF: ggml order (ne0 first). Safetensors: PyTorch order.
        public let shape: [Int]
        public let bytes: Int
        /// Absolute byte offset in its file.
        public let offset: Int
        /// Shard file name (checkpoint folders and split GGUF models only).
        public let file: String?
    }

    /// "gguf", "safetensors" or "hf-checkpoint".
    public let format: String
    public let path: String
    /// Metadata in file order. GGUF values are kept typed; safetensors and
    /// config.json values are JSON.
    public let metadata: [(String, JSONValue, String)]  // key, value, type name
    public let tensors: [Tensor]
    private let ggufValues: [String: GGUFValue]
    /// GGUF version and data alignment (GGUF files only).
    public private(set) var version: Int? = nil
    public private(set) var alignment: Int? = nil
    /// Files of a split GGUF model (1 otherwise).
    public private(set) var shardCount = 1

    /// Reads `url` (a .gguf file, a .safetensors file or a folder).
    public init(url: URL) throws {
        path = url.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SmeltError("\(url.path): no such file or folder")
        }
        if isDir.boolValue {
            format = "hf-checkpoint"
            let ck = try SafetensorsCheckpoint(folder: url)
            var md: [(String, JSONValue, String)] = []
            let cfg = url.appendingPathComponent("config.json")
            if FileManager.default.fileExists(atPath: cfg.path), let obj = try JSONValue.parse(contentsOf: cfg).objectValue {
                md += obj.map { ("config.\($0.0)", $0.1, "json") }
            }
            for f in ck.files { md += f.metadata.map { ("\(f.url.lastPathComponent).__metadata__.\($0.0)", .string($0.1), "string") } }
            metadata = md
            tensors = ck.tensors.map { Tensor(name: $0.name, type: $0.dtype.rawValue, shape: $0.shape, bytes: $0.byteCount, offset: $0.range.lowerBound, file: $0.url.lastPathComponent) }
            ggufValues = [:]
            return
        }
        let head = try FileHandle(forReadingFrom: url).read(upToCount: 4) ?? Data()
        if head == Data("GGUF".utf8) {
            format = "gguf"
            // A later shard of a split model is shown alone; the first shard shows the whole model.
            var g = try GGUFFile(url: url, followSplits: false)
            if let si = try GGUFSplit.info(g.metadata, url: url), si.count > 1, si.index == 0 { g = try GGUFFile(url: url) }
            version = Int(g.version)
            alignment = g.alignment
            metadata = g.metadata.map { ($0.key, $0.value.json(), $0.value.type == .array ? "array" : $0.value.type.name.lowercased()) }
            ggufValues = Dictionary(uniqueKeysWithValues: g.metadata.map { ($0.key, $0.value) })
            // A split model is shown whole (given its first shard); each tensor names its shard.
            tensors = g.tensors.map { Tensor(name: $0.name, type: $0.type.name, shape: $0.shape, bytes: $0.byteCount, offset: g.fileOffset(of: $0),
                                             file: g.isSplit ? g.shards[$0.shard].url.lastPathComponent : nil) }
            shardCount = g.shards.count
        } else if url.pathExtension == "safetensors" {
            format = "safetensors"
            let f = try SafetensorsFile(url: url)
            metadata = f.metadata.map { ($0.0, .string($0.1), "string") }
            tensors = f.tensors.map { Tensor(name: $0.name, type: $0.dtype.rawValue, shape: $0.shape, bytes: $0.byteCount, offset: $0.range.lowerBound, file: nil) }
            ggufValues = [:]
        } else {
            throw SmeltError("\(url.path): neither a GGUF file, a .safetensors file nor a checkpoint folder")
        }
    }


    /// Human-readable report; arrays longer than `maxItems` are abbreviated.
    public func text(maxItems: Int = 8) -> String {
        var out = "\(path): \(format)\(version.map { " v\($0), alignment \(alignment!)" } ?? "")\(shardCount > 1 ? ", split model of \(shardCount) files" : ""), \(metadata.count) metadata keys, \(tensors.count) tensors\n\n"
        let kw = min(48, metadata.map { $0.0.count }.max() ?? 0)
        out += "metadata:\n"
        for (i, (k, v, t)) in metadata.enumerated() {
            let val: String
            if let g = ggufValues[k] { val = g.render(maxItems: maxItems) } else { val = InspectReport.abbreviate(v, maxItems) }
            let shown = val.count > 160 ? String(val.prefix(157)) + "..." : val
            out += "\(lpad(String(i + 1), 5)): \(rpad(t, 7)) \(rpad(k, kw)) = \(shown)\n"
        }
        if let name = ggufValues["smelt.recipe.name"]?.stringValue {
            // Provenance written by `smelt quantize --recipe / --target-bpw` (docs/RECIPES.md).
            let src = ggufValues["smelt.recipe.source"]?.stringValue ?? "?"
            let ver = ggufValues["smelt.version"]?.stringValue ?? "?"
            out += "\nrecipe: \(name) (from \(src), smelt \(ver))\n"
            for l in (ggufValues["smelt.recipe.text"]?.stringValue ?? "").split(separator: "\n", omittingEmptySubsequences: false) {
                out += "  | \(l)\n"
            }
        }
        out += "\ntensors:\n"
        let nw = min(48, tensors.map { $0.name.count }.max() ?? 4)
        let hasFile = tensors.contains { $0.file != nil }
        out += "\(lpad("#", 5))  \(rpad("name", nw))  \(rpad("type", 8)) \(rpad("shape", 22)) \(lpad("bytes", 12)) \(lpad("offset", 12))\(hasFile ? "  file" : "")\n"
        var total = 0
        for (i, t) in tensors.enumerated() {
            total += t.bytes
            let shape = t.shape.map(String.init).joined(separator: " x ")
            out += "\(lpad(String(i + 1), 5))  \(rpad(t.name, nw))  \(rpad(t.type, 8)) \(rpad(shape, 22)) \(lpad(String(t.bytes), 12)) \(lpad(String(t.offset), 12))\(t.file.map { "  " + $0 } ?? "")\n"
        }
        let params = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        out += String(format: "\n%d tensors, %d parameters, %.2f MiB of tensor data\n", tensors.count, params, Double(total) / 1048576)
        return out
    }

    /// `{"format", "path", "metadata": {key: value}, "tensors": [{name, type, shape, bytes, offset}]}`.
    public func json() -> JSONValue {
        .object([
            ("format", .string(format)),
            ("path", .string(path)),
        ] + (version.map { [("version", JSONValue.int(Int64($0))), ("alignment", .int(Int64(alignment!)))] } ?? []) + [
            ("metadata", .object(metadata.map { ($0.0, $0.1) })),
            ("tensors", .array(tensors.map { t in
                var o: [(String, JSONValue)] = [("name", .string(t.name)), ("type", .string(t.type)),
                                               ("shape", .array(t.shape.map { .int(Int64($0)) })),
                                               ("bytes", .int(Int64(t.bytes))), ("offset", .int(Int64(t.offset)))]
                if let f = t.file { o.append(("file", .string(f))) }
                return .object(o)
            })),
        ])
    }

    static func abbreviate(_ v: JSONValue, _ maxItems: Int) -> String {
        if case let .array(a) = v, a.count > maxItems {
            return "[" + a.prefix(maxItems).map { $0.serialized() }.joined(separator: ", ") + ", ... (\(a.count) items)]"
        }
        return v.serialized()
    }
}

/// Pads on the right to `n` characters (never truncates).
func rpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
/// Pads on the left to `n` characters (never truncates).
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
