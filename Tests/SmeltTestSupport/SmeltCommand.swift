import Foundation
import XCTest

/// Runs the built `smelt` binary (`.build/debug/smelt` next to the test bundle) the way a user
/// does, with a time limit.
public enum SmeltCommand {
    /// The result of one run.
    public struct Run {
        public var status: Int32
        /// True when the process ended by a signal (a crash) or was killed at the time limit.
        public var signalled: Bool
        public var timedOut: Bool
        public var stdout: String
        public var stderr: String
        public var seconds: Double
    }

    /// The executable, or a skip (a failure on CI) when it is not built.
    public static func binary() throws -> URL { try SmeltBinary.executable() }

    /// Runs `smelt args…` in `directory`; kills it after `timeout` seconds. `signal` (SIGINT,
    /// SIGTERM) is sent after `signalAfter` seconds, once `signalWhen` (polled) holds.
    public static func run(_ args: [String], in directory: URL? = nil, timeout: Double = 60,
                           signal: Int32? = nil, signalAfter: Double = 0, signalWhen: (() -> Bool)? = nil) throws -> Run {
        let p = Process()
        p.executableURL = try binary()
        p.arguments = args
        // Nothing is recorded in the user's results store by these runs.
        var env = ProcessInfo.processInfo.environment
        if env["SMELT_STORE"] == nil { env["SMELT_NO_STORE"] = "1" }
        p.environment = env
        if let directory { p.currentDirectoryURL = directory }
        let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("smelt-run-\(UUID().uuidString).out")
        let errURL = outURL.appendingPathExtension("err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
        p.standardOutput = try FileHandle(forWritingTo: outURL)
        p.standardError = try FileHandle(forWritingTo: errURL)
        let start = Date()
        try p.run()
        var timedOut = false, sent = false
        while p.isRunning {
            let t = Date().timeIntervalSince(start)
            if let s = signal, !sent, t >= signalAfter, signalWhen?() ?? true { kill(p.processIdentifier, s); sent = true }
            if t > timeout { timedOut = true; kill(p.processIdentifier, SIGKILL); break }
            usleep(20_000)
        }
        p.waitUntilExit()
        let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return Run(status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal, timedOut: timedOut,
                   stdout: out, stderr: err, seconds: Date().timeIntervalSince(start))
    }

    /// Every path under `folder` (hidden files included), sorted.
    public static func listing(_ folder: URL) -> [String] {
        (FileManager.default.subpaths(atPath: folder.path) ?? []).sorted()
    }
}
