import CSmeltKernels
import Foundation

/// Finds NaN and infinity in weights and activations, as llama.cpp's `ggml_validate_row_data`
/// does for float rows: convert and quantize refuse such tensors (unless told to keep them),
/// the evaluator stops where they appear.
public enum NonFinite {
    /// The first non-finite value of `n` floats, as (index, value).
    @inline(__always)
    public static func first(_ p: UnsafePointer<Float>, count n: Int) -> (Int, Float)? {
        guard n > 0 else { return nil }
        let i = Int(smelt_first_nonfinite_f32(p, n))
        return i < n ? (i, p[i]) : nil
    }

    /// The first row (of `rowLength` values) holding a non-finite value in stored float data of
    /// `type` (f32, f16, bf16; other types are not checked), as (row, column, value).
    public static func firstInRows(_ data: UnsafeRawBufferPointer, type: GGMLType, rowLength: Int) -> (Int, Int, Float)? {
        guard rowLength > 0, let base = data.baseAddress else { return nil }
        switch type {
        case .f32:
            let n = data.count / 4
            guard let (i, v) = first(base.assumingMemoryBound(to: Float.self), count: n) else { return nil }
            return (i / rowLength, i % rowLength, v)
        case .f16, .bf16:
            let u = base.assumingMemoryBound(to: UInt16.self)
            let n = data.count / 2
            let i = Int(smelt_first_exponent_all_ones_u16(u, n, type == .f16 ? 0x7C00 : 0x7F80))
            guard i < n else { return nil }
            let v = type == .f16 ? FloatFormats.halfToFloat(u[i]) : FloatFormats.bf16ToFloat(u[i])
            return (i / rowLength, i % rowLength, v)
        default:
            return nil
        }
    }

    /// The error for a non-finite weight: names the file, the tensor and the first bad row.
    public static func weightError(file: String, tensor: String, row: Int, column: Int, value: Float) -> SmeltError {
        SmeltError("\(file): tensor \(tensor) row \(row) holds \(value) (column \(column)); non-finite weights are refused (--allow-nonfinite to write them anyway)")
    }
}
