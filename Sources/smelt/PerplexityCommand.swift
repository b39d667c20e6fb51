import ArgumentParser
import Foundation
import SmeltEval
import SmeltFormats
import SmeltReport
#if canImport(Glibc)
import Glibc
#endif

/// `smelt perplexity MODEL -f TEXT [-c 512] [-b 2048] [--chunks N] [--threads N]`, llama-perplexity's method;
/// `--save-logits` / `--kl-divergence` for KL-divergence against a base model.
struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity and KL-divergence of a model (GGUF or HF checkpoint) as llama-perplexity computes them.",
        discussion: """
        Perplexity: smelt perplexity MODEL -f wiki.test.raw [-c 512].
        KL-divergence: smelt perplexity BASE -f TEXT --save-logits base.kld[.zst], then
        smelt perplexity QUANT --kl-divergence base.kld[.zst] (tokens and context come from the file).
        Base files are compatible with llama-perplexity's --kl-divergence-base (plain; .zst is zstd).
        On CPUs with AVX-512 BF16/VNNI, bf16 and most quantized matrices use Smelt's native products;
        SMELT_NO_NATIVE_KERNELS=1 selects OpenBLAS float32 products instead (docs/EVALUATION.md).
        """)

    @Argument(help: ArgumentHelp("Model: a .gguf file (a split model by its first shard) or a Hugging Face checkpoint folder.", valueName: "model"))
    var positionalModel: String?
    @Option(name: [.short, .customLong("model")], help: "The model (llama.cpp's spelling; instead of the positional MODEL).")
    var modelOption: String?
    /// The model given positionally or with -m/--model.
    var model: String { modelOption ?? positionalModel ?? "" }

    func validate() throws {
        if positionalModel != nil && modelOption != nil { throw ValidationError("give the model once: positionally or with -m/--model") }
        if positionalModel == nil && modelOption == nil { throw ValidationError("missing the model (MODEL or -m/--model)") }
    }
    @Option(name: [.short, .customLong("file")], help: "Text to evaluate.")
    var file: String?
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.")
    var context = 512
    @Option(name: [.short, .customLong("batch-size")], help: "Tokens per forward pass (batch / ctx chunks at once).")
    var batch = 2048
    @Option(help: "Evaluate at most N chunks.")
    var chunks: Int?
    @Option(name: [.short, .long], help: "Worker threads (default: all cores).")
    var threads: Int?
    @Option(help: "Write the base model's log-probabilities here (llama-perplexity's --kl-divergence-base format; .zst = zstd).")
    var saveLogits: String?
    @Option(help: "Compute KL-divergence against this base file (from --save-logits or llama-perplexity).")
    var klDivergence: String?
    @Option(help: "Force the tokenizer's pre-tokenizer (HF checkpoints whose pre-tokenizer is not recognised).")
    var pre: String?
    @Flag(help: "Print the result as JSON on stdout (instead of llama-perplexity's text).")
    var json = false
    @Flag(help: "Plain float32 products (default: round activations to the weight type's dot-product format, as llama.cpp).")
    var exactFloat = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        try reportingErrors {
            let recorder = try storeOptions.recorder()
            let options = EvaluationOptions(contextLength: context, batchSize: batch, chunks: chunks)
            if let s = saveLogits {
                try OutputGuard.check(output: URL(fileURLWithPath: s), inputs: [model, file].compactMap { $0 }.map { URL(fileURLWithPath: $0) },
                                      what: "--save-logits")
            }
            let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
            let m = try InferenceModel(url: URL(fileURLWithPath: model), threads: threadCount, llamaRounding: !exactFloat)
            let progress = EvaluationProgress(label: klDivergence == nil ? "perplexity" : "kl-divergence", printLines: !json)
            let reporter = progress.reporter
            if let base = klDivergence {
                guard file == nil, saveLogits == nil else {
                    throw SmeltError("--kl-divergence takes its tokens from the base file: no -f or --save-logits")
                }
                let r = try Evaluator.klDivergence(model: m, base: URL(fileURLWithPath: base), options: options, reporter: reporter)
                progress.finish()
                CommandProgress.summary("kl-divergence", chunks: r.chunks, context: r.contextLength, seconds: r.seconds, tokensPerSecond: r.tokensPerSecond)
                let record = try recorder.klDivergence(r, model: URL(fileURLWithPath: model), base: URL(fileURLWithPath: base),
                                                       options: options, threads: threadCount)
                if json { print(try Recorder.json(result: r, record: record)) }
                return
            }
            guard let file else { throw SmeltError("missing -f TEXT (or --kl-divergence BASE)") }
            let text = try EvaluationText.read(URL(fileURLWithPath: file))
            let tokens = try m.makeTokenizer(pre: pre).encode(text, addSpecial: true, parseSpecial: false)
            let r = try Evaluator.perplexity(model: m, tokens: tokens, options: options,
                                             saveLogits: saveLogits.map { URL(fileURLWithPath: $0) }, reporter: reporter)
            progress.finish()
            CommandProgress.summary("perplexity", chunks: r.chunks, context: r.contextLength, seconds: r.seconds, tokensPerSecond: r.tokensPerSecond)
            let record = try recorder.perplexity(r, model: URL(fileURLWithPath: model), text: URL(fileURLWithPath: file),
                                                 tokens: tokens.count, options: options, threads: threadCount,
                                                 saveLogits: saveLogits.map { URL(fileURLWithPath: $0) })
            if json { print(try Recorder.json(result: r, record: record)) }
        }
    }
}

/// The progress display of evaluation runs (perplexity, KL-divergence, imatrix, sensitivity's
/// probes): one `ProgressBar` counting chunks; the run's result lines go to stdout through it,
/// so on a terminal the bar never erases them.
final class EvaluationProgress {
    let bar: ProgressBar
    private let printLines: Bool

    init(label: String, printLines: Bool, enabled: Bool = true) {
        bar = ProgressBar(label, total: 1, unit: .items("chunks"), enabled: enabled)
        self.printLines = printLines
    }

    var reporter: EvaluationReporter {
        EvaluationReporter(
            line: { [bar, printLines] s in if printLines { bar.result(s) } },
            progress: { [bar] done, total, tps in bar.set(done, of: total, detail: String(format: "%.0f tokens/s", tps)) })
    }

    /// Ends the display (before the closing line on stderr).
    func finish() { bar.finish() }
}

enum CommandProgress {
    /// The closing line on stderr, as llama-perplexity states its token count and time:
    /// `perplexity: 512 tokens (4 chunks of 128) in 0.35 s, 1463 tokens/s`.
    static func summary(_ label: String, chunks: Int, context: Int, seconds: Double, tokensPerSecond: Double) {
        let line = String(format: "%@: %d tokens (%d chunks of %d) in %.2f s, %.0f tokens/s\n",
                          label, chunks * context, chunks, context, seconds, tokensPerSecond)
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func json<T: Encodable>(_ v: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try e.encode(v), as: UTF8.self)
    }
}
