import Foundation

/// What the writer needs to know of a tensor before its data arrives.
public struct GGUFTensorDescriptor: Equatable, Sendable {
    public let name: String
    /// ggml order (`shape[0]` is the row length).
    public let shape: [Int]
    public let type: GGMLType
    public init(name: String, shape: [Int], type: GGMLType) {
        self.name = name; self.shape = shape; self.type = type
    }
    public var byteCount: Int? { GGUF.byteCount(shape: shape, type: type) }
}

/// Streams a GGUF v3 file, or the shards of a split model: each file's header
/// (metadata and tensor infos, with offsets laid out as ggml does: each tensor
/// padded to the alignment) is written first, then tensor data in descriptor
/// order, in chunks of any size. The files appear under their names only when
/// `finish()` succeeds (all of them, or none).
public final class GGUFWriter {
    /// One output file: its path, metadata and tensors (in order).
    public struct FilePlan: Sendable {
        public let url: URL
        public let metadata: GGUFMetadata
        public let tensors: [GGUFTensorDescriptor]
        /// No tensors and no padding after the metadata (gguf-py's vocab-only files).
        public let headerOnly: Bool
        public init(url: URL, metadata: GGUFMetadata, tensors: [GGUFTensorDescriptor], headerOnly: Bool = false) {
            self.url = url; self.metadata = metadata; self.tensors = headerOnly ? [] : tensors; self.headerOnly = headerOnly
        }
    }

    /// Every tensor of every file, in the order their data is expected.
    public let descriptors: [GGUFTensorDescriptor]
    /// The first file's alignment.
    public let alignment: Int
    /// The files written (one unless split).
    public let files: [FilePlan]
    private var outs: [OutputFile?]
    private let alignments: [Int]
    private let hashContent: Bool
    private let fileOf: [Int]     // file index of each tensor
    private let sizes: [Int]
    private var current = 0       // index of the tensor being written
    private var writtenInCurrent = 0
    private var openFile = -1

    /// One file at `url`.
    public convenience init(url: URL, metadata: GGUFMetadata, tensors: [GGUFTensorDescriptor]) throws {
        try self.init(files: [FilePlan(url: url, metadata: metadata, tensors: tensors)])
    }

    /// Several files written one after the other (the shards of a split model, see `GGUFSplit`).
    /// `hashContent: false` skips the SHA-256 of the output (`sha256` is then `nil`): for runs whose
    /// output nobody records.
    public init(files: [FilePlan], hashContent: Bool = true) throws {
        self.hashContent = hashContent
        guard !files.isEmpty else { throw SmeltError("GGUF writer: no output file") }
        self.files = files
        var seen = Set<String>()
        var sizes: [Int] = [], fileOf: [Int] = [], aligns: [Int] = []
        for (fi, f) in files.enumerated() {
            aligns.append(try GGUFWriter.alignment(of: f.metadata))
            for (k, v) in f.metadata { try GGUFWriter.check(v, key: k) }
            for t in f.tensors {
                guard seen.insert(t.name).inserted else { throw SmeltError("duplicate tensor name '\(t.name)'") }
                guard !t.shape.isEmpty, t.shape.count <= GGUF.maxDimensions, t.shape.allSatisfy({ $0 >= 0 }) else {
                    throw SmeltError("tensor '\(t.name)': bad shape \(t.shape)")
                }
                guard let n = t.byteCount else {
                    throw SmeltError("tensor '\(t.name)': row length \(t.shape[0]) is not a multiple of \(t.type)'s block size \(t.type.blockSize)")
                }
                sizes.append(n); fileOf.append(fi)
            }
        }
        guard Set(files.map { $0.url.standardizedFileURL.path }).count == files.count else {
            throw SmeltError("GGUF writer: two output files have the same name")
        }
        self.sizes = sizes
        self.fileOf = fileOf
        alignments = aligns
        alignment = aligns[0]
        descriptors = files.flatMap(\.tensors)
        outs = Array(repeating: nil, count: files.count)
        try open(0)
        try skipEmpty()
    }

    /// The alignment `metadata` asks for (`general.alignment`, else 32).
    public static func alignment(of metadata: GGUFMetadata) throws -> Int {
        guard let a = metadata["general.alignment"] else { return GGUF.defaultAlignment }
        guard case let .uint32(v) = a, v > 0, v & (v - 1) == 0 else {
            throw SmeltError("general.alignment must be a power-of-two uint32, got \(a)")
        }
        return Int(v)
    }

    /// Opens file `fi` (closing the previous one's buffers) and writes its header.
    private func open(_ fi: Int) throws {
        if openFile >= 0, let prev = outs[openFile] { try prev.finishWriting() }
        let f = files[fi], align = alignments[fi]
        let out = try OutputFile(url: f.url, hashContent: hashContent)
        outs[fi] = out
        openFile = fi
        var h = ByteWriter()
        h.u32(GGUF.magic); h.u32(GGUF.version)
        h.u64(UInt64(f.tensors.count)); h.u64(UInt64(f.metadata.count))
        for (k, v) in f.metadata {
            h.string(k); h.u32(v.type.rawValue); h.value(v)
        }
        var offset = 0
        for t in f.tensors {
            h.string(t.name)
            h.u32(UInt32(t.shape.count))
            for d in t.shape { h.u64(UInt64(d)) }
            h.u32(t.type.rawValue)
            h.u64(UInt64(offset))
            offset += GGUF.pad(t.byteCount ?? 0, align)
        }
        if !f.headerOnly { h.bytes.append(contentsOf: [UInt8](repeating: 0, count: GGUF.pad(h.bytes.count, align) - h.bytes.count)) }
        try out.write(h.bytes)
    }

    private static func check(_ v: GGUFValue, key: String) throws {
        guard case let .array(t, items) = v else { return }
        for e in items {
            guard e.type == t else { throw SmeltError("metadata '\(key)': array of \(t.name) holds a \(e.type.name)") }
            try check(e, key: key)
        }
    }

    private func skipEmpty() throws {
        while current < sizes.count, sizes[current] == 0 { current += 1 }
        // Open the file of the next tensor (and any file without tensors before it).
        let target = current < sizes.count ? fileOf[current] : files.count - 1
        while openFile < target { try open(openFile + 1) }
    }

    /// The tensor whose data is expected next, or nil when all are written.
    public var nextTensor: GGUFTensorDescriptor? { current < descriptors.count ? descriptors[current] : nil }

    /// Appends data of the current tensor; a tensor may arrive in several chunks
    /// but a chunk never spans two tensors.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard current < sizes.count else { throw SmeltError("GGUF writer: more tensor data than the \(sizes.count) tensors declared") }
        let need = sizes[current] - writtenInCurrent
        guard bytes.count <= need else {
            throw SmeltError("GGUF writer: tensor '\(descriptors[current].name)' expects \(need) more bytes, got \(bytes.count)")
        }
        guard let out = outs[fileOf[current]] else { throw SmeltError("GGUF writer: output file closed") }
        try out.write(bytes)
        writtenInCurrent += bytes.count
        if writtenInCurrent == sizes[current] {
            try out.writeZeros(GGUF.pad(sizes[current], alignments[fileOf[current]]) - sizes[current])
            current += 1
            writtenInCurrent = 0
            try skipEmpty()
        }
    }
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Checks that every tensor was written and renames the files into place
    /// (if one cannot be renamed, those already renamed are removed again).
    public func finish() throws {
        guard current == sizes.count else {
            abort()
            throw SmeltError("GGUF writer: tensor '\(descriptors[current].name)' was not written")
        }
        var committed: [URL] = []
        do {
            for case let out? in outs {
                try out.commit()
                committed.append(out.url)
            }
        } catch {
            for u in committed { try? FileManager.default.removeItem(at: u) }
            abort()
            throw error
        }
    }

    /// SHA-256 of the file written (one unsplit output), once `finish()` succeeded.
    public var sha256: String? { outs.count == 1 ? outs[0]?.sha256 : nil }
    /// SHA-256 of each file written, in order, once `finish()` succeeded.
    public var sha256s: [String?] { outs.map { $0?.sha256 } }

    /// Discards the files.
    public func abort() { for case let out? in outs { out.abort() } }
}

/// Little-endian serialisation into a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func int<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { int(v) }
    mutating func u64(_ v: UInt64) { int(v) }
    mutating func string(_ s: String) { let u = Array(s.utf8); u64(UInt64(u.count)); bytes.append(contentsOf: u) }
    mutating func value(_ v: GGUFValue) {
        switch v {
        case let .uint8(x): int(x)
        case let .int8(x): int(x)
        case let .uint16(x): int(x)
        case let .int16(x): int(x)
        case let .uint32(x): int(x)
        case let .int32(x): int(x)
        case let .float32(x): int(x.bitPattern)
        case let .bool(x): u8(x ? 1 : 0)
        case let .string(s): string(s)
        case let .uint64(x): int(x)
        case let .int64(x): int(x)
        case let .float64(x): int(x.bitPattern)
        case let .array(t, a):
            u32(t.rawValue); u64(UInt64(a.count))
            for e in a { value(e) }
        }
    }
}

extension GGUFValue {
    /// Bytes of this value in a GGUF file (without its key and type id).
    public var encodedSize: Int { var b = ByteWriter(); b.value(self); return b.bytes.count }
}
