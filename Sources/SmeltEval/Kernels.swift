import Foundation
import CSmeltKernels

/// The one place SmeltEval calls CSmeltKernels (Smelt's native AVX-512 BF16 and
/// F16C loops, chosen at run time from the CPU's features).
public enum NativeKernels {
    /// Whether bfloat16 weights are multiplied with AVX-512 BF16 dot products
    /// (`vdpbf16ps`, as llama.cpp's CPU backend does on such CPUs). False when
    /// the CPU lacks the instructions or `SMELT_NO_NATIVE_KERNELS=1` is set;
    /// OpenBLAS float32 products on bfloat16-rounded activations are used then.
    public static let bf16Dot = allowed && smelt_cpu_has_bf16_dot() != 0

    /// Whether quantized matrices (every ggml block type) are multiplied in integers (AVX-512
    /// VNNI `vpdpbusd`) on activations quantized as llama.cpp quantizes them, instead of float32
    /// products on dequantized weights.
    /// Off without the instructions or with `SMELT_NO_NATIVE_KERNELS=1`.
    public static let intDot = allowed && smelt_cpu_has_int_dot() != 0

    /// Whether float16 weights are multiplied by `smelt_gemm_f16` (AVX-512 FMAs on rows converted
    /// with F16C inside the kernel) instead of OpenBLAS on float32 row blocks. Off without the
    /// instructions or with `SMELT_NO_NATIVE_KERNELS=1`.
    public static let f16Dot = allowed && smelt_cpu_has_f16_dot() != 0

    /// Whether attention scores and weighted sums use CSmeltKernels' AVX-512 loops
    /// (head sizes that are multiples of 16) instead of OpenBLAS.
    public static let attention = allowed && smelt_cpu_has_avx512() != 0

    /// Keys of one head transposed, [headDim][ldkt] (see `smelt_transpose_keys`).
    @inline(__always)
    static func transposeKeys(_ k: UnsafePointer<Float>, ldk: Int, count: Int, headDim: Int,
                              into kt: UnsafeMutablePointer<Float>, ldkt: Int) {
        smelt_transpose_keys(k, Int32(ldk), Int32(count), Int32(headDim), kt, Int32(ldkt))
    }

    /// Causal attention scores of a block of query rows against transposed keys
    /// (see `smelt_attention_scores`).
    @inline(__always)
    static func attentionScores(_ q: UnsafePointer<Float>, ldq: Int, _ kt: UnsafePointer<Float>, ldkt: Int, rows: Int, keys: Int,
                                headDim: Int, scale: Float, diagonal: Int, out: UnsafeMutablePointer<Float>, lds: Int) {
        smelt_attention_scores(q, Int32(ldq), kt, Int32(ldkt), Int32(rows), Int32(keys), Int32(headDim), scale,
                               Int32(diagonal), out, Int32(lds))
    }

    /// Probability-weighted sums of value rows (see `smelt_attention_values`).
    @inline(__always)
    static func attentionValues(_ p: UnsafePointer<Float>, ldp: Int, _ v: UnsafePointer<Float>, ldv: Int, rows: Int, keys: Int,
                                headDim: Int, diagonal: Int, out: UnsafeMutablePointer<Float>, ldo: Int) {
        smelt_attention_values(p, Int32(ldp), v, Int32(ldv), Int32(rows), Int32(keys), Int32(headDim), Int32(diagonal),
                               out, Int32(ldo))
    }

    /// False when `SMELT_NO_NATIVE_KERNELS` is set to anything but "" or "0".
    static let allowed: Bool = {
        guard let v = ProcessInfo.processInfo.environment["SMELT_NO_NATIVE_KERNELS"] else { return true }
        return v == "" || v == "0"
    }()

    /// One attention score row: soft-capping (`softcap` > 0), softmax over `lo...hi`
    /// with ggml's vectorised exp, zeros elsewhere (`count` values).
    @inline(__always)
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, count: Int, lo: Int, hi: Int, softcap: Float) {
        smelt_softmax_row(row, Int32(count), Int32(lo), Int32(hi), softcap)
    }

    /// RMSNorm of one row (ggml's order: double sum of float squares, (x·scale)·w).
    @inline(__always)
    static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int, eps: Float) {
        smelt_rms_norm(x, weight, out, Int32(count), eps)
    }

    /// out = silu(g)·u over `n` values, as ggml's `ggml_vec_swiglu_f32`.
    @inline(__always)
    static func swiglu(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        smelt_swiglu(g, u, out, Int32(n))
    }

    /// Rounds `n` floats from `x` into `out` in place of a dot-product format:
    /// float16 or bfloat16 (round to nearest even), ggml-cpu's x86 `quantize_row_q8_0`
    /// or ggml's `quantize_row_q8_K_ref`, then back to float32.
    static func round(_ format: ActivationRounding.Format, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        switch format {
        case .none: out.update(from: x, count: n)
        case .f16: smelt_round_f16(x, out, Int32(n))
        case .bf16: smelt_round_bf16(x, out, Int32(n))
        case .q8_0: smelt_round_q8_0(x, out, Int32(n))
        case .q8_K: smelt_round_q8_K(x, out, Int32(n))
        }
    }
}

/// 16-bit weight rows multiplied where they lie (the rows mapped from the file) by a CSmeltKernels
/// product (`smelt_gemm_bf16` on bfloat16 activations, `smelt_gemm_f16` on float32 ones): each
/// block of 64 rows is packed into a small per-worker buffer for the duration of one product, so no
/// repacked copy of the matrix is ever kept.
final class MappedRowsProduct<Activation>: @unchecked Sendable {
    /// The CSmeltKernels entry point: (m, n, k, a, lda, w, ldw, c, ldc, scratch).
    typealias Kernel = (Int32, Int32, Int32, UnsafePointer<Activation>?, Int32, UnsafePointer<UInt16>?, Int32,
                                       UnsafeMutablePointer<Float>?, Int32, UnsafeMutablePointer<UInt16>?) -> Void
    let rows: Int, cols: Int
    let data: UnsafePointer<UInt16>
    private let kernel: Kernel
    /// Keeps the mapping `data` points into alive.
    private let owner: AnyObject?

    /// `rows` rows of `cols` 16-bit values each (row stride `cols`) at `raw`, kept alive by `owner`.
    init(_ raw: UnsafePointer<UInt16>, rows: Int, cols: Int, owner: AnyObject?, kernel: @escaping Kernel) {
        self.rows = rows
        self.cols = cols
        self.data = raw
        self.owner = owner
        self.kernel = kernel
    }

    /// out[m × rows] = a[m × cols] · Wᵀ for activations `a` as the kernel takes them (row stride
    /// `lda`), over `threads` workers, each with its packing scratch from `workspace`.
    func multiply(_ a: UnsafePointer<Activation>, lda: Int, m: Int, out: UnsafeMutablePointer<Float>, ldc: Int, threads: Int,
                  workspace: Workspace) {
        let block = Int(SMELT_BF16_BLOCK_ROWS)
        let jobs = (rows + block - 1) / block
        let per = smelt_gemm_bf16_scratch_count(Int32(cols))
        let scratch = UnsafeMutableRawPointer(workspace.get(Activation.self == Float.self ? "f16Scratch" : "bf16Scratch",
                                                            (threads * per + 1) / 2).p).assumingMemoryBound(to: UInt16.self)
        let rows = self.rows, cols = self.cols, data = self.data, kernel = self.kernel
        Parallel.forEach(jobs, threads: threads) { worker, job in
            let r0 = job * block, r1 = min(rows, r0 + block)
            kernel(Int32(m), Int32(r1 - r0), Int32(cols), a, Int32(lda), data + r0 * cols, Int32(cols),
                   out + r0, Int32(ldc), scratch + worker * per)
        }
    }
}

/// bfloat16 rows multiplied by `smelt_gemm_bf16` (`vdpbf16ps`) on bfloat16 activations.
typealias BF16Product = MappedRowsProduct<UInt16>
/// float16 rows multiplied by `smelt_gemm_f16` (F16C conversion in the kernel, FMAs) on float32
/// activations rounded to float16.
typealias F16Product = MappedRowsProduct<Float>

extension MappedRowsProduct where Activation == UInt16 {
    /// `rows` bfloat16 rows of `cols` values each (row stride `cols`) at `raw`, kept alive by `owner`.
    convenience init(bf16 raw: UnsafePointer<UInt16>, rows: Int, cols: Int, owner: AnyObject?) {
        self.init(raw, rows: rows, cols: cols, owner: owner, kernel: smelt_gemm_bf16)
    }

    /// The row stride of converted activations: `cols` rounded up to even, plus 32 values when
    /// the rows would otherwise lie a multiple of 4 KiB apart (rows at such a stride fall in the
    /// same L1 cache sets, and the kernel reads six of them beside four weight rows).
    static func rowStride(_ cols: Int) -> Int {
        let even = (cols + 1) / 2 * 2
        return (even * 2) % 4096 == 0 ? even + 32 : even
    }

    /// Converts `m` float rows of `cols` values (stride `cols`) to bfloat16 rows of
    /// stride `rowStride(cols)` (round to nearest even, an odd row padded with 0) into `out`.
    static func convert(_ x: UnsafePointer<Float>, m: Int, cols: Int, out: UnsafeMutablePointer<UInt16>, threads: Int) {
        let lda = rowStride(cols)
        Parallel.ranges(m, threads: m * cols > 1 << 15 ? threads : 1) { _, r in
            for t in r { smelt_f32_to_bf16(x + t * cols, out + t * lda, Int32(cols)) }
        }
    }
}

extension MappedRowsProduct where Activation == Float {
    /// `rows` float16 rows of `cols` values each (even; row stride `cols`) at `raw`, kept alive by `owner`.
    convenience init(f16 raw: UnsafePointer<UInt16>, rows: Int, cols: Int, owner: AnyObject?) {
        self.init(raw, rows: rows, cols: cols, owner: owner, kernel: smelt_gemm_f16)
    }
}
