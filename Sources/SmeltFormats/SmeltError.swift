/// An error with one line of text for the user: what went wrong and where.
/// The command line prints `error: <message>` and exits non-zero.
public struct SmeltError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

