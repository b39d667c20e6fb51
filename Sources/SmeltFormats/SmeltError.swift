import Foundation

/// An error with one line of text for the user: what went wrong and where.
/// The command line prints `error: <message>` and exits non-zero.
public struct SmeltError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// This error with `path: ` in front when the message does not name the file already.
    public func naming(_ path: String) -> SmeltError {
        let name = (path as NSString).lastPathComponent
        return message.contains(name) ? self : SmeltError("\(path): \(message)")
    }
}

