import Foundation
import SmeltFormats
import SmeltModel
import SmeltQuant

/// One tensor offered by a `TensorSource`.
public struct SourceTensor: Equatable, Sendable {
    public let name: String
    /// ggml order (`shape[0]` is the row length).
    public let shape: [Int]
    /// The type of the data as stored (F32/F16/BF16, or a quantized type).
    public let type: GGMLType
    public init(name: String, shape: [Int], type: GGMLType) { self.name = name; self.shape = shape; self.type = type }
    public var rowLength: Int { shape.first ?? 1 }
    public var rowCount: Int { shape.dropFirst().reduce(1, *) }
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { GGUF.byteCount(shape: shape, type: type) ?? 0 }
}

/// Where the quantizer reads a model from: GGUF metadata, the tensor list and
/// rows of float32. Implementations must allow `readRows` to be called
/// concurrently from several threads (for different or equal row ranges).
public protocol TensorSource: AnyObject {
    /// The metadata the output starts from (GGUF keys, as a converter would write them).
    var metadata: GGUFMetadata { get }
    /// The tensors, in the source's order.
    var tensors: [SourceTensor] { get }
    /// The stored bytes of tensor `index` in its `type`, when the source holds them
    /// as is (copied unchanged when the plan keeps the type); nil otherwise.
    func rawData(_ index: Int) -> UnsafeRawBufferPointer?
    /// Writes rows `rows` (of `rowLength` floats each, flattened over all dimensions
    /// after the first) of tensor `index` as float32 into `dst`. Quantized sources
    /// dequantize (the caller checks `--allow-requantize`).
    func readRows(_ index: Int, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) throws
    /// Called when tensor `index` is done, so its pages can be released.
    func release(_ index: Int)
    /// Called when rows `rows` of tensor `index` have been read for the last time
    /// (memory stays bounded by chunks, not tensors). Optional.
    func release(_ index: Int, rows: Range<Int>)
    /// The file and the tensor name in it that tensor `index` comes from (error messages).
    func origin(_ index: Int) -> (file: String, tensor: String)
}

extension TensorSource {
    public func release(_ index: Int, rows: Range<Int>) {}
    public func origin(_ index: Int) -> (file: String, tensor: String) { ("input", tensors[index].name) }
}

/// A GGUF model (one file or all shards of a split model) as a `TensorSource`
/// (memory-mapped; pages dropped after each tensor).
public final class GGUFTensorSource: TensorSource, @unchecked Sendable {
    public let file: GGUFFile
    public let tensors: [SourceTensor]
    public var metadata: GGUFMetadata { file.metadata }

    public init(url: URL) throws {
        file = try GGUFFile(url: url)
        try HyperparameterLimits.check(file)
        tensors = file.tensors.map { SourceTensor(name: $0.name, shape: $0.shape, type: $0.type) }
    }

    public func release(_ index: Int, rows: Range<Int>) {
        let t = file.tensors[index]
        guard let rb = t.type.rowBytes(t.rowLength) else { return }
        file.dropPages(for: t, bytes: (rows.lowerBound * rb)..<(rows.upperBound * rb))
    }

    public func rawData(_ index: Int) -> UnsafeRawBufferPointer? { file.data(for: file.tensors[index]) }

    public func origin(_ index: Int) -> (file: String, tensor: String) { (file.url.path, file.tensors[index].name) }

    public func release(_ index: Int) {
        file.dropPages(for: file.tensors[index])
    }

    public func readRows(_ index: Int, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) throws {
        let info = file.tensors[index]
        let n = info.rowLength
        guard let base = file.data(for: info).baseAddress else { return }
        let count = rows.count * n
        switch info.type {
        case .f32:
            (base + rows.lowerBound * n * 4).withMemoryRebound(to: Float.self, capacity: count) { src in
                dst.update(from: src, count: count)
            }
        case .bf16:
            let src = (base + rows.lowerBound * n * 2).assumingMemoryBound(to: UInt16.self)
            FloatRows.bf16ToFloat(src, dst, count: count)
        case .f16:
            let src = (base + rows.lowerBound * n * 2).assumingMemoryBound(to: UInt16.self)
            FloatRows.f16ToFloat(src, dst, count: count)
        default:
            guard let k = QuantRegistry.kernel(for: info.type), let rb = info.type.rowBytes(n) else {
                throw SmeltError("tensor '\(info.name)': cannot read type \(info.type.name) as floats")
            }
            for (j, r) in rows.enumerated() {
                k.dequantizeRow(base + r * rb, dst + j * n, count: n)
            }
        }
    }
}

/// Row conversions from 16-bit floats (exact, vectorisable loops).
public enum FloatRows {
    @inline(__always)
    public static func bf16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        FloatFormats.bf16ToFloat(UnsafeRawPointer(src), dst, count: count)
    }

    @inline(__always)
    public static func f16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = Float(Float16(bitPattern: src[i])) }
    }
}
