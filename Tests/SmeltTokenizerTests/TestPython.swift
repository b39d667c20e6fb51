import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Runs the project venv's Python to get reference ids from Hugging Face `tokenizers`.
enum TestPython {
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The venv's python, or XCTSkip (a failure on CI, where the venv must exist).
    static func python() throws -> URL {
        if let p = Fixtures.venvPython { return p }
        if isCI { XCTFail("the project venv (.venv/bin/python) is missing on CI") }
        throw XCTSkip(".venv/bin/python is missing (the Makefile creates it)")
    }

    @discardableResult
    static func run(_ exe: URL, _ args: [String], stdin: Data? = nil) throws -> Data {
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inPipe
        try p.run()
        // write stdin on another thread so a large output cannot deadlock us
        let writer = Thread {
            if let s = stdin { inPipe.fileHandleForWriting.write(s) }
            try? inPipe.fileHandleForWriting.close()
        }
        writer.start()
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let errThread = Thread { errBox.data = err.fileHandleForReading.readDataToEndOfFile() }
        errThread.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errThread.isFinished { usleep(1000) }
        guard p.terminationStatus == 0 else {
            throw SmeltError("\(exe.lastPathComponent) failed: \(String(decoding: errBox.data.suffix(2000), as: UTF8.self))")
        }
        return o
    }

    /// `Tokenizer.from_file(path).encode(text).ids` for each text (add_special_tokens as given).
    static func hfEncode(_ tokenizerJSON: URL, _ texts: [String], addSpecial: Bool = true) throws -> [[Int32]] {
        let code = """
        import sys, json
        from tokenizers import Tokenizer
        t = Tokenizer.from_file(sys.argv[1])
        texts = json.loads(sys.stdin.buffer.read().decode('utf-8'))
        print(json.dumps([t.encode(x, add_special_tokens=(sys.argv[2] == '1')).ids for x in texts]))
        """
        let input = JSONValue.array(texts.map { .string($0) }).serialized()
        let out = try run(try python(), ["-c", code, tokenizerJSON.path, addSpecial ? "1" : "0"], stdin: Data(input.utf8))
        return (try JSONValue.parse(out).arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap { $0.intValue }.map { Int32($0) } }
    }

    static let lock = NSLock()

    /// The tokenizer-related files of SmolLM2-135M-Instruct rebuilt as an HF checkpoint by the
    /// shared make-hf.py (about 20 s, once per machine; only tokenizer/config files are kept in
    /// .cache/smollm2/SmolLM2-135M-Instruct-hf, moved into place atomically).
    static func smolDir() throws -> URL {
        let gguf = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let script = try Fixtures.sharedFile("models/smollm2-135m-instruct/make-hf.py")
        let py = try python()
        lock.lock(); defer { lock.unlock() }
        let fm = FileManager.default
        let cache = Fixtures.repoRoot.appendingPathComponent(".cache/smollm2")
        let dir = cache.appendingPathComponent("SmolLM2-135M-Instruct-hf")
        if fm.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path) { return dir }
        let tmp = cache.appendingPathComponent("build-\(getpid())-\(UUID().uuidString)")
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: tmp) }
        try run(py, [script.path, "--gguf", gguf.path, "--out", tmp.path])
        let built = tmp.appendingPathComponent("SmolLM2-135M-Instruct-hf")
        let keep = tmp.appendingPathComponent("keep")
        try fm.createDirectory(at: keep, withIntermediateDirectories: true)
        for f in try fm.contentsOfDirectory(atPath: built.path) where f.hasSuffix(".json") || f.hasSuffix(".txt") {
            try fm.moveItem(at: built.appendingPathComponent(f), to: keep.appendingPathComponent(f))
        }
        do { try fm.moveItem(at: keep, to: dir) } catch {
            if !fm.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path) { throw error }
        }
        return dir
    }
}
