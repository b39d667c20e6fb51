import ArgumentParser
import Foundation
import SmeltFormats

/// `smelt inspect PATH [--json]`.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show the metadata and tensor table of a GGUF file, a safetensors file or an HF checkpoint folder.")

    @Argument(help: "A .gguf file, a .safetensors file or a Hugging Face checkpoint folder.")
    var path: String

    @Flag(help: "Print one JSON object with `metadata` and `tensors`.")
    var json = false

    @Option(help: "Array items shown before abbreviating (text output).")
    var maxItems = 8

    func run() throws {
        try reportingErrors {
            let report = try InspectReport(url: URL(fileURLWithPath: path))
            if json { print(report.json().serialized(pretty: true)) } else { print(report.text(maxItems: maxItems), terminator: "") }
        }
    }
}
