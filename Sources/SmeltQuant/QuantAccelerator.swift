import SmeltFormats

/// A device that quantizes whole tensors with the same bytes as the CPU kernels (the GPU:
/// `SmeltGPU.GPUQuantizer`). The quantizer hands it the tensors whose type it supports and
/// quantizes the others on the CPU. Used from one thread at a time.
public protocol QuantAccelerator: AnyObject, Sendable {
    /// What to call the device in messages ("vulkan:0 llvmpipe (LLVM 15.0.6, 256 bits)").
    var deviceDescription: String { get }
    /// True when the device has a kernel for `type`.
    func supports(_ type: GGMLType) -> Bool
    /// Quantizes `rows` rows of `n` values into `dst`; `fill(range, buffer)` writes tensor rows
    /// `range` as floats into `buffer`. `importance` holds `n × ne2` weights (row r uses
    /// `(r / ne1) % ne2`) or is nil for ggml's reference path.
    func quantize(type: GGMLType, rows: Int, n: Int, importance: UnsafePointer<Float>?, ne1: Int, ne2: Int,
                  dst: UnsafeMutableRawPointer,
                  fill: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void) throws
}
