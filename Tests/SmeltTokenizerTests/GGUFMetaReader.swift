import Foundation
@testable import SmeltTokenizer

/// Test-only reader for the key/value section of a GGUF file (the golden files' tokenizer keys).
enum GGUFMetaReader {
    struct Failure: Error { let message: String }

    static func read(_ url: URL) throws -> MetaEntries {
        let d = try Data(contentsOf: url, options: .alwaysMapped)
        return try d.withUnsafeBytes { raw -> MetaEntries in
            var p = 0
            func u32() throws -> UInt32 {
                guard p + 4 <= raw.count else { throw Failure(message: "eof") }
                defer { p += 4 }
                return raw.loadUnaligned(fromByteOffset: p, as: UInt32.self)
            }
            func u64() throws -> UInt64 {
                guard p + 8 <= raw.count else { throw Failure(message: "eof") }
                defer { p += 8 }
                return raw.loadUnaligned(fromByteOffset: p, as: UInt64.self)
            }
            func str() throws -> String {
                let n = Int(try u64())
                guard p + n <= raw.count else { throw Failure(message: "eof") }
                defer { p += n }
                return String(decoding: UnsafeRawBufferPointer(rebasing: raw[p..<(p + n)]), as: UTF8.self)
            }
            func scalar(_ t: UInt32) throws -> MetaValue {
                switch t {
                case 0: p += 1; return .uint32(UInt32(raw[p - 1]))
                case 1: p += 1; return .int32(Int32(Int8(bitPattern: raw[p - 1])))
                case 2: p += 2; return .uint32(UInt32(raw.loadUnaligned(fromByteOffset: p - 2, as: UInt16.self)))
                case 3: p += 2; return .int32(Int32(raw.loadUnaligned(fromByteOffset: p - 2, as: Int16.self)))
                case 4: return .uint32(try u32())
                case 5: return .int32(Int32(bitPattern: try u32()))
                case 6: return .float32(Float(bitPattern: try u32()))
                case 7: p += 1; return .bool(raw[p - 1] != 0)
                case 8: return .string(try str())
                case 10: return .uint32(UInt32(truncatingIfNeeded: try u64()))
                case 11: return .int32(Int32(truncatingIfNeeded: Int64(bitPattern: try u64())))
                case 12: p += 8; return .float32(Float(raw.loadUnaligned(fromByteOffset: p - 8, as: Double.self)))
                default: throw Failure(message: "bad type \(t)")
                }
            }
            guard try u32() == 0x4655_4747 else { throw Failure(message: "not GGUF") }
            _ = try u32()
            _ = try u64()
            let nkv = try u64()
            var out: MetaEntries = []
            for _ in 0..<nkv {
                let key = try str()
                let t = try u32()
                if t == 9 {
                    let et = try u32()
                    let n = Int(try u64())
                    switch et {
                    case 8: out.append((key, .stringArray(try (0..<n).map { _ in try str() })))
                    case 5: out.append((key, .int32Array(try (0..<n).map { _ in Int32(bitPattern: try u32()) })))
                    case 6: out.append((key, .float32Array(try (0..<n).map { _ in Float(bitPattern: try u32()) })))
                    default:
                        var items: [Int32] = []
                        for _ in 0..<n { if let v = try scalar(et).intValue { items.append(Int32(truncatingIfNeeded: v)) } }
                        out.append((key, .int32Array(items)))
                    }
                } else {
                    out.append((key, try scalar(t)))
                }
            }
            return out
        }
    }

    /// The `tokenizer.*` entries of a GGUF file, in file order.
    static func tokenizerEntries(_ url: URL) throws -> MetaEntries {
        try read(url).filter { $0.key.hasPrefix("tokenizer.") }
    }
}
