import ArgumentParser
import Foundation
import SmeltFormats

/// Exit statuses, the same in every command (docs/COMMANDS.md, "Exit status").
enum ExitStatus {
    /// Bad input (a file missing, unreadable, corrupt or unsupported) or a failed operation.
    static let failure: Int32 = 1
    /// The command line is wrong: unknown command, option or name, missing or conflicting arguments.
    static let usage: Int32 = 2
    /// Refused by policy: `license --use` not allowed.
    static let refused: Int32 = 3
    /// Undetermined: `license --use` cannot conclude.
    static let undetermined: Int32 = 4
}

/// A usage error raised by a command's own checks: `error: <message>`, exit status 2.
struct UsageError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Refused by policy (`--license-policy refuse`): `error: <message>`, exit status 3.
struct PolicyRefusal: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Runs a command body; a `SmeltError` becomes one line `error: …` on stderr and
/// exit status 1, a `UsageError` the same line and exit status 2.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as SmeltError {
        ProgressBar.clearScreen()
        FileHandle.standardError.write(Data("error: \(oneLine(e.message))\n".utf8))
        throw ExitCode(ExitStatus.failure)
    } catch let e as UsageError {
        ProgressBar.clearScreen()
        FileHandle.standardError.write(Data("error: \(oneLine(e.message))\n".utf8))
        throw ExitCode(ExitStatus.usage)
    } catch let e as PolicyRefusal {
        ProgressBar.clearScreen()
        FileHandle.standardError.write(Data("error: \(oneLine(e.message))\n".utf8))
        throw ExitCode(ExitStatus.refused)
    }
}

/// `text` on one line (newlines folded into spaces).
func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
}
