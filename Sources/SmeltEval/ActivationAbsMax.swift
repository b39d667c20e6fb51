import Foundation
import SmeltFormats

/// Collects, per weight (GGUF name), the largest |x| of its input activations over a calibration run:
/// the statistic of llm-compressor's static min-max observer for symmetric per-tensor input scales
/// (compressed-tensors FP8: `input_scale = amax / 448`).
public final class ActivationAbsMaxCollector: ActivationObserver {
    private let lock = NSLock()
    public private(set) var absMax: [String: Float] = [:]

    public init() {}

    public func observe(weight: String, input: UnsafePointer<Float>, rows: Int, cols: Int) {
        var m: Float = 0
        for i in 0..<(rows * cols) { let a = abs(input[i]); if a > m || a.isNaN { m = a } }
        lock.lock()
        absMax[weight] = max(absMax[weight] ?? 0, m)
        lock.unlock()
    }
}

extension Evaluator {
    /// Runs the model over `tokens` in chunks of `options.contextLength` and returns max |input| per weight.
    public static func inputAbsMax(model: InferenceModel, tokens: [Int32], options: EvaluationOptions = EvaluationOptions(),
                                   addBOS: Bool? = nil, reporter: EvaluationReporter = EvaluationReporter()) throws -> [String: Float] {
        let (chunks, nSeq) = try plan(tokenCount: tokens.count, options: options)
        let collector = ActivationAbsMaxCollector()
        _ = try runChunks(model: model, tokens: tokens, context: options.contextLength, chunks: chunks, sequencesPerBatch: nSeq,
                          bos: bos(model, addBOS: addBOS), firstOutput: 0, observer: collector, reporter: reporter) { _, _ in }
        return collector.absMax
    }
}
