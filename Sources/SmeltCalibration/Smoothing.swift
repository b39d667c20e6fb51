import Foundation
import SmeltFormats
import SmeltEval
import SmeltCompressedTensors

/// What a linear weight of a block reads (GGUF names): the input both smoothing algorithms balance.
enum LinearRole {
    /// Q, K, V (or fused QKV): after `input_layernorm`
    case attentionInput
    case attentionOutput
    /// gate, up (or fused gate-up): after `post_attention_layernorm`
    case feedForwardInput
    case feedForwardDown

    init?(_ name: String) {
        for (suffix, role) in [("attn_q.weight", LinearRole.attentionInput), ("attn_k.weight", .attentionInput),
                               ("attn_v.weight", .attentionInput), ("attn_qkv.weight", .attentionInput),
                               ("attn_output.weight", .attentionOutput), ("ffn_gate.weight", .feedForwardInput),
                               ("ffn_up.weight", .feedForwardInput), ("ffn_down.weight", .feedForwardDown)]
        where name.hasSuffix(suffix) { self = role; return }
        return nil
    }
}

extension Calibrator {
    /// Norm weights are stored as `1 + w` by Gemma: folding scales into them is not supported there.
    func checkSmoothable() throws {
        let a = model.config.architecture
        if a == .gemma2 || a == .gemma3 {
            throw SmeltError("\(model.source.path): SmoothQuant and AWQ fold scales into RMSNorm weights, which Gemma stores as 1 + w; not supported for \(a)")
        }
    }

    /// SmoothQuant (Xiao et al. 2023) as llm-compressor's `SmoothQuantModifier` applies it: per input
    /// channel j of the linear layers after each RMSNorm (input_layernorm → q/k/v, post_attention_layernorm
    /// → gate/up), s_j = range(X_j)^α / (2·max|W_j|)^(1−α) with range = max x_j − min x_j over the
    /// calibration tokens and max|W_j| over the balanced layers (s_j = range where the weights are 0;
    /// at least 1e-5); the norm weight is divided by s and the weights' column j multiplied by s (both
    /// rounded to the model's dtype). The float model computes the same function; the activations that
    /// W8A8 quantizes per token lose their outlier channels.
    public func smoothQuant(alpha: Double) throws -> CalibrationOutcome {
        guard alpha >= 0, alpha <= 1 else { throw SmeltError("SmoothQuant strength must be between 0 and 1 (got \(alpha))") }
        try checkSmoothable()
        try begin()
        let start = Date()
        var out = CalibrationOutcome()
        out.tokens = tokens
        for il in 0..<model.layerCount {
            let names = model.linearWeightNames(layer: il)
            let groups: [(BlockNorm, [String])] = [
                (.attention, names.filter { LinearRole($0) == .attentionInput }),
                (.feedForward, names.filter { LinearRole($0) == .feedForwardInput }),
            ]
            let stats = try statistics(il, weights: groups.flatMap { $0.1 }, hessian: false)
            for (norm, balance) in groups where !balance.isEmpty {
                guard let st = stats.statistics(of: balance[0]) else { continue }
                let mats = try balance.map { try model.weightValues($0) }
                let cols = st.channels
                var wmax = [Double](repeating: 0, count: cols)
                for m in mats {
                    guard m.cols == cols else { throw SmeltError("\(balance[0]): balanced layers of different widths") }
                    for r in 0..<m.rows { for c in 0..<cols { wmax[c] = max(wmax[c], Double(abs(m.values[r * cols + c]))) } }
                }
                var s = [Float](repeating: 1, count: cols)
                for j in 0..<cols {
                    let range = Double(st.maximum[j] - st.minimum[j])
                    let ws = 2 * wmax[j]
                    let v = ws > 0 ? pow(range, alpha) / pow(ws, 1 - alpha) : range
                    s[j] = Float(max(v, 1e-5))
                }
                try fold(scales: s, layer: il, norm: norm, balance: balance, matrices: mats, into: &out)
            }
            try advance(il)
            progress(il + 1, model.layerCount)
        }
        out.seconds = Date().timeIntervalSince(start)
        return out
    }

    /// Divides the norm weight by `s`, multiplies column j of each balanced matrix by s_j (rounded to the
    /// model's dtype), updates the model and records both.
    func fold(scales s: [Float], layer il: Int, norm: BlockNorm, balance: [String],
              matrices: [(rows: Int, cols: Int, values: [Float])], into out: inout CalibrationOutcome) throws {
        let t = weightType
        var nw = try model.normWeight(layer: il, norm)
        for j in nw.indices { nw[j] = t.round(nw[j] / s[j]) }
        try model.replaceNormWeight(layer: il, norm, values: nw)
        out.norms[normName(il, norm)] = nw
        for (name, m) in zip(balance, matrices) {
            var v = m.values
            for r in 0..<m.rows { for c in 0..<m.cols { v[r * m.cols + c] = t.round(v[r * m.cols + c] * s[c]) } }
            try model.replaceWeight(name, values: v)
            out.weights[checkpointName(name)] = v
        }
    }

    /// The checkpoint name of a block's norm weight.
    func normName(_ il: Int, _ norm: BlockNorm) -> String {
        let g = norm == .attention ? "blk.\(il).attn_norm.weight" : "blk.\(il).ffn_norm.weight"
        return checkpointName(g)
    }
}
