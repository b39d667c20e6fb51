import ArgumentParser
import Foundation
import SmeltFormats

/// Runs a command body; a `SmeltError` becomes one line `error: …` on stderr
/// and exit status 1 (argument errors keep ArgumentParser's usage output).
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as SmeltError {
        FileHandle.standardError.write(Data("error: \(e.message)\n".utf8))
        throw ExitCode(1)
    }
}
