import Foundation

/// Split GGUF models: shard names, the `split.*` keys and how a tensor list is
/// cut into shards, in the three layouts llama.cpp writes (docs/FORMATS.md).
public enum GGUFSplit {
    public static let noKey = "split.no"
    public static let countKey = "split.count"
    public static let tensorsCountKey = "split.tensors.count"
    public static let keys = [noKey, countKey, tensorsCountKey]

    /// What a file's `split.*` keys say: its index (0-based), the number of shards
    /// and the model's total tensor count.
    public struct Info: Equatable, Sendable {
        public let index: Int
        public let count: Int
        public let tensorCount: Int?
    }

    /// The `split.*` keys of `md`, or nil when it has no `split.count`.
    public static func info(_ md: GGUFMetadata, url: URL) throws -> Info? {
        guard let c = md[countKey] else { return nil }
        func int(_ key: String, _ v: GGUFValue?) throws -> Int? {
            guard let v else { return nil }
            guard v.type != .array, v.type != .string, v.type != .bool, v.type != .float32, v.type != .float64,
                  let i = v.intValue, i >= 0 else {
                throw SmeltError("\(url.path): metadata '\(key)' must be a non-negative integer, found \(v)")
            }
            return i
        }
        let count = try int(countKey, c) ?? 0
        let index = try int(noKey, md[noKey]) ?? 0
        guard count <= 1 || index < count else {
            throw SmeltError("\(url.path): split.no \(index) is not below split.count \(count)")
        }
        return Info(index: index, count: count, tensorCount: try int(tensorsCountKey, md[tensorsCountKey]))
    }

    /// `PREFIX-%05d-of-%05d.gguf` (llama.cpp's `llama_split_path`; `index` 0-based).
    public static func shardURL(prefix: String, index: Int, count: Int) -> URL {
        URL(fileURLWithPath: prefix + String(format: "-%05d-of-%05d.gguf", index + 1, count))
    }

    /// The prefix of a shard's path when it is named as shard `index` of `count`
    /// (llama.cpp's `llama_split_prefix`), else nil.
    public static func prefix(ofShard url: URL, index: Int, count: Int) -> String? {
        let suffix = String(format: "-%05d-of-%05d.gguf", index + 1, count)
        let p = url.path
        guard p.hasSuffix(suffix), p.count > suffix.count else { return nil }
        return String(p.dropLast(suffix.count))
    }

    /// The first shard's file name for a file named as any shard of `count`.
    public static func firstShardName(of url: URL, count: Int) -> String? {
        let name = url.lastPathComponent
        guard let r = name.range(of: #"-[0-9]{5}-of-[0-9]{5}\.gguf$"#, options: .regularExpression) else { return nil }
        return String(name[..<r.lowerBound]) + String(format: "-%05d-of-%05d.gguf", 1, count)
    }

    /// How a model is cut into shards.
    public enum Limit: Equatable, Sendable {
        /// At most this many tensors per shard.
        case tensors(Int)
        /// At most this many bytes of tensor data per shard (a tensor larger than that gets a shard of its own).
        case bytes(Int)

        /// Parses `--split-max-size`: a number of bytes with an optional unit K, M or G
        /// (powers of 1000, as llama.cpp's tools read them; KB/MB/GB too, and KiB/MiB/GiB for powers of 1024).
        public static func size(parsing s: String) throws -> Limit {
            let t = s.trimmingCharacters(in: .whitespaces)
            let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("TIB", 1 << 40),
                                          ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
                                          ("K", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000), ("B", 1)]
            var mult = 1, num = t
            for (u, m) in units where t.uppercased().hasSuffix(u) {
                mult = m; num = String(t.dropLast(u.count)); break
            }
            guard let n = Int(num.trimmingCharacters(in: .whitespaces)), n > 0 else {
                throw SmeltError("invalid --split-max-size '\(s)': expected a positive size such as 2G, 500M or 1000000")
            }
            let (v, o) = n.multipliedReportingOverflow(by: mult)
            guard !o else { throw SmeltError("invalid --split-max-size '\(s)': too large") }
            return .bytes(v)
        }
    }

    /// The layouts llama.cpp's tools write.
    public enum Layout: Sendable {
        /// llama-gguf-split (and `smelt split`, `smelt quantize --split-max-*`): sizes
        /// counted padded to the alignment; keys `split.no`, `split.tensors.count`,
        /// `split.count` appended to the metadata; names `PREFIX-0000k-of-0000n.gguf`
        /// even for one shard.
        case ggufSplit
        /// gguf-py's `GGUFWriter` (convert_hf_to_gguf.py --split-max-*): sizes unpadded;
        /// keys `split.no`, `split.count`, `split.tensors.count`; one shard is a
        /// plain file without split keys; names `STEM-0000k-of-0000n.gguf`.
        case ggufPy
    }

    /// Tensor counts per shard for tensors of `sizes` bytes under `limit`.
    public static func cut(sizes: [Int], limit: Limit, layout: Layout, alignment: Int = GGUF.defaultAlignment) throws -> [Int] {
        var shards: [Int] = [0]
        var current = 0
        for (i, n) in sizes.enumerated() {
            switch layout {
            case .ggufSplit:
                // split_strategy: the "imaginary" size of the shard with the next tensor (padded).
                let padded = GGUF.pad(n, alignment)
                let split: Bool
                switch limit {
                case let .bytes(max): split = current + padded > max
                case let .tensors(max): split = i > 0 && i % max == 0
                }
                if split {
                    guard shards[shards.count - 1] > 0 else {
                        throw SmeltError("one of the shards would hold no tensor: the split limit is too small (the first tensor takes \(padded) bytes)")
                    }
                    shards.append(0); current = padded
                } else { current += padded }
            case .ggufPy:
                if shards[shards.count - 1] > 0 {
                    let split: Bool
                    switch limit {
                    case let .bytes(max): split = current + n > max
                    case let .tensors(max): split = shards[shards.count - 1] >= max
                    }
                    if split { shards.append(0); current = 0 }
                }
                current += n
            }
            shards[shards.count - 1] += 1
        }
        return shards
    }

    /// The metadata of shard `index` of `count`: the model's metadata for the first
    /// shard, nothing for the others, with the split keys of `layout` appended
    /// (existing split keys are removed first).
    public static func shardMetadata(_ md: GGUFMetadata, index: Int, count: Int, totalTensors: Int, layout: Layout) -> GGUFMetadata {
        var out = GGUFMetadata()
        if index == 0 { out = md; for k in keys { out[k] = nil } }
        if layout == .ggufPy && count == 1 { return out }
        let no = GGUFValue.uint16(UInt16(truncatingIfNeeded: index)), n = GGUFValue.uint16(UInt16(truncatingIfNeeded: count))
        let total = GGUFValue.int32(Int32(truncatingIfNeeded: totalTensors))
        switch layout {
        case .ggufSplit: out[noKey] = no; out[tensorsCountKey] = total; out[countKey] = n
        case .ggufPy: out[noKey] = no; out[countKey] = n; out[tensorsCountKey] = total
        }
        return out
    }

    /// The file plans of a split output: `tensors` cut by `limit` in `layout`, named
    /// after `url` (gguf-split: `url` is the prefix; gguf-py: the stem of `url` is).
    public static func plan(url: URL, metadata: GGUFMetadata, tensors: [GGUFTensorDescriptor],
                            limit: Limit, layout: Layout) throws -> [GGUFWriter.FilePlan] {
        let alignment = try GGUFWriter.alignment(of: metadata)
        var sizes: [Int] = []
        for t in tensors {
            guard let n = t.byteCount else { throw SmeltError("tensor '\(t.name)': bad shape \(t.shape) for \(t.type.name)") }
            sizes.append(n)
        }
        let counts = try cut(sizes: sizes, limit: limit, layout: layout, alignment: alignment)
        let prefix: String
        switch layout {
        case .ggufSplit: prefix = url.path
        case .ggufPy:
            if counts.count == 1 { return [GGUFWriter.FilePlan(url: url, metadata: metadata, tensors: tensors)] }
            prefix = url.deletingPathExtension().path
        }
        return files(prefix: prefix, metadata: metadata, tensors: tensors, counts: counts, layout: layout)
    }

    /// File plans for explicit per-shard tensor counts (`counts` sums to `tensors.count`).
    public static func files(prefix: String, metadata: GGUFMetadata, tensors: [GGUFTensorDescriptor],
                             counts: [Int], layout: Layout) -> [GGUFWriter.FilePlan] {
        var plans: [GGUFWriter.FilePlan] = []
        var start = 0
        for (i, c) in counts.enumerated() {
            plans.append(GGUFWriter.FilePlan(
                url: shardURL(prefix: prefix, index: i, count: counts.count),
                metadata: shardMetadata(metadata, index: i, count: counts.count, totalTensors: tensors.count, layout: layout),
                tensors: Array(tensors[start..<(start + c)])))
            start += c
        }
        return plans
    }
}

extension GGUFSplit {
    /// `smelt split`: the files llama-gguf-split writes for `model` cut by `limit`
    /// (tensors in the model's order, the first shard with all metadata),
    /// named `PREFIX-0000k-of-0000n.gguf`.
    public static func splitPlan(_ model: GGUFFile, prefix: String, limit: Limit) throws -> [GGUFWriter.FilePlan] {
        try plan(url: URL(fileURLWithPath: prefix), metadata: model.metadata,
                 tensors: model.tensors.map { GGUFTensorDescriptor(name: $0.name, shape: $0.shape, type: $0.type) },
                 limit: limit, layout: .ggufSplit)
    }

    /// `smelt merge`: the file llama-gguf-split --merge writes for a split model: the first
    /// shard's metadata with `split.count` set to 0 (moved last, as ggml's `gguf_set_val`
    /// does), then every tensor, shard after shard.
    public static func mergePlan(_ model: GGUFFile, output: URL) throws -> GGUFWriter.FilePlan {
        guard let info = try info(model.metadata, url: model.url), info.count >= 1 else {
            throw SmeltError("\(model.url.path): not a split model (no split.count); nothing to merge")
        }
        var md = model.metadata
        md[countKey] = nil
        md[countKey] = .uint16(0)
        return GGUFWriter.FilePlan(url: output, metadata: md,
                                   tensors: model.tensors.map { GGUFTensorDescriptor(name: $0.name, shape: $0.shape, type: $0.type) })
    }

    /// Writes `files` with the tensor data of `model` (looked up by name); refuses to
    /// overwrite an existing file. Nothing is left behind on failure.
    public static func write(_ files: [GGUFWriter.FilePlan], from model: GGUFFile,
                             progress: ((Int, Int) -> Void)? = nil) throws {
        for f in files where FileManager.default.fileExists(atPath: f.url.path) {
            throw SmeltError("\(f.url.path) already exists; remove it first")
        }
        let writer = try GGUFWriter(files: files)
        let total = writer.descriptors.reduce(0) { $0 + ($1.byteCount ?? 0) }
        var done = 0
        do {
            for d in writer.descriptors {
                guard let t = model.tensor(named: d.name), t.type == d.type, t.shape == d.shape else {
                    throw SmeltError("\(model.url.path): tensor '\(d.name)' is missing or differs")
                }
                try writer.write(model.data(for: t))
                model.dropPages(for: t)
                done += t.byteCount
                progress?(done, total)
            }
            try writer.finish()
        } catch {
            writer.abort()
            throw error
        }
    }
}
