import Foundation
import XCTest

/// Runs the built `smelt` executable (`.build/debug/smelt`, next to the test bundle)
/// for tests about the command line: exit status, stdout, stderr.
public enum SmeltBinary {
    /// What a run printed and returned.
    public struct Run {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    public typealias Result = Run

    /// The executable (as `executable()`).
    public static var url: URL { get throws { try executable() } }

    /// The executable, or XCTSkip (a failure on CI) when it is not built.
    public static func executable() throws -> URL {
        var candidates: [URL] = []
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") {
            candidates.append(b.bundleURL.deletingLastPathComponent().appendingPathComponent("smelt"))
        }
        candidates.append(Fixtures.repoRoot.appendingPathComponent(".build/debug/smelt"))
        if let u = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) { return u }
        if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("smelt binary not built") }
        throw XCTSkip("smelt binary not found (run `swift build --build-tests`)")
    }

    /// Runs `smelt ARGS` in `directory` (default: the current one) and waits for it.
    /// Runs record nothing in the user's results store unless the test names a store
    /// (`SMELT_STORE` in `environment`, or `--store` among the arguments).
    public static func run(_ args: [String], in directory: URL? = nil, environment: [String: String]? = nil) throws -> Run {
        var env = environment ?? [:]
        if env["SMELT_STORE"] == nil { env["SMELT_NO_STORE"] = "1" }
        return try run(executable: executable(), args, in: directory, environment: env)
    }

    /// Runs any executable (e.g. the venv's python) and collects its output.
    public static func run(executable: URL, _ args: [String], in directory: URL? = nil,
                           environment: [String: String]? = nil) throws -> Run {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        if let directory { p.currentDirectoryURL = directory }
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let t = Thread { errBox.data = err.fileHandleForReading.readDataToEndOfFile() }
        t.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !t.isFinished { usleep(1000) }
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                   stderr: String(decoding: errBox.data, as: UTF8.self))
    }
}
