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

/// The native kernels of q4_0, q4_1, q5_0, q5_1, q8_0, q2_K…q6_K, iq4_nl, iq4_xs, iq2_xxs,
/// iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s and iq1_m (with
/// and without importance weights where the type takes them), used by those types' `quantizeRow`;
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
        case (.q4_0, true): return { s, w, d, n in quantizeRowQ40Weighted(s, w, d, n) }
        case (.q2_K, _): return { s, w, d, n in quantizeRowQ2K(s, w, d, n) }
        case (.q3_K, _): return { s, w, d, n in quantizeRowQ3K(s, w, d, n) }
        case (.q4_1, _): return { s, w, d, n in quantizeRowQ41(s, w, d, n) }
        case (.q5_0, _): return { s, w, d, n in quantizeRowQ50(s, w, d, n) }
        case (.q5_1, _): return { s, w, d, n in quantizeRowQ51(s, w, d, n) }
        case (.iq2_xxs, true): return { s, w, d, n in smelt_quantize_row_iq2_xxs(s, w, d, Int64(n), grid(.iq2xxs)) }
        case (.iq2_xs, true): return { s, w, d, n in smelt_quantize_row_iq2_xs(s, w, d, Int64(n), grid(.iq2xs)) }
        case (.iq2_s, _): return { s, w, d, n in smelt_quantize_row_iq2_s(s, w, d, Int64(n), grid(.iq2s)) }
        case (.iq3_xxs, _): return { s, w, d, n in smelt_quantize_row_iq3_xxs(s, w, d, Int64(n), grid(.iq3xxs)) }
        case (.iq3_s, _): return { s, w, d, n in smelt_quantize_row_iq3_s(s, w, d, Int64(n), grid(.iq3s)) }
        case (.iq1_s, true): return { s, w, d, n in smelt_quantize_row_iq1_s(s, w, d, Int64(n), grid(.iq1)) }
        case (.iq1_m, _): return { s, w, d, n in smelt_quantize_row_iq1_m(s, w, d, Int64(n), grid(.iq1)) }
        default: return nil
        }
    }

    /// A grid iq type's tables as the native kernels take them (pointers into `tables`, which live
    /// for the process).
    @inline(__always) static func grid(_ tables: IQGridTables) -> smelt_iq_grid {
        smelt_iq_grid(grid: tables.grid, map: tables.map, neighbours: tables.neighbours, points: tables.neighbourPoints)
    }

    /// The native kernel of a grid iq type (`quantize_row_iqX_impl`) when enabled and the row
    /// qualifies (iq2_xxs, iq2_xs and iq1_s need importance weights; without, the Swift kernel traps
    /// as ggml refuses). Returns false when the caller must take its Swift kernel.
    @inline(__always) static func quantizeRowIQGrid(_ type: GGMLType, _ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                    _ dst: UnsafeMutableRawPointer, _ count: Int) -> Bool {
        guard enabled, count % 256 == 0, let kernel = rowKernel(for: type, importance: qw != nil) else { return false }
        kernel(src, qw, dst, count)
        return true
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

    /// `quantize_row_q2_K_ref` (qw nil) / `quantize_row_q2_K_impl`.
    @inline(__always) static func quantizeRowQ2K(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                 _ dst: UnsafeMutableRawPointer, _ count: Int) {
        smelt_quantize_row_q2_K(src, qw, dst, Int64(count))
    }

    /// `quantize_row_q3_K_ref` (qw nil) / `quantize_row_q3_K_impl`.
    @inline(__always) static func quantizeRowQ3K(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                 _ dst: UnsafeMutableRawPointer, _ count: Int) {
        smelt_quantize_row_q3_K(src, qw, dst, Int64(count))
    }

    /// `quantize_row_q4_1_ref` (qw nil) / `quantize_row_q4_1_impl`; a row the native kernel
    /// leaves unfinished (NaN, infinity, an overflowing scale) is redone by the scalar kernel.
    @inline(__always) static func quantizeRowQ41(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                 _ dst: UnsafeMutableRawPointer, _ count: Int) {
        if smelt_quantize_row_q4_1(src, qw, dst, Int64(count)) != 0 { redo(src, dst, count, 20, Q4_1.quantizeBlockRef) }
    }

    /// `quantize_row_q5_0_ref` (qw nil) / `quantize_row_q5_0_impl`; unfinished rows as for q4_1.
    @inline(__always) static func quantizeRowQ50(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                 _ dst: UnsafeMutableRawPointer, _ count: Int) {
        if smelt_quantize_row_q5_0(src, qw, dst, Int64(count)) != 0 { redo(src, dst, count, 22, Q5_0.quantizeBlockRef) }
    }

    /// `quantize_row_q5_1_ref` (qw nil) / `quantize_row_q5_1_impl`; unfinished rows as for q4_1.
    @inline(__always) static func quantizeRowQ51(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                 _ dst: UnsafeMutableRawPointer, _ count: Int) {
        if smelt_quantize_row_q5_1(src, qw, dst, Int64(count)) != 0 { redo(src, dst, count, 24, Q5_1.quantizeBlockRef) }
    }

    /// `quantize_row_q4_0_impl` (with importance weights; without: `quantize_row_q4_0_ref`).
    @inline(__always) static func quantizeRowQ40Weighted(_ src: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?,
                                                         _ dst: UnsafeMutableRawPointer, _ count: Int) {
        if let qw { smelt_quantize_row_q4_0_weighted(src, qw, dst, Int64(count)) } else { quantizeRowQ40(src, dst, count) }
    }

    /// A row of 32-value blocks redone by a scalar block kernel.
    @inline(__always) static func redo(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int, _ blockBytes: Int,
                                       _ block: (UnsafePointer<Float>, UnsafeMutableRawPointer) -> Void) {
        for ib in 0..<(count / 32) { block(src + ib * 32, dst + ib * blockBytes) }
    }

    /// `quantize_row_q4_0_ref`; non-finite rows (and overflowing inverse scales) as for q8_0.
    @inline(__always) static func quantizeRowQ40(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        if smelt_quantize_row_q4_0(src, dst, Int64(count)) != 0 {
            for ib in 0..<(count / 32) { Q4_0.quantizeBlockRef(src + ib * 32, dst + ib * 18) }
        }
    }
}

/// Quantization straight from bf16 rows, without a float32 copy, for the types that have such a
/// kernel (q8_0; q4_0 without importance weights). Bytes are those of the types' `quantizeRow`
/// on the same values (bf16 → float32 is exact); `FastKernelTests` compares them.
public enum BF16Rows {
    /// Whether `type` has a fused bf16 kernel now (native kernels enabled).
    public static func supports(_ type: GGMLType, importance: Bool) -> Bool {
        guard FastKernels.enabled else { return false }
        return type == .q8_0 || (type == .q4_0 && !importance)
    }

    /// Quantizes `rows` rows of `n` bf16 values at `src` into `dst` (whole rows, `n` a multiple
    /// of 32) and returns how many leading rows are done: the first row holding a NaN, an
    /// infinity or (q4_0) an overflowing inverse scale, and every row after it, are left to the
    /// caller's float32 path (which reports or handles them as ggml does).
    public static func quantize(_ type: GGMLType, src: UnsafeRawPointer, dst: UnsafeMutableRawPointer, rows: Int, n: Int) -> Int {
        guard rows > 0, n > 0, n % 32 == 0 else { return 0 }
        let s = src.assumingMemoryBound(to: UInt16.self)
        switch type {
        case .q8_0: return Int(smelt_quantize_rows_bf16_q8_0(s, dst, Int64(rows), Int64(n)))
        case .q4_0: return Int(smelt_quantize_rows_bf16_q4_0(s, dst, Int64(rows), Int64(n)))
        default: return 0
        }
    }
}
