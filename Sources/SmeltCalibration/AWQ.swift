import Foundation
import SmeltFormats
import SmeltEval
import SmeltCompressedTensors

/// Settings of AWQ (llm-compressor's `AWQModifier`, AutoAWQ's clipping search).
public struct AWQOptions: Sendable {
    /// Ratios tried: 0, 1/n, …, (n−1)/n.
    public var grid = 20
    /// Scales from both activations and weights (llm-compressor's `duo_scaling`).
    public var duoScaling = true
    /// Calibration sequences on which each candidate's block output is compared with the float block's.
    public var searchSequences = 2
    /// AutoAWQ's clipping search after the scales (not in llm-compressor).
    public var clip = true
    /// Tokens the clipping search uses (every k-th calibration token of the search sequences).
    public var clipTokens = 512
    public init(grid: Int = 20, duoScaling: Bool = true, searchSequences: Int = 2, clip: Bool = true, clipTokens: Int = 512) {
        self.grid = grid; self.duoScaling = duoScaling; self.searchSequences = searchSequences; self.clip = clip
        self.clipTokens = clipTokens
    }
}

/// Copies the inputs of chosen weights (every `stride`-th row) during a forward pass.
final class ActivationCapture: ActivationObserver {
    let watched: Set<String>
    let stride: Int
    var captured: [String: (cols: Int, values: [Float])] = [:]
    init(weights: [String], stride: Int) { watched = Set(weights); self.stride = max(1, stride) }
    func observe(weight: String, input: UnsafePointer<Float>, rows: Int, cols: Int) {
        guard watched.contains(weight) else { return }
        var e = captured[weight] ?? (cols, [])
        var t = 0
        while t < rows { e.values.append(contentsOf: UnsafeBufferPointer(start: input + t * cols, count: cols)); t += stride }
        captured[weight] = e
    }
}

extension Calibrator {
    /// The first `count` calibration sequences' hidden states at the next block's input.
    func leadingStates(_ count: Int) -> [HiddenStates] {
        var out: [HiddenStates] = []
        var left = count
        for s in states where left > 0 {
            let p = s.sequenceCount <= left ? s : s.prefix(sequences: left)
            out.append(p)
            left -= p.sequenceCount
        }
        return out
    }

    /// Block `il`'s output for `inputs` (the model's current weights).
    func blockOutputs(_ il: Int, _ inputs: [HiddenStates], observer: ActivationObserver? = nil) throws -> [[Float]] {
        var outs: [[Float]] = []
        for var s in inputs {
            try model.runLayer(il, &s, observer: observer)
            outs.append(s.values)
        }
        return outs
    }

    /// AWQ (Lin et al. 2023) as llm-compressor's `AWQModifier` computes it, for the weights `grid` assigns
    /// an integer grid: per mapping (input_layernorm → q/k/v, v → o when their shapes match,
    /// post_attention_layernorm → gate/up, up → down), x̄ = mean |x| per input channel and w̄ = mean over
    /// the balanced rows of |w| / max|w| of its quantization group; for ratio r in 0, 1/20 … 19/20,
    /// s = max(x̄^r / (w̄^(1−r) + 1e-4), 1e-4), s /= sqrt(max s · min s), the balanced weights become
    /// Q(W·s)/s and the block's output on the search sequences is compared with the float block's
    /// (mean squared error; llm-compressor compares the mapping's parent module). The best s is folded
    /// in (W·s, smooth layer / s). Then AutoAWQ's clipping search: for every balanced weight except Q and K,
    /// per row and group the clipping bound max|w|·(1 − i/20), i < 10, that minimises the error of the
    /// group's partial output on sampled calibration inputs; the weight is clamped to it. The weights are
    /// left in float (rounded to the model's dtype) for round-to-nearest quantization.
    public func awq(grid: (String) -> IntegerGrid?, options: AWQOptions = AWQOptions()) throws -> CalibrationOutcome {
        try checkSmoothable()
        try begin()
        guard options.grid > 0, options.searchSequences > 0 else { throw SmeltError("AWQ: grid and search sequences must be positive") }
        let start = Date()
        var out = CalibrationOutcome()
        out.tokens = tokens
        let t = weightType
        for il in 0..<model.layerCount {
            let names = model.linearWeightNames(layer: il).filter { grid(checkpointName($0)) != nil }
            if !names.isEmpty {
                enum Smooth { case norm(BlockNorm), linear(String) }
                var mappings: [(Smooth, [String])] = []
                let attnIn = names.filter { LinearRole($0) == .attentionInput }
                let ffnIn = names.filter { LinearRole($0) == .feedForwardInput }
                if !attnIn.isEmpty { mappings.append((.norm(.attention), attnIn)) }
                if let v = names.first(where: { $0.hasSuffix("attn_v.weight") }),
                   let o = names.first(where: { LinearRole($0) == .attentionOutput }) {
                    let vs = try model.weightValues(v), os = try model.weightValues(o)
                    if vs.rows == os.cols { mappings.append((.linear(v), [o])) }
                }
                if !ffnIn.isEmpty { mappings.append((.norm(.feedForward), ffnIn)) }
                if names.contains(where: { $0.hasSuffix("ffn_gate.weight") }),
                   let up = names.first(where: { $0.hasSuffix("ffn_up.weight") }),
                   let down = names.first(where: { LinearRole($0) == .feedForwardDown }) {
                    mappings.append((.linear(up), [down]))
                }
                // mean |x| of every balanced input (one pass; smoothing leaves the float inputs as they are)
                let stats = try statistics(il, weights: mappings.map { $0.1[0] }, hessian: false)
                let search = leadingStates(options.searchSequences)   // the search sequences, at this block's input
                let reference = try blockOutputs(il, search)
                var changed = Set<String>()
                for (smooth, balance) in mappings {
                    guard let st = stats.statistics(of: balance[0]), let g = grid(checkpointName(balance[0])) else { continue }
                    let xMean = st.meanAbs.map(Double.init)
                    let mats = try balance.map { try model.weightValues($0) }
                    let cols = st.channels
                    // w̄: |w| / group max, averaged over all balanced rows
                    var wMean = [Double](repeating: 0, count: cols)
                    var rowsTotal = 0
                    let gs = g.groupSize ?? cols
                    for m in mats {
                        for r in 0..<m.rows {
                            var c0 = 0
                            while c0 < cols {
                                let c1 = min(cols, c0 + gs)
                                var amax: Float = 0
                                for c in c0..<c1 { amax = max(amax, abs(m.values[r * cols + c])) }
                                for c in c0..<c1 { wMean[c] += Double(abs(m.values[r * cols + c]) / (amax + 1e-6)) }
                                c0 = c1
                            }
                        }
                        rowsTotal += m.rows
                    }
                    for c in 0..<cols { wMean[c] /= Double(max(rowsTotal, 1)) }
                    var best: (loss: Double, scales: [Float])?
                    for k in 0..<options.grid {
                        let ratio = Double(k) / Double(options.grid)
                        var s = (0..<cols).map { j -> Double in
                            let v = options.duoScaling ? pow(xMean[j], ratio) / (pow(wMean[j], 1 - ratio) + 1e-4) : pow(xMean[j], ratio)
                            return max(v, 1e-4)
                        }
                        let norm = ((s.max() ?? 1) * (s.min() ?? 1)).squareRoot()
                        s = s.map { let v = $0 / norm; return v.isFinite ? v : 1 }
                        let sf = s.map { Float($0) }
                        for (name, m) in zip(balance, mats) {
                            var w = m.values
                            for r in 0..<m.rows { for c in 0..<cols { w[r * cols + c] = t.round(w[r * cols + c] * sf[c]) } }
                            var q = g.roundToNearest(w, rows: m.rows, cols: cols)
                            for r in 0..<m.rows { for c in 0..<cols { q[r * cols + c] = t.round(q[r * cols + c] / sf[c]) } }
                            try model.replaceWeight(name, values: q)
                        }
                        let outs = try blockOutputs(il, search)
                        var loss = 0.0, count = 0
                        for (a, b) in zip(outs, reference) {
                            for i in a.indices { let d = Double(a[i] - b[i]); loss += d * d }
                            count += a.count
                        }
                        loss /= Double(max(count, 1))
                        if loss.isFinite && (best == nil || loss < best!.loss) { best = (loss, sf) }
                    }
                    // the original weights back, then the best scales folded in
                    for (name, m) in zip(balance, mats) { try model.replaceWeight(name, values: m.values) }
                    guard let (_, s) = best else { throw SmeltError("AWQ: no finite loss in block \(il) (non-finite activations)") }
                    switch smooth {
                    case let .norm(n):
                        try fold(scales: s, layer: il, norm: n, balance: balance, matrices: mats, into: &out)
                    case let .linear(prev):
                        // the smooth linear's output rows divided by s, the balanced columns multiplied by s
                        var p = try model.weightValues(prev)
                        for r in 0..<p.rows { for c in 0..<p.cols { p.values[r * p.cols + c] = t.round(p.values[r * p.cols + c] / s[r]) } }
                        try model.replaceWeight(prev, values: p.values)
                        out.weights[checkpointName(prev)] = p.values
                        changed.insert(prev)
                        for (name, m) in zip(balance, mats) {
                            var v = m.values
                            for r in 0..<m.rows { for c in 0..<cols { v[r * cols + c] = t.round(v[r * cols + c] * s[c]) } }
                            try model.replaceWeight(name, values: v)
                            out.weights[checkpointName(name)] = v
                        }
                    }
                    changed.formUnion(balance)
                }
                if options.clip {
                    let clipNames = names.filter { !$0.hasSuffix("attn_q.weight") && !$0.hasSuffix("attn_k.weight") }
                    let searchTokens = search.reduce(0) { $0 + $1.tokens }
                    let capture = ActivationCapture(weights: clipNames, stride: max(1, searchTokens / max(1, options.clipTokens)))
                    _ = try blockOutputs(il, search, observer: capture)
                    for name in clipNames {
                        guard let g = grid(checkpointName(name)), let x = capture.captured[name] else { continue }
                        var m = try model.weightValues(name)
                        m.values = clipSearch(m.values, rows: m.rows, cols: m.cols, inputs: x.values, grid: g)
                        try model.replaceWeight(name, values: m.values)
                        out.weights[checkpointName(name)] = m.values
                    }
                }
            }
            try advance(il)
            progress(il + 1, model.layerCount)
        }
        out.seconds = Date().timeIntervalSince(start)
        return out
    }

    /// AutoAWQ's `_search_best_clip`: per row and group, the bound max|w|·(1 − i/20), i = 0…9, whose
    /// clamped-and-quantized group gives the smallest mean squared error of the group's partial output
    /// Σ_{c∈group} x_c·w_c over the sampled inputs; returns the weights clamped to the chosen bounds.
    func clipSearch(_ w: [Float], rows: Int, cols: Int, inputs x: [Float], grid g: IntegerGrid) -> [Float] {
        let n = x.count / cols
        guard n > 0 else { return w }
        let gs = g.groupSize ?? cols
        let groups = (cols + gs - 1) / gs
        var out = w
        let xd = x.map(Double.init)
        for gi in 0..<groups {
            let c0 = gi * gs, c1 = min(cols, c0 + gs), width = c1 - c0
            // X_g (n × width) and the original partial outputs n × rows
            var xg = [Double](repeating: 0, count: n * width)
            for t in 0..<n { for c in 0..<width { xg[t * width + c] = xd[t * cols + c0 + c] } }
            var wg = [Double](repeating: 0, count: rows * width)
            for r in 0..<rows { for c in 0..<width { wg[r * width + c] = Double(w[r * cols + c0 + c]) } }
            var orig = [Double](repeating: 0, count: n * rows)
            LinearAlgebra.gemm(transB: true, m: n, n: rows, k: width, a: xg, lda: width, b: wg, ldb: width, c: &orig, ldc: rows)
            let amax = (0..<rows).map { r in (0..<width).reduce(0.0) { max($0, abs(wg[r * width + $1])) } }
            var bestErr = [Double](repeating: .infinity, count: rows)
            var bestMax = amax
            var cur = [Double](repeating: 0, count: rows * width)
            var curOut = [Double](repeating: 0, count: n * rows)
            for i in 0..<10 {
                let f = 1 - Double(i) / 20
                for r in 0..<rows {
                    let mx = amax[r] * f
                    var lo = Double.infinity, hi = -Double.infinity
                    for c in 0..<width { let v = min(mx, max(-mx, wg[r * width + c])); cur[r * width + c] = v; lo = min(lo, v); hi = max(hi, v) }
                    let (s, z) = g.parameters(min: lo, max: hi)
                    for c in 0..<width { cur[r * width + c] = g.fakeQuantize(cur[r * width + c], scale: s, zeroPoint: z) }
                }
                LinearAlgebra.gemm(transB: true, m: n, n: rows, k: width, a: xg, lda: width, b: cur, ldb: width, c: &curOut, ldc: rows)
                for r in 0..<rows {
                    var e = 0.0
                    for t in 0..<n { let d = curOut[t * rows + r] - orig[t * rows + r]; e += d * d }
                    e /= Double(n)
                    if e < bestErr[r] { bestErr[r] = e; bestMax[r] = amax[r] * f }
                }
            }
            for r in 0..<rows {
                let mx = Float(bestMax[r])
                for c in c0..<c1 { out[r * cols + c] = min(mx, max(-mx, w[r * cols + c])) }
            }
        }
        return out
    }
}
