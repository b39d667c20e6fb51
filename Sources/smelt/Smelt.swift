import ArgumentParser
import Foundation
import SmeltFormats

/// The `smelt` command: parses arguments and calls the libraries.
@main
struct Smelt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smelt",
        abstract: "Convert, quantize and evaluate LLM checkpoints (GGUF / safetensors).",
        discussion: "Exit status (every command): 0 success, 1 bad input or failure, 2 usage error, 3 refused by policy, 4 undetermined (license).",
        version: SmeltVersion.string,
        subcommands: allSubcommands)

    /// ArgumentParser's main, with llama.cpp's spellings rewritten first (`FamiliarArguments`),
    /// "did you mean" for unknown commands, and usage errors as one `error:` line and status 2.
    static func main() {
        let args = FamiliarArguments.rewrite(Array(CommandLine.arguments.dropFirst()))
        if let first = args.first, !first.hasPrefix("-") {
            let names = allSubcommands.compactMap { $0.configuration.commandName } + ["help"]
            if !names.contains(first) {
                usageExit(Suggestions.unknown("command", first, among: names.filter { $0 != "help" }))
            }
            if first == "help", args.count > 1, let sub = args.dropFirst().first(where: { !$0.hasPrefix("-") }), !names.contains(sub) {
                usageExit(Suggestions.unknown("command", sub, among: names.filter { $0 != "help" }))
            }
        }
        do {
            var command = try parseAsRoot(args)
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                let sub = args.first.map { $0.hasPrefix("-") ? "" : " \($0)" } ?? ""
                usageExit("\(oneLine(message(for: error))) (see smelt\(sub) --help)")
            }
            exit(withError: error)
        }
    }

    static func usageExit(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        Foundation.exit(ExitStatus.usage)
    }
}

/// The subcommands, one file each in this folder.
let allSubcommands: [ParsableCommand.Type] = [
    InspectCommand.self,
    ConvertCommand.self,
    ExportCommand.self,
    QuantizeCommand.self,
    SplitCommand.self,
    MergeCommand.self,
    PlanCommand.self,
    ImatrixCommand.self,
    SensitivityCommand.self,
    PerplexityCommand.self,
    LicenseCommand.self,
    ResultsCommand.self,
    ReportCommand.self,
    CardCommand.self,
    SweepCommand.self,
    DevicesCommand.self,
    BenchCommand.self,
]

/// llama.cpp's spellings that ArgumentParser cannot express directly, rewritten to Smelt's.
enum FamiliarArguments {
    static func rewrite(_ args: [String]) -> [String] {
        guard args.first == "perplexity" else { return args }
        // llama-perplexity: --kl-divergence-base F alone writes F; with the flag --kl-divergence it reads F.
        guard let b = args.firstIndex(of: "--kl-divergence-base"), b + 1 < args.count else { return args }
        var out = args
        let base = out[b + 1]
        out.removeSubrange(b...(b + 1))
        if let f = out.firstIndex(of: "--kl-divergence") { out.insert(base, at: f + 1) } else { out += ["--save-logits", base] }
        return out
    }
}
