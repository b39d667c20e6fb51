import ArgumentParser
import Foundation
import SmeltFormats
import SmeltLicense

/// `smelt license PATH [--use commercial|redistribute|redistribute-quantized] [--json] [--cards DIR]`.
/// Exit status (Smelt's convention): 0 allowed (or no `--use`), 1 bad input, 2 usage error,
/// 3 not allowed (refused by policy), 4 cannot conclude.
struct LicenseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "license",
        abstract: "Work out the effective license of a model, merges and fine-tunes included (not legal advice).",
        discussion: """
        Reads the model card front matter, LICENSE / NOTICE / USE_POLICY files, mergekit_config.yml, \
        adapter_config.json, config.json or a GGUF header, follows base models offline (model folder, \
        --cards folder, built-in table) and combines the most restrictive terms.
        Exit status: 0 allowed (or no --use given), 1 bad input, 2 usage error, 3 not allowed, 4 cannot conclude.
        """)

    @Argument(help: "A model folder, a model card (.md) or a .gguf file.")
    var path: String

    @Option(help: "The intended use to decide (sets the exit status).")
    var use: IntendedUse?

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "A folder of model cards (owner/name/README.md, owner--name.md or a Hugging Face cache) to resolve parents offline.")
    var cards: String?

    func run() throws {
        let report: LicenseReport
        do {
            let resolver = LicenseResolver(knowledgeBase: try KnowledgeBase.validatedBuiltIn(), cardsDirectory: cards.map { URL(fileURLWithPath: $0) })
            report = try resolver.report(for: URL(fileURLWithPath: path))
            if json {
                print(try report.json(), terminator: "")
            } else {
                print(report.text(use: use), terminator: "")
            }
        } catch {
            // One line, whatever the underlying error text looks like.
            let text = (error as? SmeltError)?.message ?? "\(error)"
            let line = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            FileHandle.standardError.write(Data("error: \(line)\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
        if let u = use {
            let code = report.verdict(for: u).outcome.exitCode
            if code != 0 { throw ExitCode(code) }
        }
    }
}

extension IntendedUse: ExpressibleByArgument {
    /// Case-insensitive, as every name on Smelt's command line.
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}
