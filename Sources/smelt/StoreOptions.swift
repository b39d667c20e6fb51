import ArgumentParser
import Foundation
import SmeltReport

/// `--store PATH` / `--no-store`, shared by every command that records runs.
struct StoreOptions: ParsableArguments {
    @Option(help: "Results store (default: $SMELT_STORE, else $XDG_DATA_HOME/smelt/results.sqlite, else ~/.local/share/smelt/results.sqlite).")
    var store: String?
    @Flag(help: "Do not record this run in the results store.")
    var noStore = false
    @Option(help: "Append the run's record to this JSON-lines file instead of the store (sweep jobs; `smelt sweep collect` reads them).")
    var recordTo: String?

    /// Opens the store (before any work: a bad store fails the run at once).
    func recorder() throws -> Recorder { try Recorder(storePath: store, noStore: noStore, recordTo: recordTo) }
}
