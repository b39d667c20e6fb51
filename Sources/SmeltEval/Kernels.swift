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

    /// Whether q4_0/q4_1/q5_0/q5_1/q8_0/iq4_nl/q2_K…q6_K/iq4_xs matrices are multiplied in
    /// integers (AVX-512 VNNI `vpdpwssd`) on activations quantized as llama.cpp
    /// quantizes them, instead of float32 products on dequantized weights.
    /// Off without the instructions or with `SMELT_NO_NATIVE_KERNELS=1`.
    public static let intDot = allowed && smelt_cpu_has_int_dot() != 0

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

/// A bfloat16 matrix repacked for `smelt_gemm_bf16`: panels of 16 rows with
/// the inputs interleaved by pairs, so that one AVX-512 register holds one
/// input pair of 16 output features (no horizontal sums).
final class PackedBF16: @unchecked Sendable {
    let rows: Int, cols: Int
    let data: UnsafeMutablePointer<UInt16>

    /// Packs `rows` bfloat16 rows of `cols` values each (row stride `cols`).
    init(bf16 raw: UnsafePointer<UInt16>, rows: Int, cols: Int, threads: Int) {
        self.rows = rows
        self.cols = cols
        let n = smelt_bf16_packed_count(Int32(rows), Int32(cols))
        data = .allocate(capacity: n)
        let panelsPerJob = 64
        let panels = (rows + 15) / 16
        let pairs = (cols + 1) / 2
        let jobs = (panels + panelsPerJob - 1) / panelsPerJob
        Parallel.forEach(jobs, threads: threads) { _, j in
            let r0 = j * panelsPerJob * 16, r1 = min(rows, r0 + panelsPerJob * 16)
            smelt_bf16_pack(raw + r0 * cols, Int32(cols), Int32(r1 - r0), Int32(cols),
                            self.data + (r0 / 16) * pairs * 32)
        }
    }

    deinit { data.deallocate() }

    /// Bytes taken.
    var byteCount: Int { smelt_bf16_packed_count(Int32(rows), Int32(cols)) * 2 }

    /// out[m × rows] = a[m × cols] · Wᵀ for activations `a` already in bfloat16
    /// (row stride `lda`, even), over `threads` workers.
    func multiply(_ a: UnsafePointer<UInt16>, lda: Int, m: Int, out: UnsafeMutablePointer<Float>, ldc: Int, threads: Int) {
        let panelGroup = 4  // 64 output features per job
        let groups = ((rows + 15) / 16 + panelGroup - 1) / panelGroup
        let tokenBlock = 96
        let tokenBlocks = (m + tokenBlock - 1) / tokenBlock
        let pairs = (cols + 1) / 2
        let rows = self.rows, cols = self.cols, data = self.data
        Parallel.forEach(groups * tokenBlocks, threads: threads) { _, job in
            let g = job / tokenBlocks, tb = job % tokenBlocks
            let r0 = g * panelGroup * 16, r1 = min(rows, r0 + panelGroup * 16)
            let t0 = tb * tokenBlock, t1 = min(m, t0 + tokenBlock)
            smelt_gemm_bf16(Int32(t1 - t0), Int32(r1 - r0), Int32(cols), a + t0 * lda, Int32(lda),
                            data + (r0 / 16) * pairs * 32, out + t0 * ldc + r0, Int32(ldc))
        }
    }

    /// Converts `m` float rows of `cols` values (stride `cols`) to bfloat16 rows of
    /// stride `2·⌈cols/2⌉` (round to nearest even) into `out`.
    static func convert(_ x: UnsafePointer<Float>, m: Int, cols: Int, out: UnsafeMutablePointer<UInt16>, threads: Int) {
        let lda = (cols + 1) / 2 * 2
        Parallel.ranges(m, threads: m * cols > 1 << 15 ? threads : 1) { _, r in
            for t in r { smelt_f32_to_bf16(x + t * cols, out + t * lda, Int32(cols)) }
        }
    }
}
