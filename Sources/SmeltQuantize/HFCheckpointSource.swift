import Foundation
import SmeltConvert
import SmeltFormats

/// A Hugging Face checkpoint folder as a `TensorSource`, through the converter's
/// plan (names, metadata, row transforms as `smelt convert` writes them): quantizing
/// it gives the same file as `smelt convert --outtype T` followed by `smelt quantize`,
/// in one streaming pass and without the intermediate GGUF.
public final class HFCheckpointSource: TensorSource, @unchecked Sendable {
    public let plan: ConversionPlan
    public let tensors: [SourceTensor]
    /// The checkpoint folder.
    public let folder: URL
    public var metadata: GGUFMetadata { plan.metadata }

    /// `outType` is the type the intermediate GGUF would have (`auto`: the checkpoint's
    /// 16-bit type); values are rounded to it before quantization, as in the two-step flow.
    public init(folder: URL, outType: OutType = .auto, pre: String? = nil, name: String? = nil, license: LicenseKeys? = nil) throws {
        guard outType != .q8_0 else {
            throw SmeltError("quantizing a checkpoint through a q8_0 intermediate is not supported: use --outtype f32, f16, bf16 or auto")
        }
        self.folder = folder
        plan = try ConversionPlan(folder: folder, outType: outType, pre: pre, name: name, license: license)
        tensors = plan.tensors.map { SourceTensor(name: $0.name, shape: $0.shape, type: $0.type) }
    }

    public func rawData(_ index: Int) -> UnsafeRawBufferPointer? { nil }

    public func origin(_ index: Int) -> (file: String, tensor: String) {
        (plan.tensors[index].sourceFile, plan.tensors[index].sourceName)
    }

    public func readRows(_ index: Int, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) throws {
        let t = plan.tensors[index]
        t.readRows(rows.lowerBound, rows.count, into: dst)
        // the intermediate GGUF would hold the values in its type
        let n = rows.count * t.rowLength
        switch t.type {
        case .f16: for i in 0..<n { dst[i] = Float(Float16(dst[i])) }
        case .bf16: for i in 0..<n { dst[i] = FloatFormats.bf16ToFloat(FloatFormats.floatToBF16(dst[i])) }
        default: break
        }
    }

    public func release(_ index: Int) {
        if case let .checkpoint(t, _, _, _) = plan.tensors[index].origin { t.dropPages() }
        if case let .experts(slices) = plan.tensors[index].origin { slices.forEach { $0.dropPages() } }
    }
}
