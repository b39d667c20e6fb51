import CSmeltKernels
import SmeltFormats
#if canImport(Glibc)
import Glibc
#endif

// Faster, bit-identical versions of the hottest kernels, in C (Sources/CSmeltKernels/
// quant_kernels.c): q4_K, q5_K and q6_K spend almost all their time in ggml's scale searches
// (make_qkx2_quants / make_qkx3_quants: 21 / 16 / 37 candidate scales per 32-value
// sub-block, make_qx_quants: 18 per 16-value sub-block), iq4_nl / iq4_xs in 16 scale trials
// per 32-value block, each a chain of dependent float sums. The (sub-)blocks are
// independent, so SIMD lane j runs ggml's sequential algorithm on block j: the same
// operations in the same order per lane (no reassociation, no fused multiply-add), state
// updates through lane masks. The C file is compiled for baseline x86-64 (or whatever the
// CPU is), AVX2 and AVX-512; the widest the CPU has is taken at run time. This file is
// SmeltQuant's only wrapper of those functions. Tests compare every output byte with
// SmeltQuant's scalar kernels at every level the CPU allows; the golden vectors check the
// default path.

/// The native kernels of q4_0, q8_0, q4_K, q5_K, q6_K (with and without importance weights
/// for the k-quants), iq4_nl and iq4_xs, used by those types' `quantizeRow`;
/// `SMELT_NO_FAST_KERNELS=1` (or `enabled = false`) selects the scalar Swift kernels, which
/// tests compare them with byte for byte.
enum FastKernels {
    /// Whether the `quantizeRow` of those types take these kernels.
    nonisolated(unsafe) static var enabled = getenv("SMELT_NO_FAST_KERNELS") == nil

    /// Instruction-set levels of the native kernels.
    enum Level: Int, CaseIterable, Sendable {
        case portable = 0, avx2 = 1, avx512 = 2
        var name: String { ["portable", "AVX2", "AVX-512"][rawValue] }
    }

    /// The level the kernels run at now (the CPU's best, or less when capped by
    /// `SMELT_QUANT_LEVEL=0|1|2` or `cap(_:)`).
    static var level: Level { Level(rawValue: Int(smelt_quant_level())) ?? .portable }
    /// The best level this CPU allows.
    static var cpuLevel: Level { Level(rawValue: Int(smelt_quant_cpu_level())) ?? .portable }
    /// Tests and benchmarks: run at most at `level` (nil: what the CPU allows).
    static func cap(_ level: Level?) { smelt_quant_force_level(Int32(level?.rawValue ?? -1)) }

    /// A row kernel: (source, importance weights or nil, destination, count).
    typealias RowKernel = (UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutableRawPointer, Int) -> Void

    /// The native row kernel for `type` and path (`importance`: the weighted one), when there is one.
    static func rowKernel(for type: GGMLType, importance: Bool) -> RowKernel? {
        switch (type, importance) {
        case (.q4_K, _): return { s, w, d, n in quantizeRowQ4K(s, w, d, n) }
        case (.q5_K, _): return { s, w, d, n in quantizeRowQ5K(s, w, d, n) }
        case (.q6_K, _): return { s, w, d, n in quantizeRowQ6K(s, w, d, n) }
        case (.iq4_nl, _): return { s, w, d, n in smelt_quantize_row_iq4_nl(s, w, d, Int64(n)) }
        case (.iq4_xs, _): return { s, w, d, n in smelt_quantize_row_iq4_xs(s, w, d, Int64(n)) }
        case (.q8_0, _): return { s, _, d, n in quantizeRowQ80(s, d, n) }
        case (.q4_0, false): return { s, _, d, n in quantizeRowQ40(s, d, n) }
        default: return nil
        }
    }

    /// `quantize_row_q4_K_ref` (qw nil) / `quantize_row_q4_K_impl`.
    @inline(__always) static func quantizeRowQ4K(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                 _ dst: UnsafeMutableRawPointer, _ count: Int) {
        if let qw { smelt_quantize_row_q4_K_weighted(src, qw, dst, Int64(count)) } else { smelt_quantize_row_q4_K(src, dst, Int64(count)) }
    }

    /// `quantize_row_q5_K_ref` (qw nil) / `quantize_row_q5_K_impl`.
    @inline(__always) static func quantizeRowQ5K(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                 _ dst: UnsafeMutableRawPointer, _ count: Int) {
        if let qw { smelt_quantize_row_q5_K_weighted(src, qw, dst, Int64(count)) } else { smelt_quantize_row_q5_K(src, dst, Int64(count)) }
    }

    /// `quantize_row_q6_K_ref` (qw nil) / `quantize_row_q6_K_impl`.
    @inline(__always) static func quantizeRowQ6K(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                 _ dst: UnsafeMutableRawPointer, _ count: Int) {
        smelt_quantize_row_q6_K(src, qw, dst, Int64(count))
    }

    /// `quantize_iq4_nl` (with or without importance weights).
    @inline(__always) static func quantizeRowIQ4NL(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                   _ dst: UnsafeMutableRawPointer, _ count: Int) {
        smelt_quantize_row_iq4_nl(src, qw, dst, Int64(count))
    }

    /// `quantize_iq4_xs` (with or without importance weights).
    @inline(__always) static func quantizeRowIQ4XS(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                   _ dst: UnsafeMutableRawPointer, _ count: Int) {
        smelt_quantize_row_iq4_xs(src, qw, dst, Int64(count))
    }

    /// `quantize_row_q8_0_ref`; a row holding a NaN or an infinity is redone with the scalar
    /// kernel (ggml's bytes then depend on its evaluation order).
    @inline(__always) static func quantizeRowQ80(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        if smelt_quantize_row_q8_0(src, dst, Int64(count)) != 0 {
            for ib in 0..<(count / 32) { Q8_0.quantizeBlock(src + ib * 32, dst + ib * 34) }
        }
    }

    /// `quantize_row_q4_0_ref`; non-finite rows as for q8_0.
    @inline(__always) static func quantizeRowQ40(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        if smelt_quantize_row_q4_0(src, dst, Int64(count)) != 0 {
            for ib in 0..<(count / 32) { Q4_0.quantizeBlockRef(src + ib * 32, dst + ib * 18) }
        }
    }
}
