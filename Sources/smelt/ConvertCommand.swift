import ArgumentParser
import Foundation
import SmeltConvert
import SmeltFormats
import SmeltLicense
import SmeltModel

/// `smelt convert HF_FOLDER -o OUT.gguf [--outtype T]`.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Hugging Face checkpoint folder to GGUF, as llama.cpp's convert_hf_to_gguf.py does.")

    @Argument(help: "The checkpoint folder (config.json, *.safetensors, tokenizer files).")
    var model: String

    @Option(name: [.short, .customLong("outfile")], help: "The GGUF file to write.")
    var output: String?

    @Option(help: "f32, f16, bf16, q8_0, tq1_0, tq2_0 or auto (the checkpoint's 16-bit type).")
    var outtype: String = "auto"

    @Option(help: "Force the BPE pre-tokenizer name (tokenizer.ggml.pre) instead of detecting it.")
    var pre: String?

    @Option(help: "Override general.name.")
    var name: String?

    @Option(help: "Threads for q8_0 output.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "List what would be written (tensors, types, metadata keys) and write nothing.")
    var dryRun = false
    @Flag(help: "Write tensors holding NaN or infinity (refused by default, naming the tensor and row).")
    var allowNonfinite = false

    @OptionGroup var split: SplitOptions

    @OptionGroup var licensePolicy: LicensePolicyOptions

    @Flag(help: "Write only the metadata and the vocabulary, no tensors (convert_hf_to_gguf.py --vocab-only).")
    var vocabOnly = false

    func validate() throws {
        guard OutType(rawValue: outtype.lowercased()) != nil else {
            throw ValidationError(Suggestions.unknown("--outtype", outtype, among: OutType.allCases.map(\.rawValue)))
        }
        if !dryRun && output == nil { throw ValidationError("give the output file with -o OUT.gguf (or --dry-run)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            if let o = output, !dryRun {
                try OutputGuard.check(output: URL(fileURLWithPath: o), inputs: [URL(fileURLWithPath: model)])
                if try split.limit() != nil {
                    try OutputGuard.check(splitPrefix: URL(fileURLWithPath: o).deletingPathExtension().path, inputs: [URL(fileURLWithPath: model)])
                }
            }
            // a folder that is no checkpoint is one error line; then the license check: --license-policy
            // refuse stops before anything is written (dry run too)
            _ = try HFConfig(folder: URL(fileURLWithPath: model))
            let license = try licensePolicy.check(model, quiet: dryRun)
            let plan = try ConversionPlan(folder: URL(fileURLWithPath: model), outType: OutType(rawValue: outtype.lowercased())!, pre: pre, name: name,
                                         vocabOnly: vocabOnly, license: license)
            if dryRun {
                print("architecture \(plan.architecture), outtype \(plan.outType.rawValue): \(plan.metadata.count) metadata keys, \(plan.tensors.count) tensors")
                for t in plan.tensors {
                    print("\(t.name.padding(toLength: 36, withPad: " ", startingAt: 0)) \(t.type.name.padding(toLength: 5, withPad: " ", startingAt: 0)) \(t.shape.map(String.init).joined(separator: " x ").padding(toLength: 16, withPad: " ", startingAt: 0)) <- \(t.sourceName)")
                }
                return
            }
            let out = URL(fileURLWithPath: output!)
            let limit = try split.limit()
            let files = try Converter.outputFiles(plan, to: out, split: limit)
            let s = try Converter.write(plan, to: out, split: limit, threads: threads, allowNonfinite: allowNonfinite)
            let shown = files.count == 1 ? files[0].url.path : "\(files.count) shards \(files[0].url.path) …"
            print(String(format: "wrote %@: %d tensors, %d parameters, %.2f MiB (%@) in %.2f s", shown, s.tensors, s.parameters,
                         Double(s.bytes) / 1048576, plan.outType.rawValue, s.seconds))
        }
    }
}
