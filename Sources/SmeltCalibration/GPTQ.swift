import Foundation
import SmeltFormats
import SmeltEval
import SmeltCompressedTensors

/// Settings of GPTQ (IST-DASLab/gptq's `fasterquant`, llm-compressor's `GPTQModifier`).
public struct GPTQOptions: Sendable, Equatable {
    /// Columns per block of lazy error propagation.
    public var blockSize = 128
    /// Dampening: this fraction of mean(diag H) is added to the diagonal.
    public var dampening = 0.01
    /// Static activation ordering (llm-compressor's `actorder: static`/"weight"): group scales are
    /// computed once from the original weights, then columns are processed in order of decreasing
    /// diag(H); no `g_idx` is needed. false: columns in order, each group's scales computed at its first
    /// column from the weights as GPTQ has updated them so far (IST-DASLab's `fasterquant` with groups).
    public var actOrder = true

    public init(blockSize: Int = 128, dampening: Double = 0.01, actOrder: Bool = true) {
        self.blockSize = blockSize; self.dampening = dampening; self.actOrder = actOrder
    }
}

/// One matrix quantized by GPTQ.
public struct GPTQResult: Sendable {
    public let rows: Int
    public let cols: Int
    /// The quantized weights dequantized ((q − zp) · scale), row-major.
    public var values: [Float]
    /// The integers q (zero point included, in [q_min, q_max]), row-major.
    public var integers: [Int8]
    /// Scales, `rows × groups` (groups = 1 per channel).
    public var scales: [Float]
    /// Zero points, `rows × groups` (all 0 when symmetric).
    public var zeroPoints: [Int8]
    /// GPTQ's loss Σ (w − q)² / (2 · [H⁻¹]ᵢᵢ²) (llm-compressor's logged "error").
    public var loss: Double
    /// True when H could not be factored and the matrix was rounded to nearest (llm-compressor's fallback).
    public var fellBack: Bool
}

/// GPTQ (Frantar et al. 2022) on one weight matrix, as IST-DASLab/gptq and llm-compressor's
/// `quantize_weight` compute it, in double precision: dead columns (diag H = 0) zeroed,
/// H + λI with λ = dampening · mean(diag H), U = upper Cholesky factor of H⁻¹, columns quantized one by
/// one with their error spread over the following columns of the block (row i of U), blocks of
/// `blockSize` columns with the block's error propagated to the rest by one matrix product.
public enum GPTQ {
    /// Quantizes `weight` (`rows × cols`, row-major) with the Hessian `hessian` (`cols × cols`, 2/n Σ x xᵀ)
    /// to `grid`. With a compressed-tensors grid, scales are computed and stored in the model's dtype and
    /// `values` are the integers dequantized as the checkpoint's reader dequantizes them.
    public static func quantize(weight: [Float], rows: Int, cols: Int, hessian: [Double], grid: IntegerGrid,
                                options: GPTQOptions = GPTQOptions()) throws -> GPTQResult {
        guard rows > 0, cols > 0, weight.count == rows * cols else {
            throw SmeltError("GPTQ: \(weight.count) weights for a \(rows) × \(cols) matrix")
        }
        guard hessian.count == cols * cols else { throw SmeltError("GPTQ: Hessian of \(hessian.count) values for \(cols) columns") }
        guard options.blockSize > 0, options.dampening >= 0 else { throw SmeltError("GPTQ: block size must be positive and dampening non-negative") }
        if let g = grid.groupSize, g <= 0 { throw SmeltError("GPTQ: group size must be positive") }
        guard (2...8).contains(grid.bits) else { throw SmeltError("GPTQ: \(grid.bits)-bit integers are not supported (2…8)") }
        if let (a, _) = grid.compressedTensors { _ = try CTQuantizer.scaleColumns(a, columns: cols) }  // the writer's shape rule
        let n = cols
        let gs = grid.groupSize ?? n
        let groups = grid.groups(cols: n)
        // W transposed (column-major: one column of the weight = one contiguous row of wt)
        var wt = [Double](repeating: 0, count: n * rows)
        for r in 0..<rows { for c in 0..<n { wt[c * rows + r] = Double(weight[r * n + c]) } }
        var h = hessian

        var scale = [Double](repeating: 0, count: rows * groups)
        var zero = [Double](repeating: 0, count: rows * groups)
        func computeGroup(_ g: Int, columns: Range<Int>, from w: [Double]) {
            for r in 0..<rows {
                var lo = Double.infinity, hi = -Double.infinity
                for c in columns { let v = w[c * rows + r]; lo = min(lo, v); hi = max(hi, v) }
                let (s, z) = grid.parameters(min: lo, max: hi)
                scale[r * groups + g] = s
                zero[r * groups + g] = z
            }
        }

        // static groups (llm-compressor's observer on the original weights), then the permutation
        var perm = Array(0..<n)
        if options.actOrder || grid.groupSize == nil {
            for g in 0..<groups { computeGroup(g, columns: (g * gs)..<min(n, (g + 1) * gs), from: wt) }
        }
        if options.actOrder {
            let d = (0..<n).map { h[$0 * n + $0] }
            perm.sort { d[$0] > d[$1] || (d[$0] == d[$1] && $0 < $1) }
            var pw = wt, ph = h
            for (i, p) in perm.enumerated() {
                for r in 0..<rows { pw[i * rows + r] = wt[p * rows + r] }
                for (j, q) in perm.enumerated() { ph[i * n + j] = h[p * n + q] }
            }
            wt = pw; h = ph
        }
        // dead columns
        for i in 0..<n where h[i * n + i] == 0 {
            h[i * n + i] = 1
            for r in 0..<rows { wt[i * rows + r] = 0 }
        }
        var mean = 0.0
        for i in 0..<n { mean += h[i * n + i] }
        let damp = options.dampening * mean / Double(n)
        for i in 0..<n { h[i * n + i] += damp }
        var fellBack = false
        var hinv: [Double]
        if let u = LinearAlgebra.inverseCholeskyUpper(h, n: n) {
            hinv = u
        } else {
            fellBack = true
            hinv = [Double](repeating: 0, count: n * n)
            for i in 0..<n { hinv[i * n + i] = 1 }
        }
        h = []

        var q = [Double](repeating: 0, count: n * rows)     // integers, transposed
        var loss = 0.0
        let bs = options.blockSize
        var i1 = 0
        while i1 < n {
            let i2 = min(n, i1 + bs), count = i2 - i1
            var w1 = Array(wt[(i1 * rows)..<(i2 * rows)])
            var err1 = [Double](repeating: 0, count: count * rows)
            for i in 0..<count {
                let col = i1 + i
                let d = hinv[col * n + col]
                let g: Int
                if options.actOrder {
                    g = perm[col] / gs
                } else {
                    g = col / gs
                    // IST-DASLab: a group's scales from the (globally updated) weights at its first column
                    if grid.groupSize != nil && col % gs == 0 { computeGroup(g, columns: col..<min(n, col + gs), from: wt) }
                }
                for r in 0..<rows {
                    let w = w1[i * rows + r]
                    let s = scale[r * groups + g], z = zero[r * groups + g]
                    let qi = grid.quantize(w, scale: s, zeroPoint: z)
                    q[col * rows + r] = qi
                    let dq = grid.dequantize(qi, scale: s, zeroPoint: z)
                    loss += (w - dq) * (w - dq) / (d * d) / 2
                    err1[i * rows + r] = (w - dq) / d
                }
                // W1[:, i:] -= err ⊗ Hinv1[i, i:]
                err1.withUnsafeBufferPointer { ep in
                    w1.withUnsafeMutableBufferPointer { wp in
                        let e = ep.baseAddress! + i * rows
                        for j in (i + 1)..<max(i + 1, count) {
                            let f = hinv[col * n + i1 + j]
                            if f == 0 { continue }
                            let dst = wp.baseAddress! + j * rows
                            for r in 0..<rows { dst[r] -= f * e[r] }
                        }
                    }
                }
            }
            // W[:, i2:] -= Err1 · Hinv[i1:i2, i2:]   (transposed: Wt[i2:] -= Hinv[i1:i2, i2:]ᵀ · Err1ᵀ)
            if i2 < n {
                hinv.withUnsafeBufferPointer { hp in
                    err1.withUnsafeBufferPointer { ep in
                        wt.withUnsafeMutableBufferPointer { wp in
                            LinearAlgebra.gemm(transA: true, m: n - i2, n: rows, k: count, alpha: -1,
                                               a: hp.baseAddress! + i1 * n + i2, lda: n, b: ep.baseAddress!, ldb: rows,
                                               beta: 1, c: wp.baseAddress! + i2 * rows, ldc: rows)
                        }
                    }
                }
            }
            i1 = i2
        }

        // back to the original column order, row-major
        var values = [Float](repeating: 0, count: rows * n)
        var ints = [Int8](repeating: 0, count: rows * n)
        for (pos, c) in perm.enumerated() {
            let g = c / gs
            for r in 0..<rows {
                let qi = q[pos * rows + r]
                ints[r * n + c] = Int8(qi)
                values[r * n + c] = Float(grid.dequantize(qi, scale: scale[r * groups + g], zeroPoint: zero[r * groups + g]))
            }
        }
        return GPTQResult(rows: rows, cols: n, values: values, integers: ints, scales: scale.map { Float($0) },
                          zeroPoints: zero.map { Int8($0) }, loss: loss, fellBack: fellBack)
    }
}
