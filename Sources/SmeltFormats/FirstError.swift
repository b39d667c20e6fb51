import Foundation

/// The first error reported by any of several threads (worker pools, write queues).
public final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error? = nil
    public init() {}
    /// The first error set, if any.
    public var value: Error? { lock.lock(); defer { lock.unlock() }; return error }
    /// Keeps `e` unless an error was set before.
    public func set(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}
