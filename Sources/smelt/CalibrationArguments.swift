import ArgumentParser
import Foundation
import SmeltFormats
import SmeltEval
import SmeltQuantize
import SmeltCalibration
import SmeltCompressedTensors

/// `smelt quantize --format compressed-tensors`: the calibration algorithms and their calibration text
/// (docs/COMPRESSED-TENSORS.md, "Calibration").
struct CalibrationArguments: ParsableArguments {
    @Flag(help: "compressed-tensors: GPTQ for the integer weights (W4A16, W4A16_ASYM, W8A8), as llm-compressor's GPTQModifier.")
    var gptq = false
    @Option(name: .customLong("gptq-actorder"), help: "GPTQ column order: static (llm-compressor's default: decreasing Hessian diagonal, scales from the original weights) or none (IST-DASLab's: in order, each group's scales at its first column).")
    var gptqActorder = "static"
    @Flag(help: "compressed-tensors: AWQ for W4A16 / W4A16_ASYM (scale grid search, then the clipping search).")
    var awq = false
    @Option(name: .customLong("awq-search-samples"), help: "AWQ: calibration sequences on which each candidate scale's block output is compared (each costs a block forward pass per candidate).")
    var awqSearchSamples = 2
    @Option(help: "compressed-tensors: SmoothQuant with strength ALPHA (llm-compressor's default 0.8) before quantizing W8A8.")
    var smoothquant: Double?
    @Option(name: .customLong("calibration-file"), help: "Calibration text (default: the calibration text built into smelt; never the evaluation text).")
    var calibrationFile: String?
    @Option(name: .customLong("calibration-samples"), help: "Calibration sequences, spread evenly over the text (16: GPTQ of a 135M model in about a minute on 2 cores).")
    var calibrationSamples = 16
    @Option(name: .customLong("calibration-length"), help: "Tokens per calibration sequence.")
    var calibrationLength = 512
    @Option(name: .customLong("calibration-threads"), help: "Worker threads of the calibration forward passes (default: all cores).")
    var calibrationThreads: Int?

    var requested: Bool { gptq || awq || smoothquant != nil }

    /// Checks the algorithms against the schemes of `plan`.
    func validate(plan: CTWritePlan) throws {
        let schemes = plan.config.groups.map(\.scheme)
        if gptq && awq { throw UsageError("--gptq and --awq are alternatives: give one") }
        if gptq, !schemes.contains(where: { $0.weights.map { IntegerGrid(weights: $0, type: .f32) != nil } ?? false }) {
            throw UsageError("--gptq needs integer weights (W4A16, W4A16_ASYM, W8A8); FP8 weights are rounded to nearest")
        }
        if awq, !schemes.allSatisfy({ $0.inputActivations == nil }) {
            throw UsageError("--awq is for weight-only schemes (W4A16, W4A16_ASYM): activations stay 16-bit")
        }
        if let a = smoothquant {
            guard a >= 0, a <= 1 else { throw UsageError("--smoothquant takes a strength between 0 and 1 (got \(a))") }
            guard schemes.contains(where: { $0.inputActivations != nil }) else {
                throw UsageError("--smoothquant moves activation outliers into the weights: it is for schemes that quantize activations (W8A8, FP8)")
            }
        }
        guard ["static", "none"].contains(gptqActorder) else {
            throw UsageError(Suggestions.unknown("--gptq-actorder", gptqActorder, among: ["static", "none"]))
        }
        guard calibrationSamples > 0, calibrationLength >= 2, awqSearchSamples > 0 else { throw UsageError("--calibration-samples and --calibration-length must be positive") }
    }

    /// Runs what was asked on the model in `input` and returns the outcome whose hooks the writer takes.
    /// After SmoothQuant, schemes with static input scales (FP8) get `job.inputAbsMax` measured again on
    /// the smoothed model.
    func run(input: URL, job: inout CompressedTensorsExport, plan: CTWritePlan) throws -> CalibrationOutcome {
        try validate(plan: plan)
        let staticInputs = plan.config.groups.contains { $0.scheme.inputActivations.map { !$0.dynamic } ?? false }
        var out = CalibrationOutcome()
        guard requested else { return out }
        let threads = calibrationThreads ?? ProcessInfo.processInfo.activeProcessorCount
        let model = try InferenceModel(url: input, threads: threads, cacheFloat32: true, llamaRounding: false, nativeKernels: false)
        let text = try calibrationFile.map { try EvaluationText.read(URL(fileURLWithPath: $0)) } ?? CalibrationText.text
        let tokens = try model.makeTokenizer().encode(text, addSpecial: true, parseSpecial: false)
        let settings = CalibrationSettings(sequenceLength: calibrationLength, sequences: calibrationSamples)
        let type = plan.computeType
        func grid(_ name: String) -> IntegerGrid? {
            let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name
            guard let g = plan.modules[module], let w = plan.config.groups[g].scheme.weights else { return nil }
            return IntegerGrid(weights: w, type: type)
        }
        var bars: [ProgressBar] = []
        func calibrator(_ label: String) throws -> Calibrator {
            let c = try Calibrator(model: model, tokens: tokens, settings: settings, weightType: type)
            let bar = ProgressBar(label, total: 1, unit: .items("blocks"))
            bars.append(bar)
            c.progress = { done, total in bar.set(done, of: total) }
            return c
        }
        let start = Date()
        if let a = smoothquant { out.merge(try calibrator("smoothquant").smoothQuant(alpha: a)) }
        if gptq { out.merge(try calibrator("gptq").gptq(grid: grid, options: GPTQOptions(actOrder: gptqActorder == "static"))) }
        if awq { out.merge(try calibrator("awq").awq(grid: grid, options: AWQOptions(searchSequences: awqSearchSamples))) }
        if staticInputs && smoothquant != nil { job.inputAbsMax = try calibrator("input scales").inputAbsMax() }
        for b in bars { b.finish() }
        let what = [smoothquant.map { "SmoothQuant α=\($0)" }, gptq ? "GPTQ" : nil, awq ? "AWQ" : nil,
                    staticInputs && smoothquant != nil ? "input scales" : nil].compactMap { $0 }.joined(separator: ", ")
        let used = min(settings.sequences, tokens.count / settings.sequenceLength) * settings.sequenceLength
        FileHandle.standardError.write(Data(String(format: "calibration (%@): %d tokens, %.1f s\n", what, used,
                                                   Date().timeIntervalSince(start)).utf8))
        return out
    }
}
