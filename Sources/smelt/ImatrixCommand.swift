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
        discussion: "Without -f, the calibration text built into smelt (calibration-data/calibration_data_v5_rc.txt) is used.")

    @Argument(help: ArgumentHelp("Model: a .gguf file (a split model by its first shard) or a Hugging Face checkpoint folder.", valueName: "model"))
    var positionalModel: String?
    @Option(name: [.short, .customLong("model")], help: "The model (llama.cpp's spelling; instead of the positional MODEL).")
    var modelOption: String?
    /// The model given positionally or with -m/--model.
    var model: String { modelOption ?? positionalModel ?? "" }

    func validate() throws {
        if positionalModel != nil && modelOption != nil { throw ValidationError("give the model once: positionally or with -m/--model") }
        if positionalModel == nil && modelOption == nil && (inFiles.isEmpty || file != nil) && !showStatistics {
            throw ValidationError("missing the model (MODEL or -m/--model)")
        }
    }
    @Option(name: [.short, .customLong("file")], help: "Calibration text.")
    var file: String?
    @Option(name: [.short, .customLong("output")], help: "Output file.")
    var output = "imatrix.gguf"
    @Option(help: "gguf or dat (legacy llama.cpp format); default: dat when the output name ends in .dat, else gguf.")
    var outputFormat: String?
    @Flag(help: "Print llama-imatrix's per-tensor and per-layer statistics of the one --in-file imatrix and exit.")
    var showStatistics = false
    @Option(name: .customLong("in-file"), help: "Load an imatrix (GGUF or .dat) and add it to the result (repeatable); without -f the files are only combined or converted, as llama-imatrix --in-file.")
    var inFiles: [String] = []
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
            let out = URL(fileURLWithPath: output)
            let isDat = out.pathExtension.lowercased() == "dat"
            let format = outputFormat?.lowercased() ?? (isDat ? "dat" : "gguf")
            guard format == "gguf" || format == "dat" else {
                throw UsageError(Suggestions.unknown("--output-format", outputFormat ?? "", among: ["gguf", "dat"]))
            }
            if format == "gguf" && isDat {
                throw UsageError("\(output): a .dat name for GGUF output; use --output-format dat (legacy format) or a .gguf name")
            }
            if showStatistics {
                guard inFiles.count == 1 else { throw UsageError("--show-statistics needs exactly one --in-file imatrix") }
                print(try Imatrix(url: URL(fileURLWithPath: inFiles[0])).statisticsText(file: inFiles[0]), terminator: "")
                return
            }
            // the model, the text and every --in-file (combining files onto one of them included)
            try OutputGuard.check(output: out, inputs: ([model].filter { !$0.isEmpty } + [file].compactMap { $0 } + inFiles)
                .map { URL(fileURLWithPath: $0) })
            var loaded: [(Imatrix, String)] = []
            for f in inFiles { loaded.append((try Imatrix(url: URL(fileURLWithPath: f)), f)) }
            if !loaded.isEmpty && file == nil {
                // llama-imatrix --in-file without a text: combine / convert and save.
                let im = try Imatrix.combined(loaded, chunkSize: context)
                if format == "dat" { try im.writeLegacy(to: out) } else { try im.writeGGUF(to: out) }
                print("imatrix: \(im.entries.count) entries from \(loaded.count) file(s), \(im.chunkCount) chunks → \(output)")
                return
            }
            // Without -f: the calibration text built into the binary (calibration-data/README.md).
            let textPath = file ?? CalibrationText.name
            let recorder = try storeOptions.recorder()
            let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
            let m = try InferenceModel(url: URL(fileURLWithPath: model), threads: threadCount, llamaRounding: !exactFloat)
            let text = try file.map { try EvaluationText.read(URL(fileURLWithPath: $0)) } ?? CalibrationText.text
            let tokens = try m.makeTokenizer(pre: pre).encode(text, addSpecial: true, parseSpecial: false)
            let progress = EvaluationProgress(label: "imatrix", printLines: !json)
            let reporter = progress.reporter
            let evalOptions = EvaluationOptions(contextLength: context, batchSize: batch, chunks: chunks)
            var (im, result) = try Evaluator.imatrix(model: m, tokens: tokens, options: evalOptions,
                                                     dataset: textPath, processOutput: processOutput, reporter: reporter)
            progress.finish()
            if !loaded.isEmpty { im = try Imatrix.combined(loaded + [(im, textPath)], chunkSize: context) }
            if format == "dat" { try im.writeLegacy(to: out, dataset: textPath) } else { try im.writeGGUF(to: out) }
            // The built-in calibration text has no file: it is recorded by its name only.
            let record = try recorder.imatrix(result, model: URL(fileURLWithPath: model), text: file.map { URL(fileURLWithPath: $0) },
                                              textName: textPath, tokens: tokens.count, output: out, options: evalOptions, threads: threadCount)
            if json { print(try Recorder.json(result: result, record: record)) } else {
                print("imatrix: \(result.entries) entries, \(result.chunks) chunks of \(result.contextLength) tokens → \(output)")
            }
        }
    }
}
