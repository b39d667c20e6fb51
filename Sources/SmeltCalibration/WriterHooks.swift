import Foundation
import SmeltFormats
import SmeltEval
import SmeltCompressedTensors

extension CalibrationOutcome {
    /// Float values a calibration changed (AWQ / SmoothQuant weights and norms), by checkpoint tensor
    /// name: the checkpoint writer's `weights` hook.
    public func tensorValues(_ name: String) -> [Float]? { weights[name] ?? norms[name] }

    /// The checkpoint writer's quantizer: GPTQ's own integers, scales and zero points for the weights it
    /// quantized, round-to-nearest (`fallback`) for the others.
    public func quantizer(fallback: @escaping CTWeightQuantizer = CTCheckpointWriter.roundToNearest) -> CTWeightQuantizer {
        let quantized = self.quantized
        return { module, w, rows, cols, args, type in
            guard let r = quantized[module + ".weight"] else { return try fallback(module, w, rows, cols, args, type) }
            guard r.rows == rows, r.cols == cols else {
                throw SmeltError("GPTQ result for \(module) is \(r.rows) × \(r.cols), the weight \(rows) × \(cols)")
            }
            let groups = r.scales.count / max(rows, 1)
            let params = CTQuantParams(scales: r.scales, zeroPoints: args.symmetric ? nil : r.zeroPoints, rows: rows, columns: groups)
            return (r.integers.map { UInt8(bitPattern: $0) }, params)
        }
    }

    /// Merges `other` into this outcome (a later algorithm's results win).
    public mutating func merge(_ other: CalibrationOutcome) {
        quantized.merge(other.quantized) { $1 }
        weights.merge(other.weights) { $1 }
        norms.merge(other.norms) { $1 }
        seconds += other.seconds
        tokens = max(tokens, other.tokens)
    }
}

extension Calibrator {
    /// max |x| of every linear input over the calibration set, by module name (the checkpoint name without
    /// `.weight`), with the model as it is (static input scales: FP8's `input_scale` = amax / 448).
    public func inputAbsMax() throws -> [String: Float] {
        try begin()
        var out: [String: Float] = [:]
        for il in 0..<model.layerCount {
            let names = model.linearWeightNames(layer: il)
            let stats = CalibrationStatistics(weights: names, hessian: false, threads: model.threads)
            for b in states.indices { try model.runLayer(il, &states[b], observer: stats) }
            for name in names {
                guard let st = stats.statistics(of: name) else { continue }
                let hf = checkpointName(name)
                let module = hf.hasSuffix(".weight") ? String(hf.dropLast(".weight".count)) : hf
                out[module] = st.absMax.max() ?? 0
            }
            progress(il + 1, model.layerCount)
        }
        return out
    }
}
