import Foundation
import XCTest

/// Where the test data shared by the project's developers and CI lives.
public enum Fixtures {
    /// The repository root (the folder holding Package.swift).
    public static let repoRoot: URL = {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        return u
    }()

    /// `../shared` next to the repository (override with SMELT_SHARED).
    public static let shared: URL = {
        if let p = ProcessInfo.processInfo.environment["SMELT_SHARED"] { return URL(fileURLWithPath: p) }
        return repoRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    /// A path inside `../shared`. On CI (CI=true) a missing file fails the test;
    /// elsewhere the test is skipped with a message saying what is missing.
    public static func sharedFile(_ relative: String, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let u = shared.appendingPathComponent(relative)
        if FileManager.default.fileExists(atPath: u.path) { return u }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("missing shared fixture \(u.path)", file: file, line: line)
            throw XCTSkip("missing \(u.path)")
        }
        throw XCTSkip("shared fixture \(u.path) is not here")
    }

    /// A fresh temporary folder, removed by the caller's `addTeardownBlock`.
    public static func tempDir(_ test: XCTestCase) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("smelt-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: u) }
        return u
    }

    /// The Python interpreter of the test venv (`.venv/bin/python`), if the Makefile made one.
    public static var venvPython: URL? {
        let u = repoRoot.appendingPathComponent(".venv/bin/python")
        return FileManager.default.isExecutableFile(atPath: u.path) ? u : nil
    }

    /// Reads a little-endian float32 file.
    public static func readFloats(_ url: URL) throws -> [Float] {
        let d = try Data(contentsOf: url)
        return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
