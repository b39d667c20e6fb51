import Foundation
import XCTest

/// Builds (once per machine, cached under .cache/) the real SmolLM2-135M HF
/// checkpoints with ../shared/models/smollm2-135m-instruct/make-hf.py.
public enum SmolLM2Checkpoint {
    /// The folder holding `SmolLM2-135M-Instruct-hf` (bf16) and `-hf-f32` (two shards).
    public static func build(script: URL, gguf: URL) throws -> URL {
        let out = Fixtures.repoRoot.appendingPathComponent(".cache/smollm2-hf")
        let done = out.appendingPathComponent(".done")
        if FileManager.default.fileExists(atPath: done.path) { return out }
        guard let py = Fixtures.venvPython else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("no .venv (make venv)") }
            throw XCTSkip("no .venv: run make venv")
        }
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = py
        p.arguments = [script.path, "--gguf", gguf.path, "--out", out.path]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw NSError(domain: "make-hf.py failed", code: Int(p.terminationStatus)) }
        FileManager.default.createFile(atPath: done.path, contents: nil)
        return out
    }
}
