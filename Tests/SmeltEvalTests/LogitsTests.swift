import Foundation
import SmeltEval
import SmeltFormats
import SmeltTestSupport
import XCTest

/// The engine's logits against transformers' float32 logits (golden files).
final class LogitsTests: XCTestCase {
    struct Golden {
        let tokens: [Int32]
        let logits: [Float]
        let vocab: Int
    }

    static func golden(_ model: String) throws -> Golden {
        let dir = try Fixtures.sharedFile("models/tiny/\(model).golden")
        let meta = try JSONValue.parse(contentsOf: dir.appendingPathComponent("logits.json"))
        let ids = meta["token_ids"]!.arrayValue!.map { Int32($0.intValue!) }
        let logits = try Fixtures.readFloats(dir.appendingPathComponent("logits.f32"))
        let vocab = meta["n_vocab"]!.intValue!
        XCTAssertEqual(logits.count, ids.count * vocab)
        return Golden(tokens: ids, logits: logits, vocab: vocab)
    }

    /// max |a − b| / max |b| over all logits.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        var maxDiff: Float = 0, maxRef: Float = 0
        for i in b.indices { maxDiff = max(maxDiff, abs(a[i] - b[i])); maxRef = max(maxRef, abs(b[i])) }
        return Double(maxDiff / maxRef)
    }

    func check(_ model: String, file: String, tolerance: Double, folder: String? = nil, line: UInt = #line) throws {
        let g = try Self.golden(model)
        let url = file.isEmpty ? try Fixtures.sharedFile("models/tiny/\(folder ?? model)")
                               : try Fixtures.sharedFile("models/tiny/\(model).golden/\(file)")
        let m = try InferenceModel(url: url, threads: 2)
        XCTAssertEqual(m.logitCount, g.vocab, line: line)
        let out = try m.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        XCTAssertEqual(out.count, g.logits.count, line: line)
        let err = Self.relativeError(out, g.logits)
        XCTAssertLessThan(err, tolerance, "\(model) \(file.isEmpty ? "HF" : file): relative error \(err)", line: line)
        // argmax agreement
        var same = 0
        for t in 0..<g.tokens.count {
            let a = out[(t * g.vocab)..<((t + 1) * g.vocab)], b = g.logits[(t * g.vocab)..<((t + 1) * g.vocab)]
            if a.firstIndex(of: a.max()!) == b.firstIndex(of: b.max()!) { same += 1 }
        }
        if tolerance <= 1e-3 { XCTAssertEqual(same, g.tokens.count, "\(model) \(file): argmax differs", line: line) }
        print("\(model) \(file.isEmpty ? "HF checkpoint" : file): max rel error \(err), argmax same \(same)/\(g.tokens.count)")
    }

    func testLlamaF32() throws { try check("tiny-llama", file: "tiny-llama-f32.gguf", tolerance: 1e-4) }
    func testQwen3F32() throws { try check("tiny-qwen3", file: "tiny-qwen3-f32.gguf", tolerance: 1e-4) }
    func testGemma3F32() throws { try check("tiny-gemma3", file: "tiny-gemma3-f32.gguf", tolerance: 1e-4) }
    func testLlamaHF() throws { try check("tiny-llama", file: "", tolerance: 1e-4) }
    func testQwen3HF() throws { try check("tiny-qwen3", file: "", tolerance: 1e-4) }
    func testGemma3HF() throws { try check("tiny-gemma3", file: "", tolerance: 1e-4) }
    func testShardedHF() throws { try check("tiny-llama", file: "", tolerance: 1e-4, folder: "tiny-llama-sharded") }

    /// Lossy files run and stay near the float32 logits (random tiny models
    /// amplify weight rounding, so only f16/bf16 are tight; the quantized
    /// types are checked against llama-perplexity in PerplexityTests).
    func testLossyFiles() throws {
        for m in ["tiny-llama", "tiny-qwen3", "tiny-gemma3"] {
            for (t, tol) in [("f16", 3e-3), ("bf16", 3e-2), ("q8_0", 0.1), ("Q6_K", 0.3), ("Q4_K_M", 1.0), ("Q4_0", 1.0)] {
                try check(m, file: "\(m)-\(t).gguf", tolerance: tol)
            }
        }
    }
}
