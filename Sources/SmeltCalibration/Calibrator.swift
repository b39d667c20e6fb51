import Foundation
import SmeltFormats
import SmeltEval
import SmeltCompressedTensors

/// What a calibration algorithm decided, keyed by the checkpoint's tensor names (`model.layers.0.self_attn.q_proj.weight`).
public struct CalibrationOutcome: Sendable {
    /// GPTQ: each linear weight's integers, scales and zero points (the writer stores them as they are).
    public var quantized: [String: GPTQResult] = [:]
    /// AWQ / SmoothQuant: linear weights with scales (and AWQ's clipping) folded in, still in float,
    /// to be quantized by round-to-nearest as the scheme says.
    public var weights: [String: [Float]] = [:]
    /// AWQ / SmoothQuant: norm weights with the inverse scales folded in.
    public var norms: [String: [Float]] = [:]
    /// Wall time of the calibration (forward passes and algorithm).
    public var seconds: Double = 0
    /// Calibration tokens (sequences × length).
    public var tokens: Int = 0

    public init() {}
}

/// Calibration text cut into sequences for the block-by-block forward pass.
public struct CalibrationSettings: Sendable {
    /// Tokens per sequence.
    public var sequenceLength = 512
    /// Sequences, spread evenly over the text's chunks of `sequenceLength` tokens (all of them when the
    /// text has fewer).
    public var sequences = 16
    /// Sequences per forward batch (memory: a batch's activations, not the whole set's).
    public var batch = 4
    /// Replace each sequence's first token by BOS (as llama-imatrix does); nil: when the model adds BOS.
    public var addBOS: Bool?

    public init(sequenceLength: Int = 512, sequences: Int = 16, batch: Int = 4, addBOS: Bool? = nil) {
        self.sequenceLength = sequenceLength; self.sequences = sequences; self.batch = batch; self.addBOS = addBOS
    }
}

/// Runs calibration algorithms block by block on an `InferenceModel` (loaded in float32, plain products):
/// the calibration sequences' hidden states pass through one block at a time; each block is calibrated
/// on its own inputs as the already processed blocks make them (the quantized model's own activations),
/// then its outputs are recomputed with its new weights for the next block. Memory: the hidden states of
/// the calibration set plus one block's statistics, independent of the model's depth. One algorithm per
/// calibrator: it walks the blocks once (a second algorithm needs a new `Calibrator` on the same model).
public final class Calibrator {
    public let model: InferenceModel
    /// Hidden states per batch, at the input of the next block to process.
    var states: [HiddenStates]
    public let tokens: Int
    /// The checkpoint's dtype: weights and norms changed by smoothing are rounded to it, as torch changes them in place.
    public let weightType: CTComputeType
    /// Called after each block with (blocks done, block count).
    public var progress: (Int, Int) -> Void = { _, _ in }

    /// `tokens`: the tokenized calibration text.
    /// `weightType`: the checkpoint's dtype.
    public init(model: InferenceModel, tokens: [Int32], settings: CalibrationSettings = CalibrationSettings(),
                weightType: CTComputeType = .f32) throws {
        self.model = model
        self.weightType = weightType
        let L = settings.sequenceLength
        guard L >= 2, settings.sequences > 0, settings.batch > 0 else {
            throw SmeltError("calibration: sequence length must be at least 2 and the sequence and batch counts positive")
        }
        let available = tokens.count / L
        let n = min(settings.sequences, available)
        guard n > 0 else {
            throw SmeltError("calibration: the text tokenizes to \(tokens.count) tokens, fewer than one sequence of \(L)")
        }
        // sequence k is the text's chunk k·available/n: spread evenly over the whole text, as llm-compressor
        // draws its calibration samples from the shuffled data set (not the text's first n chunks)
        let starts = (0..<n).map { ($0 * available / n) * L }
        let bos: Int32? = (settings.addBOS ?? model.config.addBOS) ? model.config.bosToken : nil
        var st: [HiddenStates] = []
        var i = 0
        while i < n {
            let s = min(settings.batch, n - i)
            var batch: [Int32] = []
            batch.reserveCapacity(s * L)
            for k in i..<(i + s) { batch.append(contentsOf: tokens[starts[k]..<(starts[k] + L)]) }
            if let bos { for k in 0..<s { batch[k * L] = bos } }
            st.append(try model.embed(tokens: batch, sequenceLength: L, sequenceCount: s))
            i += s
        }
        states = st
        self.tokens = n * L
    }

    func checkpointName(_ name: String) -> String { model.checkpointNames[name] ?? name }

    private var used = false

    /// Marks the calibrator used (its hidden states are about to move through the blocks).
    func begin() throws {
        guard !used else { throw SmeltError("calibration: this calibrator has already walked the model's blocks; make a new one") }
        used = true
    }

    /// Propagates every batch through block `il` with the block's current weights.
    func advance(_ il: Int) throws {
        for b in states.indices { try model.runLayer(il, &states[b]) }
    }

    /// Collects the statistics of `weights`' inputs over the calibration set at block `il` (block outputs discarded).
    func statistics(_ il: Int, weights: [String], hessian: Bool) throws -> CalibrationStatistics {
        let stats = CalibrationStatistics(weights: weights, hessian: hessian, threads: model.threads)
        for b in states.indices {
            var s = states[b]
            try model.runLayer(il, &s, observer: stats)
        }
        return stats
    }

    /// GPTQ on every linear weight of the blocks for which `grid` (given the checkpoint name) returns a grid.
    public func gptq(grid: (String) -> IntegerGrid?, options: GPTQOptions = GPTQOptions()) throws -> CalibrationOutcome {
        try begin()
        let start = Date()
        var out = CalibrationOutcome()
        out.tokens = tokens
        for il in 0..<model.layerCount {
            let names = model.linearWeightNames(layer: il).filter { grid(checkpointName($0)) != nil }
            if !names.isEmpty {
                let stats = try statistics(il, weights: names, hessian: true)
                var hessians: [String: [Double]] = [:]
                for name in names {
                    guard let key = stats.inputOf[name], let st = stats.inputs[key] else {
                        throw SmeltError("\(name): the forward pass did not read this weight")
                    }
                    if hessians[key] == nil { hessians[key] = st.hessian }
                    guard let h = hessians[key], let g = grid(checkpointName(name)) else { continue }
                    let (rows, cols, w) = try model.weightValues(name)
                    let r = try GPTQ.quantize(weight: w, rows: rows, cols: cols, hessian: h, grid: g, options: options)
                    try model.replaceWeight(name, values: r.values)
                    out.quantized[checkpointName(name)] = r
                }
            }
            try advance(il)
            progress(il + 1, model.layerCount)
        }
        out.seconds = Date().timeIntervalSince(start)
        return out
    }
}
