import Foundation
import SmeltFormats

/// Statistics of the input of one linear layer over calibration tokens, per input channel: what
/// SmoothQuant (max |x|), AWQ (mean |x|) and GPTQ (the Hessian 2/n Σ x xᵀ) need.
public struct InputStatistics: Sendable {
    /// Input channels (the weight's columns).
    public let channels: Int
    /// Tokens seen.
    public internal(set) var count: Int = 0
    /// max |x_j| over the tokens.
    public internal(set) var absMax: [Float]
    /// min x_j and max x_j over the tokens (SmoothQuant's dynamic range is their difference).
    public internal(set) var minimum: [Float]
    public internal(set) var maximum: [Float]
    /// Σ |x_j| over the tokens (`meanAbs` divides by `count`).
    public internal(set) var absSum: [Double]
    /// Σ x xᵀ (`channels²`, row-major, float32 sums as torch accumulates them; the upper triangle is
    /// kept, with the diagonal blocks' lower parts), when asked for.
    var outerSum: [Float]?

    init(channels: Int, hessian: Bool) {
        self.channels = channels
        absMax = [Float](repeating: 0, count: channels)
        minimum = [Float](repeating: .infinity, count: channels)
        maximum = [Float](repeating: -.infinity, count: channels)
        absSum = [Double](repeating: 0, count: channels)
        outerSum = hessian ? [Float](repeating: 0, count: channels * channels) : nil
    }

    /// mean |x_j| (AWQ's activation statistic).
    public var meanAbs: [Float] { absSum.map { Float($0 / Double(max(count, 1))) } }

    /// GPTQ's Hessian H = 2/n Σ x xᵀ in double precision (row-major), nil when not collected.
    public var hessian: [Double]? {
        guard let s = outerSum else { return nil }
        let f = 2 / Double(max(count, 1)), n = channels
        var h = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                let v = Double(s[i * n + j]) * f
                h[i * n + j] = v
                h[j * n + i] = v
            }
        }
        return h
    }
}

/// Collects `InputStatistics` for the linear weights it is told to watch, during the block-by-block
/// forward pass (`InferenceModel.runLayer`). Weights that read the same input in a row (Q/K/V,
/// gate/up) share one entry: the statistics are computed once per input.
public final class CalibrationStatistics: ActivationObserver {
    /// Weight name → key of its input's entry.
    public private(set) var inputOf: [String: String] = [:]
    /// Input key (the first weight that read it) → statistics.
    public private(set) var inputs: [String: InputStatistics] = [:]
    private let watched: Set<String>
    private let hessian: Bool
    private let threads: Int
    private var last: (pointer: UnsafePointer<Float>, rows: Int, cols: Int, key: String)?

    /// Watches `weights` (GGUF names); `hessian` also accumulates Σ x xᵀ (GPTQ).
    public init(weights: [String], hessian: Bool, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        watched = Set(weights)
        self.hessian = hessian
        self.threads = max(1, threads)
    }

    /// The statistics of `weight`'s input.
    public func statistics(of weight: String) -> InputStatistics? { inputOf[weight].flatMap { inputs[$0] } }

    /// Drops everything collected (the next batch of the same weights starts a new pass, or memory is freed).
    public func reset() { inputOf = [:]; inputs = [:]; last = nil }

    public func observe(weight: String, input: UnsafePointer<Float>, rows: Int, cols: Int) {
        guard watched.contains(weight), rows > 0 else { last = nil; return }
        if let l = last, l.pointer == input, l.rows == rows, l.cols == cols, l.key != weight,
           inputOf[weight] == nil || inputOf[weight] == l.key {
            // the same buffer read again right away (Q/K/V, gate/up of one pass): one entry
            inputOf[weight] = l.key
            return
        }
        let key = inputOf[weight] ?? weight
        inputOf[weight] = key
        last = (input, rows, cols, key)
        var st = inputs[key] ?? InputStatistics(channels: cols, hessian: hessian)
        inputs[key] = nil
        guard st.channels == cols else { return }
        accumulate(&st, input, rows: rows)
        inputs[key] = st
    }

    private func accumulate(_ st: inout InputStatistics, _ x: UnsafePointer<Float>, rows: Int) {
        let n = st.channels
        st.absMax.withUnsafeMutableBufferPointer { mp in
            st.absSum.withUnsafeMutableBufferPointer { sp in
                st.minimum.withUnsafeMutableBufferPointer { lp in
                    st.maximum.withUnsafeMutableBufferPointer { hp in
                        let m = mp.baseAddress!, s = sp.baseAddress!, lo = lp.baseAddress!, hi = hp.baseAddress!
                        Parallel.ranges(n, threads: rows * n > 1 << 16 ? threads : 1) { _, r in
                            for t in 0..<rows {
                                let row = x + t * n
                                for j in r {
                                    let v = row[j], a = abs(v)
                                    if a > m[j] { m[j] = a }
                                    if v < lo[j] { lo[j] = v }
                                    if v > hi[j] { hi[j] = v }
                                    s[j] += Double(a)
                                }
                            }
                        }
                    }
                }
            }
        }
        st.count += rows
        if st.outerSum != nil {
            st.outerSum!.withUnsafeMutableBufferPointer { hp in
                let h = hp.baseAddress!
                // the upper triangle only (the sum is symmetric; `hessian` mirrors it), in row blocks
                // handed to the workers as they come free: H[r, r0...] += X[:, r]ᵀ X[:, r0...]
                let block = 64
                let nb = (n + block - 1) / block
                Parallel.forEach(nb, threads: threads) { _, b in
                    let lo = b * block, cnt = min(n, lo + block) - lo
                    BLAS.gemmTN(m: cnt, n: n - lo, k: rows, a: x + lo, lda: n, b: x + lo, ldb: n, beta: 1, c: h + lo * n + lo, ldc: n)
                }
            }
        }
    }
}

/// Double-precision dense linear algebra for calibration algorithms (through OpenBLAS/LAPACK, which
/// SmeltEval wraps).
public enum LinearAlgebra {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C (row-major; `transA`: A stored k×m, `transB`: B stored n×k).
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Double = 1,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        BLAS.dgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c, ldc: ldc)
    }

    /// GPTQ's inverse-Hessian factor: U upper-triangular with UᵀU = H⁻¹ (torch's
    /// `cholesky(cholesky_inverse(cholesky(H)), upper=True)`). `h` is n×n symmetric positive definite,
    /// row-major; the result is row-major with zeros below the diagonal. nil when H is not positive definite.
    public static func inverseCholeskyUpper(_ h: [Double], n: Int) -> [Double]? {
        guard n > 0, h.count == n * n else { return nil }
        var a = h
        let ok: Bool = a.withUnsafeMutableBufferPointer { ap in
            let p = ap.baseAddress!
            guard BLAS.cholesky(p, n: n, upper: false), BLAS.choleskyInverse(p, n: n) else { return false }
            // H⁻¹ is in the lower triangle: mirror it, then factor upper
            for i in 0..<n { for j in (i + 1)..<n { p[i * n + j] = p[j * n + i] } }
            guard BLAS.cholesky(p, n: n, upper: true) else { return false }
            for i in 0..<n { for j in 0..<i { p[i * n + j] = 0 } }
            return true
        }
        return ok ? a : nil
    }
}
