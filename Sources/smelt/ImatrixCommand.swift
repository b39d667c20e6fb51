import ArgumentParser
import Foundation
import SmeltEval
import SmeltFormats
import SmeltReport

/// `smelt imatrix MODEL -f CALIB.txt [-c 512] [--chunks N] -o imatrix.gguf`, llama-imatrix's method.
struct ImatrixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imatrix",
        abstract: "Compute an importance matrix (llama-imatrix's GGUF or legacy .dat format) for smelt/llama quantize --imatrix.",
        discussion: "Without -f, the calibration text shipped in calibration-data/ is used when it can be found.")

    @Argument(help: "Model: a .gguf file or a Hugging Face checkpoint folder.")
    var model: String
    @Option(name: [.short, .customLong("file")], help: "Calibration text.")
    var file: String?
    @Option(name: [.short, .customLong("output")], help: "Output file.")
    var output = "imatrix.gguf"
    @Option(help: "gguf (default) or dat (legacy llama.cpp format).")
    var outputFormat = "gguf"
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.")
    var context = 512
    @Option(name: [.short, .customLong("batch-size")], help: "Tokens per forward pass.")
    var batch = 2048
    @Option(help: "Use at most N chunks.")
    var chunks: Int?
    @Option(name: [.short, .long], help: "Worker threads (default: all cores).")
    var threads: Int?
    @Flag(help: "Also collect output.weight (llama-imatrix --process-output).")
    var processOutput = false
    @Option(help: "Force the tokenizer's pre-tokenizer.")
    var pre: String?
    @Flag(help: "Print a JSON summary on stdout.")
    var json = false
    @Flag(help: "Plain float32 products (default: round activations as llama.cpp).")
    var exactFloat = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        try reportingErrors {
            guard outputFormat == "gguf" || outputFormat == "dat" else { throw SmeltError("--output-format must be gguf or dat") }
            guard let textPath = file ?? ImatrixCommand.defaultCalibration() else {
                throw SmeltError("missing -f CALIB.txt (no default calibration-data/calibration_data_v5_rc.txt found)")
            }
            let recorder = try storeOptions.recorder()
            let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
            try OutputGuard.check(output: URL(fileURLWithPath: output), inputs: [URL(fileURLWithPath: model), URL(fileURLWithPath: textPath)])
            let m = try InferenceModel(url: URL(fileURLWithPath: model), threads: threadCount, llamaRounding: !exactFloat)
            let text = try EvaluationText.read(URL(fileURLWithPath: textPath))
            let tokens = try m.makeTokenizer(pre: pre).encode(text, addSpecial: true, parseSpecial: false)
            let reporter = CommandProgress.reporter(printLines: !json, label: "imatrix")
            let evalOptions = EvaluationOptions(contextLength: context, batchSize: batch, chunks: chunks)
            let (im, result) = try Evaluator.imatrix(model: m, tokens: tokens, options: evalOptions,
                                                     dataset: textPath, processOutput: processOutput, reporter: reporter)
            CommandProgress.clear()
            let out = URL(fileURLWithPath: output)
            if outputFormat == "dat" { try im.writeLegacy(to: out, dataset: textPath) } else { try im.writeGGUF(to: out) }
            let record = try recorder.imatrix(result, model: URL(fileURLWithPath: model), text: URL(fileURLWithPath: textPath),
                                              tokens: tokens.count, output: out, options: evalOptions, threads: threadCount)
            if json { print(try Recorder.json(result: result, record: record)) } else {
                print("imatrix: \(result.entries) entries, \(result.chunks) chunks of \(result.contextLength) tokens → \(output)")
            }
        }
    }

    /// calibration-data/calibration_data_v5_rc.txt next to the executable's repository, or in the working directory.
    static func defaultCalibration() -> String? {
        let name = "calibration-data/calibration_data_v5_rc.txt"
        var candidates = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(name)]
        var exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<5 { exe.deleteLastPathComponent(); candidates.append(exe.appendingPathComponent(name)) }
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }?.path
    }
}
