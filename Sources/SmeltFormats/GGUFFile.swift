import Foundation

/// One tensor's entry in a GGUF file.
public struct GGUFTensorInfo: Equatable, Sendable {
    public let name: String
    /// Dimensions in ggml order: `shape[0]` is the row length (ne0).
    public let shape: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the data section.
    public let offset: Int
    /// Bytes of data (whole blocks).
    public let byteCount: Int
    /// Index of the file that holds the data in a split model (`GGUFFile.shards`); 0 otherwise.
    public let shard: Int

    public init(name: String, shape: [Int], type: GGMLType, offset: Int, byteCount: Int, shard: Int = 0) {
        self.name = name; self.shape = shape; self.type = type; self.offset = offset
        self.byteCount = byteCount; self.shard = shard
    }

    public var elementCount: Int { shape.reduce(1, *) }
    /// Row length (ne0) and number of rows (product of the other dimensions).
    public var rowLength: Int { shape.first ?? 1 }
    public var rowCount: Int { shape.dropFirst().reduce(1, *) }
}

/// The GGUF constants Smelt writes and accepts.
public enum GGUF {
    public static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    public static let version: UInt32 = 3
    public static let defaultAlignment = 32
    public static let maxDimensions = 4  // GGML_MAX_DIMS
    /// Longest tensor name read (llama.cpp's own limit, GGML_MAX_NAME, is 64 bytes).
    public static let maxNameLength = 256

    /// Bytes of a tensor of `shape` (ggml order) and `type`, checked for overflow
    /// and for a row length that is a whole number of blocks.
    public static func byteCount(shape: [Int], type: GGMLType) -> Int? {
        guard let ne0 = shape.first, ne0 % type.blockSize == 0 else { return shape.isEmpty ? type.bytesPerBlock : nil }
        var n = ne0 / type.blockSize * type.bytesPerBlock
        for d in shape.dropFirst() {
            let (r, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = r
        }
        return n
    }

    @inline(__always) static func pad(_ x: Int, _ a: Int) -> Int { (x + a - 1) / a * a }
}

/// One file of a GGUF model: its own header, as parsed and validated.
public struct GGUFShard: @unchecked Sendable {
    public let url: URL
    public let version: UInt32
    /// This file's metadata (for the 2nd… shard of a split model only the `split.*` keys).
    public let metadata: GGUFMetadata
    /// This file's tensors (offsets relative to its data section, `shard` = its index).
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute file offset of the data section.
    public let dataOffset: Int
    let map: MappedFile
}

/// A GGUF model, memory-mapped: one file, or all shards of a split model
/// (`NAME-00001-of-0000N.gguf` … with `split.count`, `split.no`,
/// `split.tensors.count`, as llama-gguf-split, llama-quantize --keep-split and
/// convert_hf_to_gguf.py --split-max-* write them) read as one model from its
/// first shard. Parsing validates every count, length, type, dimension, offset
/// and size against the file before trusting it; tensor data is only touched
/// when asked for.
public final class GGUFFile: @unchecked Sendable {
    /// The file given (the first shard of a split model).
    public let url: URL
    public let version: UInt32
    /// The first file's metadata: all of the model's keys (and its `split.*` keys when split).
    public let metadata: GGUFMetadata
    /// Every tensor of the model, shard after shard, each in its file's order.
    public let tensors: [GGUFTensorInfo]
    /// The first file's alignment.
    public let alignment: Int
    /// Absolute offset of the first file's data section.
    public let dataOffset: Int
    /// The files of the model: one, or each shard in order.
    public let shards: [GGUFShard]
    private let byName: [String: Int]

    /// Opens `url`; when it is the first shard of a split model (and `followSplits`),
    /// every shard is opened and checked: a missing shard, one of another model
    /// (different `split.count` / `split.tensors.count`, wrong `split.no`), tensors
    /// in two shards or a total that differs from `split.tensors.count` are errors.
    public init(url: URL, followSplits: Bool = true) throws {
        self.url = url
        let first = try GGUFFile.parse(url: url, shard: 0)
        version = first.version
        metadata = first.metadata
        alignment = first.alignment
        dataOffset = first.dataOffset
        var shards = [first]
        if followSplits, let split = try GGUFSplit.info(first.metadata, url: url), split.count > 1 {
            guard split.index == 0 else {
                throw SmeltError("\(url.path): this is shard \(split.index + 1) of \(split.count) of a split model; give the first shard (\(GGUFSplit.firstShardName(of: url, count: split.count) ?? "NAME-00001-of-\(String(format: "%05d", split.count)).gguf"))")
            }
            guard let prefix = GGUFSplit.prefix(ofShard: url, index: 0, count: split.count) else {
                throw SmeltError("\(url.path): first shard of a split model of \(split.count) files, but its name does not end in -00001-of-\(String(format: "%05d", split.count)).gguf, so the other shards cannot be found")
            }
            for i in 1..<split.count {
                let u = GGUFSplit.shardURL(prefix: prefix, index: i, count: split.count)
                guard FileManager.default.fileExists(atPath: u.path) else {
                    throw SmeltError("\(u.path): missing shard \(i + 1) of \(split.count) of the split model \(url.lastPathComponent)")
                }
                let s = try GGUFFile.parse(url: u, shard: i)
                guard let si = try GGUFSplit.info(s.metadata, url: u) else {
                    throw SmeltError("\(u.path): not a shard of a split model (no split.count / split.no), expected shard \(i + 1) of \(split.count) of \(url.lastPathComponent)")
                }
                guard si.index == i, si.count == split.count, si.tensorCount == split.tensorCount else {
                    throw SmeltError("\(u.path): shard of another model: split.no \(si.index), split.count \(si.count), split.tensors.count \(si.tensorCount.map(String.init) ?? "absent"); expected \(i), \(split.count), \(split.tensorCount.map(String.init) ?? "absent") as in \(url.lastPathComponent)")
                }
                shards.append(s)
            }
        }
        var all: [GGUFTensorInfo] = []
        var names: [String: Int] = [:]
        for s in shards {
            for t in s.tensors {
                if let prev = names[t.name] {
                    throw SmeltError("\(s.url.path): tensor '\(t.name)' is also in \(shards[all[prev].shard].url.lastPathComponent): shards of different models?")
                }
                names[t.name] = all.count
                all.append(t)
            }
        }
        if shards.count > 1, let expected = try GGUFSplit.info(first.metadata, url: url)?.tensorCount, expected != all.count {
            throw SmeltError("\(url.path): split.tensors.count is \(expected) but the \(shards.count) shards hold \(all.count) tensors")
        }
        self.shards = shards
        tensors = all
        byName = names
    }

    /// Parses and validates one file.
    static func parse(url: URL, shard: Int) throws -> GGUFShard {
        let map = try MappedFile(url: url)
        var r = ByteReader(map.bytes, what: url.path)
        let magic = try r.read(UInt32.self, "magic")
        guard magic == GGUF.magic else {
            throw SmeltError("\(url.path): not a GGUF file (magic \(String(format: "0x%08x", magic)))")
        }
        let version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            throw SmeltError("\(url.path): unsupported GGUF version \(version) (Smelt reads versions 2 and 3)")
        }
        let nTensors = try r.read(UInt64.self, "tensor count")
        let nKV = try r.read(UInt64.self, "metadata count")
        // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes, each tensor info 8+4+8+4+8.
        guard nKV <= UInt64(r.remaining / 13) else { throw r.fail("truncated or corrupt: metadata count \(nKV) cannot fit in the file") }
        guard nTensors <= UInt64(r.remaining / 32) else { throw r.fail("truncated or corrupt: tensor count \(nTensors) cannot fit in the file") }

        var md = GGUFMetadata()
        for k in 0..<Int(nKV) {
            let key = try r.readString("key of metadata entry \(k)")
            guard md[key] == nil else { throw r.fail("duplicate metadata key '\(key)'") }
            let rawType = try r.read(UInt32.self, "type of '\(key)'")
            guard let t = GGUFValueType(rawValue: rawType) else { throw r.fail("metadata '\(key)' has unknown value type \(rawType)") }
            md[key] = try GGUFFile.readValue(&r, type: t, key: key, depth: 0)
        }

        var align = GGUF.defaultAlignment
        if let a = md["general.alignment"] {
            guard case let .uint32(v) = a, v > 0, v & (v - 1) == 0 else {
                throw SmeltError("\(url.path): general.alignment must be a power-of-two uint32, found \(a)")
            }
            align = Int(v)
        }

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(Int(nTensors))
        var names: [String: Int] = [:]
        for k in 0..<Int(nTensors) {
            let name = try r.readString("name of tensor \(k)")
            guard name.utf8.count <= GGUF.maxNameLength else {
                throw r.fail("tensor \(k) has a name of \(name.utf8.count) bytes (at most \(GGUF.maxNameLength))")
            }
            guard names[name] == nil else { throw r.fail("duplicate tensor name '\(name)'") }
            let nDims = try r.read(UInt32.self, "dimension count of '\(name)'")
            guard nDims >= 1, nDims <= UInt32(GGUF.maxDimensions) else {
                throw r.fail("tensor '\(name)' has \(nDims) dimensions (1 to \(GGUF.maxDimensions) allowed)")
            }
            var shape: [Int] = []
            for d in 0..<Int(nDims) {
                let v = try r.read(UInt64.self, "dimension \(d) of '\(name)'")
                guard v <= UInt64(Int32.max) * 1024 else { throw r.fail("tensor '\(name)' dimension \(d) is \(v)") }
                shape.append(Int(v))
            }
            let rawType = try r.read(UInt32.self, "type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else { throw r.fail("tensor '\(name)' has unknown ggml type \(rawType)") }
            guard let bytes = GGUF.byteCount(shape: shape, type: type) else {
                throw r.fail("tensor '\(name)': shape \(shape) does not fit type \(type) (row length must be a multiple of \(type.blockSize)) or overflows")
            }
            if bytes == 0 {   // no elements: the other dimensions may not ask for billions of rows
                var extent = 1
                for d in shape where d > 1 {
                    let (x, o) = extent.multipliedReportingOverflow(by: d)
                    guard !o, x <= 1 << 24 else { throw r.fail("tensor '\(name)' has no elements but shape \(shape)") }
                    extent = x
                }
            }
            let off = try r.read(UInt64.self, "offset of '\(name)'")
            guard off <= UInt64(Int.max / 2), Int(off) % align == 0 else {
                throw r.fail("tensor '\(name)' offset \(off) is not a multiple of the alignment \(align)")
            }
            names[name] = infos.count
            infos.append(GGUFTensorInfo(name: name, shape: shape, type: type, offset: Int(off), byteCount: bytes, shard: shard))
        }
        let dataOffset = GGUF.pad(r.pos, align)
        guard infos.isEmpty || dataOffset <= map.count else {
            throw SmeltError("\(url.path): truncated: the data section would start at byte \(dataOffset), past the end of the file (\(map.count) bytes)")
        }
        let dataSize = map.count - min(dataOffset, map.count)
        for t in infos {
            let (end, o) = t.offset.addingReportingOverflow(t.byteCount)
            guard !o, end <= dataSize else {
                throw SmeltError("\(url.path): tensor '\(t.name)' (\(t.byteCount) bytes at data offset \(t.offset)) extends past the end of the file (data section has \(dataSize) bytes)")
            }
        }
        // Overlapping tensors are corrupt.
        let sorted = infos.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw SmeltError("\(url.path): tensors '\(a.name)' and '\(b.name)' overlap")
        }
        return GGUFShard(url: url, version: version, metadata: md, tensors: infos, alignment: align,
                         dataOffset: dataOffset, map: map)
    }

    static func readValue(_ r: inout ByteReader, type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try r.read(UInt8.self, key))
        case .int8: return .int8(try r.read(Int8.self, key))
        case .uint16: return .uint16(try r.read(UInt16.self, key))
        case .int16: return .int16(try r.read(Int16.self, key))
        case .uint32: return .uint32(try r.read(UInt32.self, key))
        case .int32: return .int32(try r.read(Int32.self, key))
        case .float32: return .float32(Float(bitPattern: try r.read(UInt32.self, key)))
        case .float64: return .float64(Double(bitPattern: try r.read(UInt64.self, key)))
        case .uint64: return .uint64(try r.read(UInt64.self, key))
        case .int64: return .int64(try r.read(Int64.self, key))
        case .bool:
            let b = try r.read(UInt8.self, key)
            guard b <= 1 else { throw r.fail("metadata '\(key)': bool value \(b)") }
            return .bool(b == 1)
        case .string: return .string(try r.readString("value of '\(key)'"))
        case .array:
            guard depth < 8 else { throw r.fail("metadata '\(key)': arrays nested too deeply") }
            let rawType = try r.read(UInt32.self, "array type of '\(key)'")
            guard let et = GGUFValueType(rawValue: rawType) else { throw r.fail("metadata '\(key)': unknown array element type \(rawType)") }
            let n = try r.read(UInt64.self, "array length of '\(key)'")
            guard n <= UInt64(r.remaining / et.minimumSize) else {
                throw r.fail("metadata '\(key)': array of \(n) \(et.name) values cannot fit in the \(r.remaining) bytes left")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { items.append(try readValue(&r, type: et, key: key, depth: depth + 1)) }
            return .array(et, items)
        }
    }

    /// The tensor named `name`, if present.
    public func tensor(named name: String) -> GGUFTensorInfo? { byName[name].map { tensors[$0] } }

    /// Whether the model is split over several files.
    public var isSplit: Bool { shards.count > 1 }

    /// The bytes of a tensor (memory-mapped; valid while this file is alive).
    public func data(for t: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let s = shards[t.shard]
        return UnsafeRawBufferPointer(rebasing: s.map.bytes[(s.dataOffset + t.offset)..<(s.dataOffset + t.offset + t.byteCount)])
    }

    /// Releases the pages of a tensor once it has been processed (streaming).
    public func dropPages(for t: GGUFTensorInfo) {
        dropPages(for: t, bytes: 0..<t.byteCount)
    }

    /// Releases the pages of bytes `bytes` (relative to the start of the tensor's data).
    public func dropPages(for t: GGUFTensorInfo, bytes: Range<Int>) {
        let s = shards[t.shard], base = s.dataOffset + t.offset
        s.map.dropPages((base + bytes.lowerBound)..<(base + min(bytes.upperBound, t.byteCount)))
    }

    /// Absolute offset of a tensor's data in its file (`shards[t.shard].url`).
    public func fileOffset(of t: GGUFTensorInfo) -> Int { shards[t.shard].dataOffset + t.offset }
}
