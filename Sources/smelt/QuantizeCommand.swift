import ArgumentParser
import Foundation
import SmeltFormats
import SmeltQuantize
import SmeltConvert
import SmeltLicense
import SmeltReport
import SmeltStore
import SmeltGPU
import SmeltCompressedTensors
import SmeltEval
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
    @Flag(help: "Write tensors holding NaN or infinity (refused by default, naming the tensor and row).")
    var allowNonfinite = false
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
    @Option(help: "Budget mode: at most this size of the whole output file, header included (bytes, or with KiB/MiB/GiB/KB/MB/GB).")
    var targetSize: String?
    @Option(help: "Budget mode: candidate types, comma-separated (default: q4_0,q4_1,iq4_nl,q5_0,q5_1,q8_0 and the k-quants the rows allow).")
    var candidates: String?
    @Option(help: "Budget mode: sensitivity cache folder (default: ~/.cache/smelt/sensitivity).")
    var cache: String?
    @Flag(help: "Budget mode: measure everything again; neither read nor write the sensitivity cache.")
    var noCache = false
    @Option(help: "Budget mode: the loss model, weighted (importance-weighted error, default) or kld (scaled by the KLD smelt sensitivity -f measured).")
    var loss = "weighted"
    @Option(help: "Where to quantize: cpu (default), auto, vulkan or vulkan:N (smelt devices); default from SMELT_DEVICE. Same bytes on every device.")
    var device: String?
    @Flag(inversion: .prefixedNo, help: "Write the recipe provenance metadata (default: only for recipes that are not an unchanged llama.cpp preset).")
    var provenance: Bool?
    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "KEY=TYPE:VALUE (TYPE int, float, bool or str): set a metadata key in the output (repeatable), as llama-quantize.")
    var overrideKv: [String] = []
    @OptionGroup var licensePolicy: LicensePolicyOptions
    @Flag(help: "Split input: write one output shard per input shard (OUT without .gguf + -0000k-of-0000n.gguf), as llama-quantize --keep-split.")
    var keepSplit = false
    @OptionGroup var split: SplitOptions
    @Option(help: "Output format: gguf (default) or compressed-tensors (a Hugging Face folder for vLLM, as llm-compressor writes it).")
    var format: String = "gguf"
    @Option(help: "compressed-tensors: the llm-compressor preset scheme (FP8, FP8_DYNAMIC, W8A8, W4A16, W4A16_ASYM).")
    var scheme: String?
    @Option(help: "compressed-tensors: a linear module never quantized, by name or re:REGEX (repeatable; default lm_head).")
    var ignore: [String] = []
    @Option(name: [.customShort("o"), .customLong("output")], help: "compressed-tensors: the output folder.")
    var outputFolder: String?
    @Option(help: "compressed-tensors, schemes with static input scales (FP8): chunks of 512 tokens of the built-in calibration text.")
    var calibrationChunks: Int = 64
    @Option(name: .customLong("group-size"), help: "compressed-tensors, W4A16 / W4A16_ASYM: input columns per scale (32, 64 or 128; the presets' 128 when not given).")
    var groupSize: Int?
    @OptionGroup var calibration: CalibrationArguments

    func run() throws {
        if format.lowercased() != "gguf" {
            try reportingErrors { try runCompressedTensors() }
            return
        }
        try reportingErrors {
            guard scheme == nil, ignore.isEmpty, outputFolder == nil, groupSize == nil, !calibration.requested else {
                throw UsageError("--scheme, --ignore, -o, --group-size, --gptq, --awq and --smoothquant belong to --format compressed-tensors")
            }
            let recorder = try storeOptions.recorder()
            var args = arguments
            // usage first: every name on the command line is checked before any file is read
            guard LossModel(rawValue: loss.lowercased()) != nil else {
                throw UsageError(Suggestions.unknown("--loss", loss, among: LossModel.allCases.map(\.rawValue)))
            }
            guard !args.isEmpty else { throw UsageError("usage: smelt quantize IN [OUT] TYPE [THREADS] | IN [OUT] --recipe R | IN [OUT] --target-bpw B") }
            let input = args.removeFirst()
            var output: String? = nil
            var preset: LlamaPreset
            var chosen: Recipe? = nil
            var onlyCopy = false
            let budget = targetBpw != nil || targetSize != nil
            if recipe != nil || budget {
                guard !(recipe != nil && budget) else { throw UsageError("--recipe and --target-bpw/--target-size cannot be used together") }
                guard targetBpw == nil || targetSize == nil else { throw UsageError("give --target-bpw or --target-size, not both") }
                if let f = args.first, Int(f) == nil {
                    if Self.preset(parsing: f) != nil { throw UsageError("TYPE '\(f)' cannot be combined with --recipe or a budget") }
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
                guard args.count >= 1 else { throw UsageError("usage: smelt quantize IN [OUT] TYPE [THREADS]") }
                if let (p, copy) = Self.preset(parsing: args[0]) {
                    let inputTypeArg = args[0]
                    preset = p
                    onlyCopy = copy
                    args.removeFirst()
                    let dir = URL(fileURLWithPath: input).deletingLastPathComponent()
                    output = dir.appendingPathComponent("ggml-model-\(copy ? "COPY" : LlamaPreset.optionName(parsing: inputTypeArg) ?? p.rawValue).gguf").path
                } else {
                    output = args.removeFirst()
                    guard let t = args.first else { throw UsageError("missing TYPE (a llama-quantize preset such as Q4_K_M)") }
                    guard let (p, copy) = Self.preset(parsing: t) else {
                        if BuiltinRecipes.text(named: t) != nil {
                            throw UsageError("'\(t)' is a Smelt recipe, not a llama-quantize preset: use --recipe \(t)")
                        }
                        throw UsageError(Suggestions.unknown("TYPE", t, among: LlamaPreset.allCases.map(\.rawValue) + ["COPY"]))
                    }
                    preset = p
                    onlyCopy = copy
                    args.removeFirst()
                }
                // Presets go through their built-in recipe (the same code path as --recipe).
                chosen = try BuiltinRecipes.recipe(named: preset.rawValue)
            }
            var threads = 0
            if let t = args.first {
                guard let n = Int(t), n >= 0 else { throw UsageError("invalid THREADS '\(t)'") }
                threads = n
                args.removeFirst()
            }
            guard args.isEmpty else { throw UsageError("unexpected argument '\(args[0])'") }
            guard includeWeights.isEmpty || excludeWeights.isEmpty else {
                throw UsageError("--include-weights and --exclude-weights cannot be used together")
            }

            var req = QuantizeRequest(preset: preset)
            if let limit = try split.limit() {
                guard !keepSplit else { throw SmeltError("--keep-split cannot be combined with --split-max-size / --split-max-tensors") }
                req.split = .limit(limit)
            } else if keepSplit {
                req.split = .keepInput
            }
            req.threads = threads
            req.hashOutput = recorder.wantsDigests
            req.onlyCopy = onlyCopy
            req.overrides = try overrideKv.map(Self.parseOverride)
            req.allowRequantize = allowRequantize
            req.allowNonfinite = allowNonfinite
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

            let deviceChoice = try DeviceChoice.resolve(option: device)
            let inputs = ([input, imatrix] + [recipe].filter { $0.map { FileManager.default.fileExists(atPath: $0) } ?? false })
                .compactMap { $0 }.map { URL(fileURLWithPath: $0) }
            if let o = output, !dryRun {
                try OutputGuard.check(output: URL(fileURLWithPath: o), inputs: inputs)
                if req.split != nil {
                    try OutputGuard.check(splitPrefix: QuantizeSplit.prefix(of: URL(fileURLWithPath: o)), inputs: inputs)
                }
            }
            if budget, let o = output {
                try OutputGuard.check(output: BudgetCommandSupport.recipeURL(output: o), inputs: inputs, what: "the budget recipe")
            }
            // the input is read first (a bad input is one error line), then the license is checked:
            // --license-policy refuse stops before anything is measured or written
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: input, isDirectory: &isFolder)
            let folderLicense = exists && isFolder.boolValue ? try licensePolicy.check(input, quiet: dryRun) : nil
            let source = try Self.source(input, outtype: outtype, pre: pre, license: folderLicense)
            if !isFolder.boolValue { try licensePolicy.check(input, quiet: dryRun) }
            var budgetOutcome: Budget.Outcome? = nil
            // the device serves budget mode's error measurements too
            if budget || !dryRun {
                let (gpu, note) = try deviceChoice.open()
                if let note { FileHandle.standardError.write(Data("\(note)\n".utf8)) }
                req.accelerator = gpu
            }
            if budget {
                let o = try BudgetCommandSupport.makeRecipe(source: source, input: input, output: output!, request: req,
                                                            targetBpw: targetBpw, targetSize: targetSize,
                                                            candidates: candidates, cache: cache, dryRun: dryRun,
                                                            loss: loss, useCache: !noCache)
                budgetOutcome = o
                let r = o.recipe
                chosen = r
                preset = r.fileType
                req.preset = preset
            }
            req.recipe = chosen
            if let c = chosen, provenance ?? !c.isBuiltinPreset { req.extraMetadata = RecipeProvenance.metadata(c) }
            if dryRun, let o = output {
                // the checks the real run makes before writing (Quantizer checks the plan itself)
                let dir = URL(fileURLWithPath: o).deletingLastPathComponent()
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
                    throw SmeltError("cannot write \(o): folder \(dir.path) does not exist")
                }
            }
            let tty = isatty(2) != 0 && !json
            let bar = ProgressBar("quantize", total: 1, unit: .items("tensors"), enabled: tty)
            let start = Date()
            let result = try Quantizer.run(
                source: source, output: dryRun ? nil : output.map { URL(fileURLWithPath: $0) }, request: req,
                // on a terminal the one progress bar (in logs the per-tensor lines below are the progress)
                progress: tty ? { done, total, name in bar.set(done, of: total, detail: name) } : nil,
                // in logs (stderr not a terminal): llama-quantize's line per tensor
                tensorLine: isatty(2) == 0 && !dryRun ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : nil)
            bar.finish()
            for w in result.imatrixWarnings { FileHandle.standardError.write(Data("\(w)\n".utf8)) }
            if !dryRun { try budgetOutcome?.writeRecipe() }  // side files appear only when the run succeeded
            let seconds = Date().timeIntervalSince(start)
            var record = recorder.begin(.quantize)
            if !dryRun {
                record = try recorder.quantize(result, input: URL(fileURLWithPath: input), output: output.map { URL(fileURLWithPath: $0) },
                                          recipe: chosen, imatrix: imatrix.map { URL(fileURLWithPath: $0) },
                                          threads: threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount,
                                          summary: QuantizeSummary(result, preset: preset.rawValue, recipe: chosen?.name,
                                                                   dryRun: dryRun, seconds: seconds))
            }
            if json { print(try Recorder.json(resultJSON: Data(result.plan.json().serialized(pretty: true).utf8), record: record)) }
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

    /// The model to quantize or plan: a GGUF file (a split model by its first shard) or an HF
    /// checkpoint folder (converted on the fly with `outtype`).
    static func source(_ input: String, outtype: String, pre: String?, license: LicenseKeys? = nil) throws -> TensorSource {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
            throw SmeltError("\(input): no such file")
        }
        guard isDir.boolValue else { return try GGUFTensorSource(url: URL(fileURLWithPath: input)) }
        guard let ot = OutType(rawValue: outtype.lowercased()), ot != .tq1_0, ot != .tq2_0 else {
            throw UsageError(Suggestions.unknown("--outtype", outtype, among: ["f32", "f16", "bf16", "auto"]))
        }
        return try HFCheckpointSource(folder: URL(fileURLWithPath: input), outType: ot, pre: pre, license: license)
    }

    static func ggmlType(_ s: String) throws -> GGMLType {
        guard let t = GGMLType(name: s) else { throw UsageError(Suggestions.unknown("ggml type", s, among: GGMLType.allCases.map(\.name))) }
        return t
    }

    /// A llama-quantize TYPE (case-insensitive), or `COPY` (tensors copied as they are, the input's file type).
    static func preset(parsing s: String) -> (LlamaPreset, Bool)? {
        if s.uppercased() == "COPY" { return (.F32, true) }
        return LlamaPreset(parsing: s).map { ($0, false) }
    }

    /// `--override-kv KEY=TYPE:VALUE` as llama.cpp's `string_parse_kv_override` reads it and
    /// llama-quantize writes it: int → uint32 (absolute value), float → float32, bool, str.
    static func parseOverride(_ s: String) throws -> (String, GGUFValue) {
        guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
            throw UsageError("--override-kv: expected KEY=TYPE:VALUE (TYPE int, float, bool or str), got '\(s)'")
        }
        let key = String(s[..<eq]), rest = s[s.index(after: eq)...]
        guard key.utf8.count < 128 else { throw UsageError("--override-kv: key '\(key)' is longer than 127 bytes") }
        guard let colon = rest.firstIndex(of: ":") else {
            throw UsageError("--override-kv: expected KEY=TYPE:VALUE, got '\(s)'")
        }
        let type = String(rest[..<colon]), value = String(rest[rest.index(after: colon)...])
        switch type {
        case "int":
            guard let v = Int64(value) else { throw UsageError("--override-kv \(key): '\(value)' is not an integer") }
            return (key, .uint32(UInt32(truncatingIfNeeded: v.magnitude)))
        case "float":
            guard let v = Double(value) else { throw UsageError("--override-kv \(key): '\(value)' is not a number") }
            return (key, .float32(Float(v)))
        case "bool":
            guard value == "true" || value == "false" else { throw UsageError("--override-kv \(key): '\(value)' is not true or false") }
            return (key, .bool(value == "true"))
        case "str":
            guard value.utf8.count < 128 else { throw UsageError("--override-kv \(key): value longer than 127 bytes") }
            return (key, .string(value))
        default:
            throw UsageError(Suggestions.unknown("--override-kv type", type, among: ["int", "float", "bool", "str"]))
        }
    }
}

extension QuantizeCommand {
    /// `--format compressed-tensors`: HF_DIR -o OUT_DIR --scheme S | --recipe R [--ignore NAME|re:REGEX]…
    func runCompressedTensors() throws {
        guard format.lowercased() == "compressed-tensors" else {
            throw UsageError(Suggestions.unknown("--format", format, among: ["gguf", "compressed-tensors"]))
        }
        guard arguments.count == 1 else { throw UsageError("usage: smelt quantize HF_DIR -o OUT_DIR --format compressed-tensors --scheme S") }
        guard let out = outputFolder else { throw UsageError("--format compressed-tensors needs -o OUT_DIR") }
        guard calibrationChunks > 0 else { throw UsageError("--calibration-chunks must be positive") }
        if let g = groupSize, !CompressedTensorsExport.supportedGroupSizes.contains(g) {
            throw UsageError("--group-size \(g): use 32, 64 or 128 (the group sizes of vLLM's INT4 kernels)")
        }
        guard (scheme == nil) != (recipe == nil) else { throw UsageError("give --scheme or --recipe (a compressed-tensors recipe), not both") }
        var preset: CTSchemePreset? = nil
        if let s = scheme {
            guard let p = CTSchemePreset(name: s) else {
                throw UsageError(Suggestions.unknown("--scheme", s, among: CTSchemePreset.allCases.map(\.rawValue)))
            }
            preset = p
            if let g = groupSize, p.scheme().weights?.strategy != .group {
                throw UsageError("--group-size \(g): scheme \(p.rawValue) does not quantize weights in groups (W4A16, W4A16_ASYM do)")
            }
        }
        let r = try recipe.map { try BuiltinRecipes.load($0) }
        if let r, !r.isCompressedTensors { throw UsageError("recipe '\(r.name)' chooses ggml types: a compressed-tensors recipe has format: compressed-tensors") }
        let input = URL(fileURLWithPath: arguments[0])
        let output = URL(fileURLWithPath: out)
        try OutputGuard.check(output: output, inputs: [input])
        var job = CompressedTensorsExport(input: input, output: output, scheme: preset, recipe: r,
                                          ignore: ignore.isEmpty ? ["lm_head"] : ignore, groupSize: groupSize)
        if dryRun {
            let (plan, choices) = try job.plan()
            for c in choices { print("\(c.module.name)\t\(c.scheme?.rawValue ?? "keep")\t\(c.reason)") }
            print("groups: \(plan.config.groups.map { "\($0.name)=\($0.scheme.format?.rawValue ?? "")" }.joined(separator: " ")), ignore: \(plan.config.ignore)")
            return
        }
        // schemes with static input scales (FP8) are calibrated on the built-in calibration text
        let (plan0, choices) = try job.planNeedingCalibration()
        if plan0 {
            let m = try InferenceModel(url: input, threads: ProcessInfo.processInfo.activeProcessorCount, llamaRounding: false)
            let tokens = try m.makeTokenizer(pre: pre).encode(CalibrationText.text, addSpecial: true, parseSpecial: false)
            let progress = EvaluationProgress(label: "calibrate", printLines: false)
            let reporter = progress.reporter
            let byGGUF = try Evaluator.inputAbsMax(model: m, tokens: tokens, options: EvaluationOptions(contextLength: 512, chunks: calibrationChunks),
                                                   reporter: reporter)
            progress.finish()
            for c in choices { if let a = byGGUF[c.module.ggufName] { job.inputAbsMax[c.module.name] = a } }
        }
        // GPTQ / AWQ / SmoothQuant (docs/COMPRESSED-TENSORS-CALIBRATION.md)
        let outcome = try calibration.run(input: input, job: &job, plan: try job.plan().plan)
        let (summary, _) = try job.run(weights: outcome.tensorValues, quantizer: outcome.quantizer())
        FileHandle.standardError.write(Data("wrote \(summary.folder.path): \(summary.quantized) linear modules quantized, \(summary.tensors) tensors, \(summary.bytes) bytes of weights\n".utf8))
    }
}
