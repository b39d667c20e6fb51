import Foundation
import SmeltEval
import SmeltFormats
import SmeltTestSupport
import XCTest

/// `smelt perplexity` against llama-perplexity's estimates (ppl.json, -c 128).
final class PerplexityTests: XCTestCase {
    static func golden(_ model: String) throws -> JSONValue {
        try JSONValue.parse(contentsOf: try Fixtures.sharedFile("models/tiny/\(model).golden/ppl.json"))
    }

    func run(_ model: String, _ key: String, line: UInt = #line) throws {
        let g = try Self.golden(model)
        let dir = try Fixtures.sharedFile("models/tiny/\(model).golden")
        let file = g[key]!["gguf"]!.stringValue!
        let m = try InferenceModel(url: dir.appendingPathComponent(file), threads: 2)
        let text = try EvaluationText.read(dir.appendingPathComponent("eval-sample.txt"))
        let tokens = try m.makeTokenizer().encode(text, addSpecial: true, parseSpecial: false)
        let r = try Evaluator.perplexity(model: m, tokens: tokens, options: EvaluationOptions(contextLength: 128))
        let want = g[key]!["ppl"]!.doubleValue!
        let wantUnc = g[key]!["stderr"]!.doubleValue!
        XCTAssertEqual(r.chunks, g[key]!["n_chunks"]!.intValue!, line: line)
        let rel = abs(r.perplexity - want) / want
        XCTAssertLessThan(rel, 1e-3, "\(file): PPL \(r.perplexity) vs llama.cpp \(want)", line: line)
        XCTAssertEqual(r.uncertainty, wantUnc, accuracy: wantUnc * 0.01, line: line)
        XCTAssertEqual(r.runningEstimates.count, r.chunks, line: line)
        print(String(format: "%@: PPL %.4f ± %.5f (llama.cpp %.4f ± %.5f, rel diff %.2e)", file, r.perplexity, r.uncertainty, want, wantUnc, rel))
    }

    func testLlama() throws { try run("tiny-llama", "f32"); try run("tiny-llama", "Q4_K_M") }
    func testQwen3() throws { try run("tiny-qwen3", "f32"); try run("tiny-qwen3", "Q4_K_M") }
    func testGemma3() throws { try run("tiny-gemma3", "f32"); try run("tiny-gemma3", "Q4_K_M") }
}
