import Foundation

/// Finds NaN and infinity in weights and activations, as llama.cpp's `ggml_validate_row_data`
/// does for float rows: convert and quantize refuse such tensors (unless told to keep them),
/// the evaluator stops where they appear.
public enum NonFinite {
    /// The first non-finite value of `n` floats, as (index, value).
    @inline(__always)
    public static func first(_ p: UnsafePointer<Float>, count n: Int) -> (Int, Float)? {
        let bits = UnsafeRawPointer(p).assumingMemoryBound(to: UInt32.self)
        var bad = false
        for i in 0..<n where bits[i] & 0x7F80_0000 == 0x7F80_0000 { bad = true; break }
        guard bad else { return nil }
        for i in 0..<n where !p[i].isFinite { return (i, p[i]) }
        return nil
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
            let mask: UInt16 = type == .f16 ? 0x7C00 : 0x7F80
            for i in 0..<(data.count / 2) where u[i] & mask == mask {
                let v = type == .f16 ? FloatFormats.halfToFloat(u[i]) : FloatFormats.bf16ToFloat(u[i])
                return (i / rowLength, i % rowLength, v)
            }
            return nil
        default:
            return nil
        }
    }

    /// The error for a non-finite weight: names the file, the tensor and the first bad row.
    public static func weightError(file: String, tensor: String, row: Int, column: Int, value: Float) -> SmeltError {
        SmeltError("\(file): tensor \(tensor) row \(row) holds \(value) (column \(column)); non-finite weights are refused (--allow-nonfinite to write them anyway)")
    }
}
