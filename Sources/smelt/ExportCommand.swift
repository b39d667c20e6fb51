import ArgumentParser
import Foundation
import SmeltConvert
import SmeltFormats

/// `smelt export MODEL.gguf -o FOLDER [--dtype bf16|f16|f32]`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a GGUF model back as a Hugging Face checkpoint folder (dequantized safetensors, config, tokenizer).")

    @Argument(help: "The GGUF file (any tensor type Smelt can read).")
    var model: String

    @Option(name: [.short, .customLong("output")], help: "The folder to create.")
    var output: String

    @Option(help: "bf16, f16 or f32.")
    var dtype: String = "bf16"

    @Option(help: "Largest shard in bytes (more shards are written with model.safetensors.index.json).")
    var maxShardSize: Int = 2_000_000_000

    func validate() throws {
        guard Exporter.DType(rawValue: dtype.lowercased()) != nil else {
            throw ValidationError(Suggestions.unknown("--dtype", dtype, among: Exporter.DType.allCases.map(\.rawValue)))
        }
        guard maxShardSize > 0 else { throw ValidationError("--max-shard-size must be positive") }
    }

    func run() throws {
        try reportingErrors {
            try OutputGuard.check(output: URL(fileURLWithPath: output), inputs: [URL(fileURLWithPath: model)])
            let s = try Exporter.export(gguf: URL(fileURLWithPath: model), to: URL(fileURLWithPath: output),
                                        dtype: Exporter.DType(rawValue: dtype.lowercased())!, maxShardBytes: maxShardSize)
            print("wrote \(s.folder.path): \(s.tensors) tensors; \(s.files.joined(separator: ", "))")
            for n in s.notes { print("note: \(n)") }
            if !s.skipped.isEmpty { print("not exported (no Hugging Face name): \(s.skipped.joined(separator: ", "))") }
        }
    }
}
