import ArgumentParser
import Foundation
import SmeltEval
import SmeltFormats
import SmeltReport
import SmeltStore

/// `smelt results list|show|delete|export|import`: the runs kept in the results store.
struct ResultsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results",
        abstract: "List, show, delete, export and import the runs kept in the results store.",
        discussion: "Every quantize, imatrix, perplexity and sensitivity run is recorded (see docs/REPORTS.md).",
        subcommands: [List.self, Show.self, Delete.self, Export.self, Import.self])

    struct Location: ParsableArguments {
        @Option(help: "Results store (default: $SMELT_STORE, else $XDG_DATA_HOME/smelt/results.sqlite, else ~/.local/share/smelt/results.sqlite).")
        var store: String?
        /// The store's file.
        var url: URL { store.map { URL(fileURLWithPath: $0) } ?? ResultsStore.defaultURL() }
        /// The store's file and SQLite's side files: what an output must not replace.
        var files: [URL] { [url, URL(fileURLWithPath: url.path + "-wal"), URL(fileURLWithPath: url.path + "-shm")] }
        func open() throws -> ResultsStore {
            try ResultsStore(url: url)
        }
    }

    struct Filters: ParsableArguments {
        @Option(help: "Model: part of its name or path, or a prefix of its SHA-256.") var model: String?
        @Option(help: "Base model (the model that wrote the KLD base file): name, path part or hash prefix.") var base: String?
        @Option(help: "Text: name, path part or hash prefix.") var text: String?
        @Option(help: "quantize, imatrix, perplexity, kl-divergence or sensitivity.") var kind: String?
        @Option(help: "Runs started on or after this date (2026-12-01 or ISO 8601).") var since: String?

        func filter() throws -> RunFilter {
            var f = RunFilter(model: model, base: base, text: text)
            if let k = kind {
                guard let kk = RunKind(rawValue: k.lowercased()) ?? (k.lowercased() == "kld" ? .klDivergence : nil) else {
                    throw SmeltError("--kind: unknown kind '\(k)' (\(RunKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                f.kind = kk
            }
            if let s = since {
                guard let d = ResultsStore.date(s) else { throw SmeltError("--since: cannot read the date '\(s)' (e.g. 2026-12-01)") }
                f.since = d
            }
            return f
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per run (id, date, kind, model, main figure).")
        @OptionGroup var location: Location
        @OptionGroup var filters: Filters
        func run() throws {
            try reportingErrors {
                let runs = try location.open().runs(try filters.filter())
                print(ResultsText.header)
                for r in runs { print(ResultsText.line(r)) }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything recorded of one run, as JSON.")
        @OptionGroup var location: Location
        @Argument(help: "Run id.") var id: Int64
        func run() throws {
            try reportingErrors {
                guard let r = try location.open().run(id: id) else { throw SmeltError("no run \(id) in the results store") }
                print(try ResultsText.json([r]).dropFirst().dropLast().trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete runs by id.")
        @OptionGroup var location: Location
        @Argument(help: "Run ids.") var ids: [Int64]
        func run() throws {
            try reportingErrors {
                let s = try location.open()
                for id in ids {
                    guard try s.delete(id: id) else { throw SmeltError("no run \(id) in the results store") }
                    print("deleted run \(id)")
                }
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "All matching runs as CSV (one row each) or JSON (everything).")
        @OptionGroup var location: Location
        @OptionGroup var filters: Filters
        @Flag(help: "CSV (default).") var csv = false
        @Flag(help: "JSON.") var json = false
        @Option(name: .shortAndLong, help: "Write here instead of stdout.") var output: String?
        func run() throws {
            try reportingErrors {
                guard !(csv && json) else { throw SmeltError("give --csv or --json, not both") }
                let runs = try location.open().runs(try filters.filter())
                let text = json ? try ResultsText.json(runs) + "\n" : ResultsText.csv(runs)
                if let o = output {
                    let out = try OutputFile(url: URL(fileURLWithPath: o))
                    try out.write(Array(text.utf8))
                    try out.commit()
                } else {
                    print(text, terminator: "")
                }
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import llama-perplexity output (a perplexity or --kl-divergence run) into the store.",
            discussion: "The log names neither model nor text: give them. Files that exist are identified by content.")
        @OptionGroup var location: Location
        @Argument(help: "The saved stdout+stderr of llama-perplexity.") var log: String
        @Option(name: [.short, .long], help: "The model llama-perplexity evaluated (path or name).") var model: String
        @Option(name: [.customShort("f"), .customLong("text")], help: "The evaluation text (path or name).") var text: String?
        @Option(help: "KL-divergence runs: the model that wrote the base file (path or name).") var base: String?
        @Flag(help: "Print the stored record as JSON.") var json = false
        func run() throws {
            try reportingErrors {
                let rec = try Recorder(storePath: location.store, noStore: false)
                let r = try rec.importLlamaLog(URL(fileURLWithPath: log), model: model, text: text, baseModel: base)
                if json { print(try ResultsText.json([r]).dropFirst().dropLast().trimmingCharacters(in: .whitespacesAndNewlines)) }
                else { print("imported run \(r.id ?? 0): \(ResultsText.line(r))") }
            }
        }
    }
}
