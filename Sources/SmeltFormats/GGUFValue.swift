/// The value types of GGUF metadata, with their on-disk ids.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5
    case float32 = 6, bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of one value of a fixed-size type (nil for string and array).
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }
    /// The smallest number of bytes one value can take in a file.
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }
    /// The name gguf-py uses (`UINT32`, `STRING` …).
    public var name: String { String(describing: self).uppercased() }
}

/// One GGUF metadata value. Arrays carry their element type so that an empty
/// array round-trips.
public indirect enum GGUFValue: Equatable, Sendable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        case .array: return .array
        }
    }

    public static func == (a: GGUFValue, b: GGUFValue) -> Bool {
        switch (a, b) {
        case let (.uint8(x), .uint8(y)): return x == y
        case let (.int8(x), .int8(y)): return x == y
        case let (.uint16(x), .uint16(y)): return x == y
        case let (.int16(x), .int16(y)): return x == y
        case let (.uint32(x), .uint32(y)): return x == y
        case let (.int32(x), .int32(y)): return x == y
        case let (.float32(x), .float32(y)): return x.bitPattern == y.bitPattern
        case let (.bool(x), .bool(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.uint64(x), .uint64(y)): return x == y
        case let (.int64(x), .int64(y)): return x == y
        case let (.float64(x), .float64(y)): return x.bitPattern == y.bitPattern
        case let (.array(t, x), .array(u, y)): return t == u && x == y
        default: return false
        }
    }

    /// Integer value of any integer type (and bool), if it fits in Int.
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        case let .bool(v): return v ? 1 : 0
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return intValue.map(Double.init)
        }
    }
    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    public var boolValue: Bool? { if case let .bool(b) = self { return b }; return nil }
    public var arrayValue: [GGUFValue]? { if case let .array(_, a) = self { return a }; return nil }

    /// Array helpers.
    public static func strings(_ a: [String]) -> GGUFValue { .array(.string, a.map { .string($0) }) }
    public static func int32s(_ a: [Int32]) -> GGUFValue { .array(.int32, a.map { .int32($0) }) }
    public static func float32s(_ a: [Float]) -> GGUFValue { .array(.float32, a.map { .float32($0) }) }

    public var description: String { render(maxItems: .max) }

    /// Text form; arrays longer than `maxItems` are abbreviated with their count.
    public func render(maxItems: Int) -> String {
        switch self {
        case let .string(s):
            var out = ""
            JSONValue.escape(s, into: &out)
            return out
        case let .float32(v): return "\(v)"
        case let .float64(v): return "\(v)"
        case let .bool(v): return v ? "true" : "false"
        case let .array(t, a):
            let shown = a.prefix(maxItems).map { $0.render(maxItems: maxItems) }
            let more = a.count > maxItems ? ", ... (\(a.count) \(t.name.lowercased()) items)" : ""
            return "[" + shown.joined(separator: ", ") + more + "]"
        default: return String(intValue ?? 0)
        }
    }

    /// JSON form (arrays in full, or abbreviated past `maxItems`).
    public func json(maxItems: Int = .max) -> JSONValue {
        switch self {
        case let .string(s): return .string(s)
        case let .float32(v): return .double(Double(v))
        case let .float64(v): return .double(v)
        case let .bool(v): return .bool(v)
        case let .uint64(v): return v <= UInt64(Int64.max) ? .int(Int64(v)) : .double(Double(v))
        case let .array(_, a):
            return .array(a.prefix(maxItems).map { $0.json(maxItems: maxItems) })
        default: return .int(Int64(intValue ?? 0))
        }
    }
}

/// GGUF metadata: key → value in file order. Keys are unique.
public struct GGUFMetadata: Equatable, Sendable, Sequence {
    public private(set) var entries: [(key: String, value: GGUFValue)] = []
    private var index: [String: Int] = [:]

    public init() {}
    public init(_ pairs: [(String, GGUFValue)]) { for (k, v) in pairs { self[k] = v } }

    public var count: Int { entries.count }
    public var keys: [String] { entries.map(\.key) }

    /// Reading returns the value; writing replaces it in place or appends it.
    /// Setting nil removes the key.
    public subscript(key: String) -> GGUFValue? {
        get { index[key].map { entries[$0].value } }
        set {
            if let i = index[key] {
                if let newValue { entries[i].value = newValue } else {
                    entries.remove(at: i)
                    index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.key, $0) })
                }
            } else if let newValue {
                index[key] = entries.count
                entries.append((key, newValue))
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: GGUFValue)]> { entries.makeIterator() }

    public static func == (a: GGUFMetadata, b: GGUFMetadata) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}
