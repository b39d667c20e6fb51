import Foundation
import SmeltFormats

/// The `general.*` key/value pairs of a GGUF file header, read without loading tensors.
public struct GGUFGeneralMetadata: Sendable, Equatable {
    /// A metadata value kept by this reader (strings, numbers, booleans, string arrays).
    public enum Value: Sendable, Equatable {
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
        case strings([String])
        /// An array of non-string values, kept only as its length.
        case other
    }

    /// `general.*` keys in file order.
    public var values: [(String, Value)]

    public static func == (a: GGUFGeneralMetadata, b: GGUFGeneralMetadata) -> Bool {
        a.values.count == b.values.count && zip(a.values, b.values).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    /// The string value of `key`, if present.
    public func string(_ key: String) -> String? {
        for (k, v) in values where k == key { if case let .string(s) = v { return s } }
        return nil
    }
    /// The integer value of `key`, if present.
    public func int(_ key: String) -> Int? {
        for (k, v) in values where k == key { if case let .int(i) = v { return Int(exactly: i) } }
        return nil
    }
    /// The string-array value of `key` (a single string becomes a one-element array).
    public func strings(_ key: String) -> [String] {
        for (k, v) in values where k == key {
            if case let .strings(s) = v { return s }
            if case let .string(s) = v { return [s] }
        }
        return []
    }

    /// Reads the header of a GGUF (version 2 or 3) file and keeps its `general.*` keys.
    public static func read(_ url: URL) throws -> GGUFGeneralMetadata {
        guard let h = FileHandle(forReadingAtPath: url.path) else { throw SmeltError("cannot open \(url.path)") }
        defer { try? h.close() }
        var r = Reader(handle: h, path: url.path)
        r.size = ((try? FileManager.default.attributesOfItem(atPath: url.path)[.size]) as? NSNumber)?.uint64Value ?? 0
        let magic = try r.bytes(4)
        guard magic == Array("GGUF".utf8) else { throw SmeltError("\(url.path): not a GGUF file (bad magic)") }
        let version = try r.u32()
        guard version == 2 || version == 3 else { throw SmeltError("\(url.path): unsupported GGUF version \(version)") }
        _ = try r.u64()  // tensor count
        let kvCount = try r.u64()
        guard kvCount < 1_000_000 else { throw SmeltError("\(url.path): implausible metadata count \(kvCount)") }
        var out: [(String, Value)] = []
        for _ in 0..<kvCount {
            let key = try r.string()
            let type = try r.u32()
            let keep = key.hasPrefix("general.")
            let v = try r.value(type: type, keep: keep)
            if keep { out.append((key, v)) }
        }
        return GGUFGeneralMetadata(values: out)
    }

    /// A buffered little-endian reader over a file handle.
    struct Reader {
        let handle: FileHandle
        let path: String
        var buffer: [UInt8] = []
        var pos = 0
        /// The file's size: no skip may go past it.
        var size: UInt64 = 0

        init(handle: FileHandle, path: String) { self.handle = handle; self.path = path }

        mutating func fill(_ n: Int) throws {
            if buffer.count - pos >= n { return }
            buffer = Array(buffer[pos...]); pos = 0
            while buffer.count < n {
                let chunk = (try? handle.read(upToCount: max(1 << 20, n - buffer.count))) ?? nil
                guard let c = chunk, !c.isEmpty else { throw SmeltError("\(path): truncated GGUF header") }
                buffer.append(contentsOf: c)
            }
        }
        mutating func bytes(_ n: Int) throws -> [UInt8] {
            try fill(n)
            defer { pos += n }
            return Array(buffer[pos..<pos + n])
        }
        mutating func skip(_ n: UInt64) throws {
            let avail = UInt64(buffer.count - pos)
            if n <= avail { pos += Int(n); return }
            let rest = n - avail
            buffer = []; pos = 0
            let off = try handle.offset()
            let (end, o) = off.addingReportingOverflow(rest)
            guard !o, end <= size else { throw SmeltError("\(path): truncated GGUF header (a value of \(n) bytes goes past the end)") }
            try handle.seek(toOffset: end)
        }
        /// A little-endian unsigned integer of `n` bytes (n ≤ 8), read straight from the buffer.
        mutating func uint(_ n: Int) throws -> UInt64 {
            try fill(n)
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(buffer[pos + i]) << (8 * UInt64(i)) }
            pos += n
            return v
        }
        mutating func u32() throws -> UInt32 { UInt32(truncatingIfNeeded: try uint(4)) }
        mutating func u64() throws -> UInt64 { try uint(8) }
        mutating func string() throws -> String {
            let n = try u64()
            guard n < 1 << 26 else { throw SmeltError("\(path): implausible string length \(n) in GGUF header") }
            return String(decoding: try bytes(Int(n)), as: UTF8.self)
        }

        static func size(of type: UInt32) -> Int? {
            switch type {
            case 0, 1, 7: return 1
            case 2, 3: return 2
            case 4, 5, 6: return 4
            case 10, 11, 12: return 8
            default: return nil
            }
        }

        mutating func value(type: UInt32, keep: Bool) throws -> Value {
            switch type {
            case 8:
                return .string(try string())
            case 9:
                let et = try u32()
                let n = try u64()
                if et == 8 {
                    var items: [String] = []
                    for _ in 0..<n {
                        if keep { items.append(try string()) } else { let l = try u64(); try skip(l) }
                    }
                    return keep ? .strings(items) : .other
                }
                guard let sz = Reader.size(of: et) else { throw SmeltError("\(path): unsupported GGUF array type \(et)") }
                let (total, overflow) = n.multipliedReportingOverflow(by: UInt64(sz))
                guard !overflow else { throw SmeltError("\(path): implausible GGUF array length \(n)") }
                try skip(total)
                return .other
            default:
                guard let sz = Reader.size(of: type) else { throw SmeltError("\(path): unknown GGUF value type \(type)") }
                let u = try uint(sz)
                switch type {
                case 0, 2, 4, 10: return .int(Int64(bitPattern: u))
                case 1: return .int(Int64(Int8(bitPattern: UInt8(u))))
                case 3: return .int(Int64(Int16(bitPattern: UInt16(u))))
                case 5: return .int(Int64(Int32(bitPattern: UInt32(u))))
                case 11: return .int(Int64(bitPattern: u))
                case 6: return .double(Double(Float(bitPattern: UInt32(u))))
                case 12: return .double(Double(bitPattern: u))
                default: return .bool(u != 0)
                }
            }
        }
    }
}
