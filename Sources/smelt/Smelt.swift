import ArgumentParser
import SmeltFormats

/// The `smelt` command: parses arguments and calls the libraries.
@main
struct Smelt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smelt",
        abstract: "Convert, quantize and evaluate LLM checkpoints (GGUF / safetensors).",
        version: SmeltVersion.string,
        subcommands: allSubcommands)
}

/// The subcommands, one file each in this folder.
let allSubcommands: [ParsableCommand.Type] = [
    InspectCommand.self,
    ConvertCommand.self,
    ExportCommand.self,
    QuantizeCommand.self,
    PlanCommand.self,
    ImatrixCommand.self,
    SensitivityCommand.self,
    PerplexityCommand.self,
    LicenseCommand.self,
    DevicesCommand.self,
    BenchCommand.self,
]
