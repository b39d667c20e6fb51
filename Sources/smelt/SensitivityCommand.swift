import ArgumentParser
import Foundation
import SmeltEval
import SmeltFormats
import SmeltGPU
import SmeltQuantize
import SmeltReport

/// `smelt sensitivity MODEL --imatrix F [-f TEXT | --kld-base BASE]`: per tensor and candidate
/// type, the importance-weighted quantization error; optionally the KLD of the model with only
/// one tensor group quantized. Cached on disk, keyed by model, imatrix, tensor and type.
struct SensitivityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensitivity",
        abstract: "Measure how much each tensor suffers from each quantization type (weighted error; KLD per tensor group).",
        discussion: """
        (a) always: per tensor and candidate type, the imatrix-weighted squared error and its size.
        (b) with -f TEXT (or --kld-base BASE from smelt perplexity --save-logits): the mean KL-divergence
        of the model with only one group of tensors (role x first/middle/last eighth of the layers)
        quantized to each --kld-types type, everything else as in MODEL. Results are cached
        (--cache, default ~/.cache/smelt/sensitivity) and reused; budget mode reads the same cache.
        """)

    @Argument(help: "Model: a GGUF file (F32/F16/BF16; a split model by its first shard) or a Hugging Face checkpoint folder.")
    var model: String
    @Option(help: "Importance matrix.")
    var imatrix: String?
    @Option(name: [.short, .customLong("file")], help: "Evaluation text for the KLD measurements (not the calibration text).")
    var file: String?
    @Option(help: "Base logits from smelt perplexity MODEL --save-logits (instead of -f).")
    var kldBase: String?
    @Option(help: "Types whose per-group KLD is measured, comma-separated.")
    var kldTypes = "q4_0"
    @Option(help: "Candidate types for the weighted error, comma-separated.")
    var candidates: String?
    @Option(help: "Measure the KLD only of groups whose name matches this regex (e.g. 'attn_v|ffn_down').")
    var groups: String?
    @Option(help: "Chunks for the KLD measurements.")
    var chunks = 4
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.")
    var context = 512
    @Option(help: "Cache folder.")
    var cache: String?
    @Flag(help: "Measure everything again; neither read nor write the cache.")
    var noCache = false
    @Option(name: [.short, .long], help: "Worker threads (default: all cores).")
    var threads: Int?
    @Option(help: "Where to quantize for the error measurements: cpu (default), auto, vulkan or vulkan:N; default from SMELT_DEVICE. Same results on every device.")
    var device: String?
    @Flag(help: "Print the table as JSON.")
    var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        try reportingErrors {
            let recorder = try storeOptions.recorder()
            let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
            let url = URL(fileURLWithPath: model)
            let deviceChoice = try DeviceChoice.resolve(option: device)
            let source = try QuantizeCommand.source(model, outtype: "auto", pre: nil)  // a GGUF or a checkpoint folder
            let imURL = imatrix.map { URL(fileURLWithPath: $0) }
            let im = try imURL.map { try PreparedImatrix(url: $0, include: [], exclude: []) }
            var options = QuantizeOptions(); options.dryRun = true; options.pure = true
            options.hasImatrix = !(im?.weights.isEmpty ?? true)
            let facts = ModelFacts(metadata: source.metadata)
            let probe = try LlamaPresets.plan(tensors: source.tensors.map { PlanInput(name: $0.name, shape: $0.shape, type: $0.type) },
                                              model: facts, preset: .Q8_0, options: options)
            let quantizable = probe.tensors.filter(\.allowsQuantization)
            let index = Dictionary(uniqueKeysWithValues: source.tensors.enumerated().map { ($1.name, $0) })
            let folder = cache.map { URL(fileURLWithPath: $0) } ?? Sensitivity.defaultCacheFolder
            let weights = im?.weights ?? [:]
            let key = try Sensitivity.errorKey(source: source, importance: weights)
            let cacheURL = Sensitivity.cacheURL(folder: folder, key: key)
            var table = noCache ? SensitivityTable(key: key) : Sensitivity.loadCache(cacheURL, key: key)
            func save() throws { if !noCache { try Sensitivity.saveCache(table, cacheURL) } }
            let types = try BudgetCommandSupport.candidateTypes(candidates)
            let log = { (s: String) in ProgressBar.clearScreen(); FileHandle.standardError.write(Data((s + "\n").utf8)) }
            let before = table.entries.values.reduce(0) { $0 + $1.count }
            let bar = ProgressBar("sensitivity", total: 1, unit: .items("measurements"))
            try Sensitivity.measureErrors(source: source, tensors: quantizable.map { index[$0.name]! }, types: types,
                                          importance: weights, table: &table, threads: threadCount,
                                          accelerator: try {
                                              let (gpu, note) = try deviceChoice.open()
                                              if let note { log(note) }
                                              return gpu
                                          }(),
                                          progress: { bar.set($0, of: $1) })
            bar.finish()
            try save()
            let measured = table.entries.values.reduce(0) { $0 + $1.count } - before
            log(noCache ? "weighted errors: \(measured) measured (cache off)" : "weighted errors: \(measured) measured, \(before) cached (\(cacheURL.path))")
            var kldKey: String? = nil

            if file != nil || kldBase != nil {
                let evalOptions = EvaluationOptions(contextLength: context, batchSize: 2048, chunks: chunks)
                // Everything a KLD measurement depends on: the model's content, the imatrix, the
                // evaluation (text or base logits, by content) and its settings.
                let evaluation = try kldBase.map { "base \(try Sensitivity.fileKey(URL(fileURLWithPath: $0)))" }
                    ?? "text \(try Sensitivity.fileKey(URL(fileURLWithPath: file!)))"
                let content = try Sensitivity.contentKey(source)
                let k = try Sensitivity.kldKey(errorKey: key, contentKey: content, imatrix: imURL, evaluation: evaluation,
                                               context: context, chunks: chunks, batch: evalOptions.batchSize)
                kldKey = k
                let conditions = (kldBase.map { "base logits \(URL(fileURLWithPath: $0).lastPathComponent)" }
                                  ?? "text \(URL(fileURLWithPath: file!).lastPathComponent), -c \(context)") + ", \(chunks) chunks"
                if table.kld[k] == nil { table.kld[k] = KLDMeasurements(model: content, conditions: conditions) }
                var groupMembers: [String: [String]] = [:]
                for t in quantizable { groupMembers[Budget.group(of: t.name, nLayer: facts.nLayer), default: []].append(t.name) }
                let groupFilter = try groups.map { p -> NSRegularExpression in
                    do { return try RecipePattern.compile(p) } catch let e as SmeltError { throw SmeltError("--groups: \(e.message)") } catch { throw SmeltError("--groups: bad regular expression '\(p)'") }
                }
                // The probes still to measure: (group, type, the group's tensors that fit the type).
                var probes: [(String, GGMLType, [String])] = []
                for ty in try BudgetCommandSupport.candidateTypes(kldTypes) {
                    for (g, names) in groupMembers.sorted(by: { $0.key < $1.key }) {
                        if table.kld[k]?.groups[g]?[ty] != nil { continue }
                        if let f = groupFilter, f.firstMatch(in: g, range: NSRange(location: 0, length: (g as NSString).length)) == nil { continue }
                        let fitting = names.filter { Sensitivity.fits(ty, ncols: source.tensors[index[$0]!].rowLength, hasImportance: true) }
                        if !fitting.isEmpty { probes.append((g, ty, fitting)) }
                    }
                }
                log("KLD: \(probes.count) group probes to measure, \(table.kld[k]?.groups.values.reduce(0) { $0 + $1.count } ?? 0) cached (\(conditions))")
                if !probes.isEmpty {
                    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("smelt-sensitivity-\(ProcessInfo.processInfo.processIdentifier)")
                    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
                    defer { try? FileManager.default.removeItem(at: tmp) }
                    let base: URL
                    if let b = kldBase { base = URL(fileURLWithPath: b) } else {
                        base = tmp.appendingPathComponent("base.kld")
                        let m = try InferenceModel(url: url, threads: threadCount)
                        let text = try EvaluationText.read(URL(fileURLWithPath: file!))
                        let tokens = try m.makeTokenizer(pre: nil).encode(text, addSpecial: true, parseSpecial: false)
                        let p = EvaluationProgress(label: "base perplexity", printLines: false)
                        let r = try Evaluator.perplexity(model: m, tokens: tokens, options: evalOptions, saveLogits: base, reporter: p.reporter)
                        p.finish()
                        log(String(format: "base: PPL %.4f over %d chunks", r.perplexity, r.chunks))
                    }
                    let probeBar = ProgressBar("kld probes", total: probes.count, unit: .items("probes"))
                    for (n, (g, ty, fitting)) in probes.enumerated() {
                        probeBar.set(n, detail: "\(g) \(ty.name)")
                        let alt = fitting.map { NSRegularExpression.escapedPattern(for: $0) }.joined(separator: "|")
                        let yaml = "name: probe\ndefault: \(ty.name)\nrules:\n  - name: '^(\(alt))$'\n    type: \(ty.name)\n  - type: keep\n"
                        let recipe = try Recipe(yaml: yaml, source: "probe")
                        var req = QuantizeRequest(preset: recipe.fileType)
                        req.recipe = recipe; req.imatrixURL = imURL; req.threads = threadCount; req.hashOutput = false
                        let out = tmp.appendingPathComponent("probe.gguf")
                        try Quantizer.run(source: source, output: out, request: req)
                        let m = try InferenceModel(url: out, threads: threadCount)
                        let r = try Evaluator.klDivergence(model: m, base: base, options: evalOptions, reporter: EvaluationReporter())
                        table.kld[k]?.groups[g, default: [:]][ty] = r.kld.value
                        try save()
                        probeBar.set(n + 1, detail: "\(g) \(ty.name)")
                        probeBar.clear()
                        log(String(format: "KLD %@ %@ (%d tensors): %.6f", g, ty.name, fitting.count, r.kld.value))
                    }
                    probeBar.finish()
                }
            }
            let tableJSON = table.json().serialized(pretty: true)
            let record = try recorder.sensitivity(resultJSON: tableJSON, model: url, imatrix: imURL, text: file.map { URL(fileURLWithPath: $0) },
                                         base: kldBase.map { URL(fileURLWithPath: $0) }, context: context, chunks: chunks,
                                         threads: threadCount)
            if json { print(try Recorder.json(resultJSON: Data(tableJSON.utf8), record: record)); return }
            // Text: per group, the mean relative error of each type, and the measured KLD.
            var out = "group                 tensors  " + types.map { $0.name.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined() + " KLD\n"
            var groups: [String: [String]] = [:]
            for t in quantizable { groups[Budget.group(of: t.name, nLayer: facts.nLayer), default: []].append(t.name) }
            for (g, names) in groups.sorted(by: { $0.key < $1.key }) {
                var line = g.padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: "%7d  ", names.count)
                for ty in types {
                    let v = names.compactMap { table[$0, ty]?.relativeError }
                    line += v.count == names.count ? String(format: "%-9.2e", v.reduce(0, +) / Double(v.count)) : "-        "
                }
                line += (kldKey.flatMap { table.kld[$0]?.groups[g] } ?? [:]).sorted { $0.key.rawValue < $1.key.rawValue }.map { String(format: " %@=%.5f", $0.key.name, $0.value) }.joined()
                out += line + "\n"
            }
            print(out, terminator: "")
        }
    }
}
