import Foundation
import XCTest

/// Runs the built `smelt` executable (next to the test bundle, or `.build/debug/smelt`).
public enum SmeltBinary {
    public struct Result { public var status: Int32; public var stdout: String; public var stderr: String }

    public static var url: URL {
        get throws {
            var candidates = [Bundle.main.bundleURL.appendingPathComponent("smelt")]
            for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") {
                candidates.append(b.bundleURL.deletingLastPathComponent().appendingPathComponent("smelt"))
            }
            candidates.append(Fixtures.repoRoot.appendingPathComponent(".build/debug/smelt"))
            if let u = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) { return u }
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("smelt binary not built") }
            throw XCTSkip("smelt binary not found (run `swift build --product smelt`)")
        }
    }

    /// Runs `smelt args…` with extra environment variables; waits for it.
    public static func run(_ args: [String], environment: [String: String] = [:], cwd: URL? = nil) throws -> Result {
        let p = Process()
        p.executableURL = try url
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        if let cwd { p.currentDirectoryURL = cwd }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let o = Box()
        let g = DispatchGroup()
        g.enter(); DispatchQueue.global().async { o.data = out.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        let e = err.fileHandleForReading.readDataToEndOfFile()
        g.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o.data, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}
