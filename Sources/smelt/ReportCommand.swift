import ArgumentParser
import Foundation
import SmeltFormats
import SmeltLicense
import SmeltReport
import SmeltStore

/// `smelt report [--base MODEL] [-o report.md|.csv|.json|.html]`: the comparison of the quants of one base model.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Compare the stored runs of one base model, text and context: table, Markdown, CSV, JSON or an HTML page.",
        discussion: """
        Rows: the base model's perplexity run and the latest KL-divergence run of each quant, sorted by size; the quants
        on the Pareto frontier of (size, mean KLD) and (size, 99.9 % KLD) are marked. With several groups, choose one
        with --base. The HTML page is one self-contained file (docs/REPORTS.md).
        """)

    @OptionGroup var location: ResultsCommand.Location
    @Option(help: "Base model: part of its name, or a prefix of its SHA-256.")
    var base: String?
    @Option(name: .shortAndLong, help: "Write the report here: .md, .csv, .json, .html (else a table on stdout).")
    var output: String?
    @Option(help: "Format on stdout: terminal, markdown, csv, json, html.")
    var format: String?

    func run() throws {
        try reportingErrors {
            if let o = output { try OutputGuard.check(output: URL(fileURLWithPath: o), inputs: location.files) }
            let s = try location.open()
            let group = try Report.select(try Report.groups(s), base: base)
            var fmt = ReportFormat.terminal
            if let f = format {
                guard let ff = ReportFormat(rawValue: f.lowercased()) ?? (f.lowercased() == "md" ? .markdown : nil) else {
                    throw SmeltError("--format: unknown format '\(f)' (terminal, markdown, csv, json, html)")
                }
                fmt = ff
            }
            if let o = output {
                guard let ff = ReportFormat(path: o) else {
                    throw SmeltError("\(o): cannot tell the format from the extension (.md, .csv, .json, .html, .txt)")
                }
                fmt = ff
            }
            var plans: [String: ModelPlanRecord] = [:]
            if fmt == .html { for r in group.rows { if let p = try s.plan(modelKey: r.modelKey) { plans[r.modelKey] = p } } }
            let text = try group.render(fmt, plans: plans)
            if let o = output {
                let out = try OutputFile(url: URL(fileURLWithPath: o))
                try out.write(Array(text.utf8))
                try out.commit()
                print("report: \(group.rows.count) models → \(URL(fileURLWithPath: o).standardizedFileURL.path)")
            } else {
                print(text, terminator: "")
            }
        }
    }
}

/// `smelt card FOLDER [--source SRC]`: a Hugging Face model card for a folder of quants.
struct CardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "card",
        abstract: "Write a Hugging Face model card (README.md) for a folder of GGUF quants, from the results store.",
        discussion: "Front matter: base_model and license from `smelt license` of --source (or of the first GGUF).")

    @Argument(help: "The folder of .gguf files.")
    var folder: String
    @Option(help: "The source model (HF folder or GGUF) whose license and base model the card names.")
    var source: String?
    @Option(help: "Base model repository id (overrides what the license check finds).")
    var baseModel: String?
    @Option(help: "quantized_by in the front matter.")
    var quantizedBy: String?
    @Option(name: .shortAndLong, help: "Output file (default: FOLDER/README.md; - for stdout).")
    var output: String?
    @OptionGroup var location: ResultsCommand.Location

    func run() throws {
        try reportingErrors {
            let dir = URL(fileURLWithPath: folder)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else {
                throw SmeltError("\(dir.path): not a readable folder")
            }
            let ggufs = names.filter { $0.hasSuffix(".gguf") }.sorted()
            let first = ggufs.first
            let src = source.map { URL(fileURLWithPath: $0) } ?? first.map { dir.appendingPathComponent($0) }
            let url = output.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("README.md")
            if output != "-" {
                // the quants it describes, the source model and the store
                try OutputGuard.check(output: url, inputs: ggufs.map { dir.appendingPathComponent($0) } + (src.map { [$0] } ?? []) + location.files)
            }
            let s = try location.open()
            let info = src.map { ConversionLicenseInfo.check($0) }
            var bases = info?.metadata.baseModels.compactMap { b in
                b.repoURL.map { $0.replacingOccurrences(of: "https://huggingface.co/", with: "") } ?? b.organization.map { "\($0)/\(b.name)" }
            } ?? []
            if let b = baseModel { bases = [b] }
            let name = bases.first.map { String($0.split(separator: "/").last ?? Substring($0)) } ?? dir.lastPathComponent
            let text = try QuantModelCard.make(folder: dir, store: s,
                                               source: .init(license: info?.metadata.license, baseModels: bases, name: name),
                                               quantizedBy: quantizedBy)
            if output == "-" { print(text, terminator: ""); return }
            let out = try OutputFile(url: url)
            try out.write(Array(text.utf8))
            try out.commit()
            print("model card → \(url.path)")
        }
    }
}
