import ArgumentParser
import Foundation
import SmeltFormats
import SmeltQuantize
import SmeltConvert
import SmeltLicense
#if canImport(Glibc)
import Glibc
#endif

/// `smelt quantize IN [OUT] TYPE [THREADS]`: llama-quantize, same output file.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a GGUF model exactly as llama.cpp's llama-quantize does (same presets, same bytes).",
        discussion: "TYPE is a llama-quantize preset (Q4_K_M, Q8_0, IQ4_XS, …). Without OUT the file is written next to IN as ggml-model-TYPE.gguf.")

    @Argument(help: "IN [OUT] TYPE [THREADS]: input GGUF (F32/F16/BF16) or Hugging Face checkpoint folder, output path, preset, worker threads.")
    var arguments: [String] = []

    @Option(help: "Importance matrix (llama-imatrix GGUF or legacy .dat).")
    var imatrix: String?
    @Option(help: "Use importance data only for tensors whose name contains this (repeatable).")
    var includeWeights: [String] = []
    @Option(help: "Do not use importance data for tensors whose name contains this (repeatable).")
    var excludeWeights: [String] = []
    @Option(help: "ggml type of output.weight.")
    var outputTensorType: String?
    @Option(help: "ggml type of the token embeddings.")
    var tokenEmbeddingType: String?
    @Option(help: "REGEX=TYPE: tensors whose name matches REGEX get TYPE (repeatable; first match wins).")
    var tensorType: [String] = []
    @Flag(help: "No k-quant mixtures: every quantizable tensor gets the preset's type.")
    var pure = false
    @Flag(help: "Keep output.weight as it is.")
    var leaveOutputTensor = false
    @Flag(help: "Allow quantized inputs (dequantized first).")
    var allowRequantize = false
    @Flag(help: "Compute the plan and sizes; write nothing.")
    var dryRun = false
    @Flag(help: "Print the per-tensor plan as JSON on stdout.")
    var json = false
    @Option(help: "Checkpoint input: the intermediate type, as smelt convert --outtype (f32, f16, bf16, auto).")
    var outtype: String = "auto"
    @Option(help: "Checkpoint input: force the BPE pre-tokenizer name (tokenizer.ggml.pre).")
    var pre: String?
    @Option(help: "Recipe: a YAML file or a built-in name (Q4_K_M, Q4_K_XL, …); then TYPE is omitted: IN [OUT] [THREADS].")
    var recipe: String?
    @Option(help: "Budget mode: choose a type per tensor to minimise the predicted loss at this many bits per weight.")
    var targetBpw: Double?
    @Option(help: "Budget mode: at most this file size of tensor data (bytes, or with KiB/MiB/GiB/KB/MB/GB).")
    var targetSize: String?
    @Option(help: "Budget mode: candidate types, comma-separated (default: q4_0,q4_1,iq4_nl,q5_0,q5_1,q8_0 and the k-quants the rows allow).")
    var candidates: String?
    @Option(help: "Budget mode: sensitivity cache folder (default: ~/.cache/smelt/sensitivity).")
    var cache: String?
    @Flag(inversion: .prefixedNo, help: "Write the recipe provenance metadata (default: only for recipes that are not an unchanged llama.cpp preset).")
    var provenance: Bool?

    func run() throws {
        try reportingErrors {
            var args = arguments
            guard !args.isEmpty else { throw SmeltError("usage: smelt quantize IN [OUT] TYPE [THREADS] | IN [OUT] --recipe R | IN [OUT] --target-bpw B") }
            let input = args.removeFirst()
            var output: String? = nil
            var preset: LlamaPreset
            var chosen: Recipe? = nil
            let budget = targetBpw != nil || targetSize != nil
            if recipe != nil || budget {
                guard !(recipe != nil && budget) else { throw SmeltError("--recipe and --target-bpw/--target-size cannot be used together") }
                guard targetBpw == nil || targetSize == nil else { throw SmeltError("give --target-bpw or --target-size, not both") }
                if let f = args.first, Int(f) == nil {
                    if LlamaPreset(parsing: f) != nil { throw SmeltError("TYPE '\(f)' cannot be combined with --recipe or a budget") }
                    output = args.removeFirst()
                }
                if let r = recipe {
                    chosen = try BuiltinRecipes.load(r)
                    preset = chosen!.fileType
                } else {
                    preset = .Q4_K_M
                }
                if output == nil {
                    let dir = URL(fileURLWithPath: input).deletingLastPathComponent()
                    output = dir.appendingPathComponent("ggml-model-\(chosen?.name ?? "budget").gguf").path
                }
            } else {
                guard args.count >= 1 else { throw SmeltError("usage: smelt quantize IN [OUT] TYPE [THREADS]") }
                if let p = LlamaPreset(parsing: args[0]) {
                    let inputTypeArg = args[0]
                    preset = p
                    args.removeFirst()
                    let dir = URL(fileURLWithPath: input).deletingLastPathComponent()
                    output = dir.appendingPathComponent("ggml-model-\(LlamaPreset.optionName(parsing: inputTypeArg) ?? p.rawValue).gguf").path
                } else {
                    output = args.removeFirst()
                    guard let t = args.first else { throw SmeltError("missing TYPE (a llama-quantize preset such as Q4_K_M)") }
                    guard let p = LlamaPreset(parsing: t) else {
                        if BuiltinRecipes.text(named: t) != nil {
                            throw SmeltError("'\(t)' is a Smelt recipe, not a llama-quantize preset: use --recipe \(t)")
                        }
                        throw SmeltError("invalid TYPE '\(t)'; presets: \(LlamaPreset.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    preset = p
                    args.removeFirst()
                }
                // Presets go through their built-in recipe (the same code path as --recipe).
                chosen = try BuiltinRecipes.recipe(named: preset.rawValue)
            }
            var threads = 0
            if let t = args.first {
                guard let n = Int(t), n >= 0 else { throw SmeltError("invalid THREADS '\(t)'") }
                threads = n
                args.removeFirst()
            }
            guard args.isEmpty else { throw SmeltError("unexpected argument '\(args[0])'") }
            guard includeWeights.isEmpty || excludeWeights.isEmpty else {
                throw SmeltError("--include-weights and --exclude-weights cannot be used together")
            }

            var req = QuantizeRequest(preset: preset)
            req.threads = threads
            req.allowRequantize = allowRequantize
            req.includeWeights = includeWeights
            req.excludeWeights = excludeWeights
            req.imatrixURL = imatrix.map { URL(fileURLWithPath: $0) }
            req.imatrixArgument = imatrix
            req.options.pure = pure
            req.options.quantizeOutputTensor = !leaveOutputTensor
            req.options.outputTensorType = try outputTensorType.map(Self.ggmlType)
            req.options.tokenEmbeddingType = try tokenEmbeddingType.map(Self.ggmlType)
            for tt in tensorType {
                guard let eq = tt.firstIndex(of: "="), eq != tt.startIndex, tt.index(after: eq) != tt.endIndex else {
                    throw SmeltError("--tensor-type: expected REGEX=TYPE, got '\(tt)'")
                }
                req.options.tensorTypes.append((String(tt[..<eq]).lowercased(), try Self.ggmlType(String(tt[tt.index(after: eq)...]))))
            }

            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
                throw SmeltError("\(input): no such file")
            }
            let source: TensorSource
            if isDir.boolValue {
                guard let ot = OutType(rawValue: outtype) else { throw SmeltError("--outtype must be f32, f16, bf16 or auto") }
                source = try HFCheckpointSource(folder: URL(fileURLWithPath: input), outType: ot, pre: pre)
            } else {
                source = try GGUFTensorSource(url: URL(fileURLWithPath: input))
            }
            if budget {
                guard let gguf = source as? GGUFTensorSource else {
                    throw SmeltError("budget mode needs a GGUF input: convert the checkpoint first (smelt convert)")
                }
                let r = try BudgetCommandSupport.makeRecipe(source: gguf, input: input, output: output!, request: req,
                                                            targetBpw: targetBpw, targetSize: targetSize,
                                                            candidates: candidates, cache: cache, dryRun: dryRun)
                chosen = r
                preset = r.fileType
                req.preset = preset
            }
            req.recipe = chosen
            if let c = chosen, provenance ?? !c.isBuiltinPreset { req.extraMetadata = RecipeProvenance.metadata(c) }
            let tty = isatty(2) != 0 && !json
            let start = Date()
            if !dryRun, let warning = ConversionLicenseInfo.check(URL(fileURLWithPath: input)).warning {
                FileHandle.standardError.write(Data("\(warning)\n".utf8))
            }
            let result = try Quantizer.run(
                source: source, output: dryRun ? nil : output.map { URL(fileURLWithPath: $0) }, request: req,
                progress: tty ? { done, total, name in
                    let line = done < total ? String(format: "[%4d/%4d] %@", done + 1, total, name) : ""
                    FileHandle.standardError.write(Data(("\r\u{1b}[K" + line).utf8))
                } : nil)
            for w in result.imatrixWarnings { FileHandle.standardError.write(Data("\(w)\n".utf8)) }
            if json { print(result.plan.json().serialized(pretty: true)) }
            var lines = result.summaryLines
            if !dryRun && !json { lines.append(String(format: "quantize time = %8.2f ms", Date().timeIntervalSince(start) * 1000)) }
            if result.plan.willRequireImatrix {
                lines.append("WARNING: dry run completed successfully, but actually completing this quantization will require an imatrix!")
            }
            if result.plan.fallbackCount > 0 {
                lines.append("WARNING: \(result.plan.fallbackCount) of \(result.plan.tensors.count) tensor(s) required fallback quantization")
            }
            let text = lines.joined(separator: "\n") + "\n"
            if json { FileHandle.standardError.write(Data(text.utf8)) } else { print(text, terminator: "") }
        }
    }

    static func ggmlType(_ s: String) throws -> GGMLType {
        guard let t = GGMLType(name: s) else { throw SmeltError("invalid ggml type '\(s)'") }
        return t
    }
}
