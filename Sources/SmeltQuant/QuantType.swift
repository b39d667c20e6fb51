import SmeltFormats

/// One ggml block type: how a row of floats becomes blocks of bytes and back.
///
/// Every ggml type Smelt can write conforms once (one file per type). Kernels
/// work on raw little-endian bytes at fixed offsets, one block at a time, so
/// that a GPU port can reproduce the same bytes block for block. A row is a
/// whole number of blocks; rows are independent, so callers parallelise over rows.
public protocol QuantType {
    /// The ggml type this kernel writes (block size and bytes come from `GGMLType`).
    static var ggmlType: GGMLType { get }
    /// True when ggml refuses to quantize to this type without importance weights.
    static var requiresImportance: Bool { get }
    /// Quantizes one row of `count` values (a multiple of the block size) into
    /// `dst` (`ggmlType.rowBytes(count)` bytes). `importance`, when given, has
    /// `count` entries (the imatrix column weights, as ggml's `quant_weights`);
    /// nil takes ggml's reference path.
    static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                            count: Int, importance: UnsafePointer<Float>?)
    /// Dequantizes `count` values (a multiple of the block size) from `src`.
    static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int)
}

extension QuantType {
    public static var requiresImportance: Bool { false }
}
