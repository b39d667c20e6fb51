import Foundation

/// The element types of safetensors files.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, U16, U32, U64, BOOL, F8_E4M3, F8_E5M2

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: return 1
        }
    }
    /// True for the floating-point types that convert to float32.
    public var isFloat: Bool { [.F64, .F32, .F16, .BF16, .F8_E4M3, .F8_E5M2].contains(self) }
}

/// One tensor of a safetensors file.
public struct SafetensorsTensor: Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    /// PyTorch order: the last dimension is contiguous.
    public let shape: [Int]
    /// Absolute byte range in the file.
    public let range: Range<Int>
    /// The file the tensor is in.
    public let url: URL
    let map: MappedFile

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { range.count }
    /// The raw little-endian bytes (memory-mapped).
    public var data: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: map.bytes[range]) }

    /// Converts the elements to float32 into `dst` (`elementCount` values).
    /// Integer types convert by value. F8 values are converted without any
    /// scale: scales are separate tensors, applied by the caller.
    public func readFloats(into dst: UnsafeMutablePointer<Float>) {
        readFloats(from: 0, count: elementCount, into: dst)
    }

    /// Converts elements `start ..< start + count` to float32 into `dst`.
    public func readFloats(from start: Int, count n: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(start >= 0 && n >= 0 && start + n <= elementCount)
        let src = data.baseAddress! + start * dtype.size
        switch dtype {
        case .F32: memcpy(dst, src, n * 4)
        case .F16: for i in 0..<n { dst[i] = FloatFormats.halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .BF16: FloatFormats.bf16ToFloat(src, dst, count: n)
        case .F64: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .I64: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .U64: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        case .I32: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .U32: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .I16: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .U16: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .I8: for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
        case .U8, .BOOL: for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        case .F8_E4M3: for i in 0..<n { dst[i] = FloatFormats.e4m3ToFloat(src.load(fromByteOffset: i, as: UInt8.self)) }
        case .F8_E5M2: for i in 0..<n { dst[i] = FloatFormats.e5m2ToFloat(src.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }

    /// Rows `rows` of the `index`-th matrix of a 3-D tensor (`[n, r, c]`) as a 2-D tensor
    /// `[rows.count, c]` over the same mapped bytes (no copy), named `name[index, lo:hi]`:
    /// one expert's part of a fused expert tensor. Nil when out of range or not 3-D.
    public func matrix(_ index: Int, rows: Range<Int>) -> SafetensorsTensor? {
        guard shape.count == 3, index >= 0, index < shape[0], rows.lowerBound >= 0, rows.upperBound <= shape[1] else { return nil }
        let rowBytes = shape[2] * dtype.size
        let start = range.lowerBound + (index * shape[1] + rows.lowerBound) * rowBytes
        return SafetensorsTensor(name: "\(name)[\(index), \(rows.lowerBound):\(rows.upperBound)]", dtype: dtype,
                                 shape: [rows.count, shape[2]], range: start..<(start + rows.count * rowBytes), url: url, map: map)
    }

    /// Releases this tensor's pages of the memory map (streaming conversion).
    public func dropPages() { map.dropPages(range) }

    /// Releases the pages holding elements `elements` (whole pages inside that span only).
    public func dropPages(elements: Range<Int>) {
        let lo = range.lowerBound + elements.lowerBound * dtype.size
        let hi = range.lowerBound + elements.upperBound * dtype.size
        let page = 4096
        let start = (lo + page - 1) / page * page, end = hi / page * page
        if end > start { map.dropPages(start..<end) }
    }

    /// The elements as float32.
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: elementCount) { p, n in
            if elementCount > 0 { readFloats(into: p.baseAddress!) }
            n = elementCount
        }
    }
}

/// A safetensors file, memory-mapped and validated: header length, JSON,
/// dtypes, shapes, and byte ranges (inside the data section, matching
/// shape × dtype, not overlapping).
public final class SafetensorsFile: @unchecked Sendable {
    public let url: URL
    /// `__metadata__` (string → string), in file order.
    public let metadata: [(String, String)]
    /// Tensors in header order.
    public let tensors: [SafetensorsTensor]
    let map: MappedFile
    private var byName: [String: Int] = [:]

    /// The largest header the reference implementation accepts (100 MB).
    public static let maxHeaderSize = 100_000_000
    /// The largest product of the non-zero dimensions of a tensor without elements.
    public static let maxEmptyExtent = 1 << 24

    public init(url: URL) throws {
        self.url = url
        map = try MappedFile(url: url)
        let path = url.path
        guard map.count >= 8 else { throw SmeltError("\(path): truncated safetensors file (\(map.count) bytes, no header length)") }
        let n = UInt64(littleEndian: map.bytes.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(SafetensorsFile.maxHeaderSize) else { throw SmeltError("\(path): header length \(n) exceeds the 100 MB limit") }
        guard n <= UInt64(map.count - 8) else {
            throw SmeltError("\(path): header length \(n) goes beyond the end of the file (\(map.count) bytes): truncated file")
        }
        let headerEnd = 8 + Int(n)
        let json: JSONValue
        do { json = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: map.bytes[8..<headerEnd])) } catch let e as JSONError {
            throw SmeltError("\(path): header is not valid JSON (byte \(e.offset + 8): \(e.message))")
        }
        guard let members = json.objectValue else { throw SmeltError("\(path): header is not a JSON object") }
        let dataSize = map.count - headerEnd
        var meta: [(String, String)] = []
        var list: [SafetensorsTensor] = []
        var tensorsPlaceholder: [(String, SafetensorsDType, [Int], Range<Int>)] = []
        var seen = Set<String>()
        for (name, v) in members {
            if name == "__metadata__" {
                guard let m = v.objectValue else { throw SmeltError("\(path): __metadata__ is not an object") }
                for (k, s) in m {
                    guard let s = s.stringValue else { throw SmeltError("\(path): __metadata__ value '\(k)' is not a string") }
                    meta.append((k, s))
                }
                continue
            }
            guard seen.insert(name).inserted else { throw SmeltError("\(path): tensor '\(name)' appears twice in the header") }
            guard let ds = v["dtype"]?.stringValue else { throw SmeltError("\(path): tensor '\(name)' has no dtype") }
            guard let dt = SafetensorsDType(rawValue: ds) else {
                throw SmeltError("\(path): tensor '\(name)' has unsupported dtype \(ds) (supported: \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let sh = v["shape"]?.arrayValue else { throw SmeltError("\(path): tensor '\(name)' has no shape") }
            var shape: [Int] = []
            for d in sh {
                guard let x = d.intValue, x >= 0 else { throw SmeltError("\(path): tensor '\(name)' has a bad dimension \(d.serialized())") }
                shape.append(x)
            }
            guard let offs = v["data_offsets"]?.arrayValue, offs.count == 2,
                  let b = offs[0].intValue, let e = offs[1].intValue, b >= 0, e >= b else {
                throw SmeltError("\(path): tensor '\(name)' has bad data_offsets")
            }
            guard e <= dataSize else {
                throw SmeltError("\(path): tensor '\(name)' data [\(b), \(e)) goes beyond the data section (\(dataSize) bytes): truncated file?")
            }
            var count = dt.size
            for d in shape {
                let (r, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw SmeltError("\(path): tensor '\(name)' shape \(shape) overflows") }
                count = r
            }
            // a tensor without elements may not declare billions of rows: loops over its rows would not end
            let extent = shape.reduce(1) { a, d in a.multipliedReportingOverflow(by: Swift.max(d, 1)).overflow ? Int.max : a * Swift.max(d, 1) }
            guard count > 0 || extent <= SafetensorsFile.maxEmptyExtent else {
                throw SmeltError("\(path): tensor '\(name)' has no elements but shape \(shape)")
            }
            guard count == e - b else {
                throw SmeltError("\(path): tensor '\(name)' has shape \(shape) × \(dt.rawValue) = \(count) bytes but data_offsets give \(e - b)")
            }
            tensorsPlaceholder.append((name, dt, shape, (headerEnd + b)..<(headerEnd + e)))
        }
        let sorted = tensorsPlaceholder.sorted { ($0.3.lowerBound, $0.3.upperBound) < ($1.3.lowerBound, $1.3.upperBound) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.3.upperBound > b.3.lowerBound {
            throw SmeltError("\(path): tensors '\(a.0)' and '\(b.0)' overlap")
        }
        // as the reference reader: the tensors cover the data section exactly (no hidden bytes)
        var next = headerEnd
        for t in sorted {
            guard t.3.lowerBound == next else {
                throw SmeltError("\(path): \(t.3.lowerBound - next) bytes at file offset \(next) belong to no tensor (before '\(t.0)')")
            }
            next = t.3.upperBound
        }
        guard next == map.count else {
            throw SmeltError("\(path): \(map.count - next) bytes at file offset \(next) belong to no tensor")
        }
        metadata = meta
        for (name, dt, shape, r) in tensorsPlaceholder {
            byName[name] = list.count
            list.append(SafetensorsTensor(name: name, dtype: dt, shape: shape, range: r, url: url, map: map))
        }
        tensors = list
    }

    /// The tensor named `name`, if present.
    public func tensor(named name: String) -> SafetensorsTensor? { byName[name].map { tensors[$0] } }
}
