import Foundation

/// Streams a safetensors file: the header (dtypes, shapes, offsets in the
/// given order, `__metadata__`) first, then each tensor's bytes in order.
/// The header is padded with spaces to a multiple of 8 bytes, as the reference
/// implementation does. The file appears only when `finish()` succeeds.
public final class SafetensorsWriter {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: SafetensorsDType
        public let shape: [Int]
        public init(name: String, dtype: SafetensorsDType, shape: [Int]) { self.name = name; self.dtype = dtype; self.shape = shape }
        public var byteCount: Int { shape.reduce(dtype.size, *) }
    }

    private let out: OutputFile
    private let entries: [Entry]
    private var current = 0, written = 0

    public init(url: URL, tensors: [Entry], metadata: [(String, String)] = [("format", "pt")]) throws {
        entries = tensors
        var members: [(String, JSONValue)] = []
        if !metadata.isEmpty { members.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) }))) }
        var off = 0
        var seen = Set<String>()
        for e in tensors {
            guard seen.insert(e.name).inserted else { throw SmeltError("duplicate tensor name '\(e.name)'") }
            members.append((e.name, .object([("dtype", .string(e.dtype.rawValue)),
                                             ("shape", .array(e.shape.map { .int(Int64($0)) })),
                                             ("data_offsets", .array([.int(Int64(off)), .int(Int64(off + e.byteCount))]))])))
            off += e.byteCount
        }
        var header = Array(JSONValue.object(members).serialized().utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        out = try OutputFile(url: url)
        var h = ByteWriter()
        h.u64(UInt64(header.count))
        try out.write(h.bytes)
        try out.write(header)
        while current < entries.count, entries[current].byteCount == 0 { current += 1 }
    }

    /// Appends bytes of the current tensor (chunks never span two tensors).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard current < entries.count else { throw SmeltError("safetensors writer: more data than declared") }
        let need = entries[current].byteCount - written
        guard bytes.count <= need else { throw SmeltError("safetensors writer: '\(entries[current].name)' expects \(need) more bytes, got \(bytes.count)") }
        try out.write(bytes)
        written += bytes.count
        if written == entries[current].byteCount {
            current += 1; written = 0
            while current < entries.count, entries[current].byteCount == 0 { current += 1 }
        }
    }
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    public func finish() throws {
        guard current == entries.count else {
            out.abort()
            throw SmeltError("safetensors writer: tensor '\(entries[current].name)' was not written")
        }
        try out.commit()
    }
    public func abort() { out.abort() }
}
