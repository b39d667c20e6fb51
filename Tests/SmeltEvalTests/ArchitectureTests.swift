import Foundation
@testable import SmeltEval
import SmeltFormats
import SmeltTestSupport
import XCTest

/// Architectures without their own fixture, checked through equivalent rewrites of tiny-llama
/// (same function, different tensor layout or graph path) against transformers' logits.
final class ArchitectureTests: XCTestCase {
    /// tiny-llama as a Phi-3 checkpoint: fused `qkv_proj` and `gate_up_proj`.
    func testPhi3FusedProjectionsMatchLlama() throws {
        let src = try Fixtures.sharedFile("models/tiny/tiny-llama")
        let dir = try Fixtures.tempDir(self).appendingPathComponent("tiny-phi3")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ck = try SafetensorsCheckpoint(folder: src)
        var tensors: [(String, [Int], [Float])] = []
        func t(_ n: String) -> SafetensorsTensor { ck.tensor(named: n)! }
        for n in ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"] { tensors.append((n, t(n).shape, t(n).floats())) }
        for il in 0..<2 {
            let p = "model.layers.\(il)."
            for n in ["input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.o_proj.weight", "mlp.down_proj.weight"] {
                tensors.append((p + n, t(p + n).shape, t(p + n).floats()))
            }
            let q = t(p + "self_attn.q_proj.weight"), k = t(p + "self_attn.k_proj.weight"), v = t(p + "self_attn.v_proj.weight")
            tensors.append((p + "self_attn.qkv_proj.weight", [q.shape[0] + k.shape[0] + v.shape[0], q.shape[1]], q.floats() + k.floats() + v.floats()))
            let g = t(p + "mlp.gate_proj.weight"), u = t(p + "mlp.up_proj.weight")
            tensors.append((p + "mlp.gate_up_proj.weight", [g.shape[0] * 2, g.shape[1]], g.floats() + u.floats()))
        }
        let w = try SafetensorsWriter(url: dir.appendingPathComponent("model.safetensors"),
                                      tensors: tensors.map { .init(name: $0.0, dtype: .F32, shape: $0.1) })
        for (_, _, v) in tensors { try v.withUnsafeBytes { try w.write($0) } }
        try w.finish()
        var cfg = try String(contentsOf: src.appendingPathComponent("config.json"), encoding: .utf8)
        cfg = cfg.replacingOccurrences(of: "LlamaForCausalLM", with: "Phi3ForCausalLM")
            .replacingOccurrences(of: "\"model_type\": \"llama\"", with: "\"model_type\": \"phi3\"")
        try cfg.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)

        let m = try InferenceModel(url: dir, threads: 2, llamaRounding: false)
        XCTAssertEqual(m.config.architecture, .phi3)
        let g = try LogitsTests.golden("tiny-llama")
        let out = try m.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        XCTAssertLessThan(LogitsTests.relativeError(out, g.logits), 1e-4)
    }

    /// A sliding window wider than the sequence changes nothing; a narrow one only
    /// changes positions beyond the window.
    func testSlidingWindow() throws {
        let url = try Fixtures.sharedFile("models/tiny/tiny-gemma3.golden/tiny-gemma3-f32.gguf")
        let m = try InferenceModel(url: url, threads: 2, llamaRounding: false)
        XCTAssertEqual(m.config.slidingWindow, 4096)
        XCTAssertEqual(m.config.slidingLayers, [true, true])
        let g = try LogitsTests.golden("tiny-gemma3")
        let full = try m.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        XCTAssertLessThan(LogitsTests.relativeError(full, g.logits), 1e-4)
        // window 8: identical for the first 8 positions, different afterwards
        var cfg = m.config
        cfg.slidingWindow = 8
        m.config = cfg
        let narrow = try m.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        let V = g.vocab
        XCTAssertEqual(Array(narrow[0..<(8 * V)]), Array(full[0..<(8 * V)]))
        XCTAssertNotEqual(Array(narrow[(20 * V)..<(21 * V)]), Array(full[(20 * V)..<(21 * V)]))
    }

    /// Several sequences in one batch give the same logits as one at a time.
    func testBatchedSequencesAreIndependent() throws {
        let m = try InferenceModel(url: try Fixtures.sharedFile("models/tiny/tiny-qwen3.golden/tiny-qwen3-Q4_K_M.gguf"), threads: 2)
        let g = try LogitsTests.golden("tiny-qwen3")
        let a = Array(g.tokens.prefix(24)), b = Array(g.tokens.suffix(24))
        let both = try m.forward(tokens: a + b, sequenceLength: 24, sequenceCount: 2, firstOutput: 12)
        let one = try m.forward(tokens: a, sequenceLength: 24, firstOutput: 12)
        let two = try m.forward(tokens: b, sequenceLength: 24, firstOutput: 12)
        XCTAssertLessThan(LogitsTests.relativeError(both, one + two), 1e-6)
    }

    /// An HF folder adds BOS exactly when the GGUF converted from it does (the converter's
    /// add_bos_token, else llama.cpp's default), so both evaluate the same tokens.
    func testHFFolderBOSMatchesConvertedGGUF() throws {
        for m in ["tiny-llama", "tiny-qwen3", "tiny-gemma3"] {
            let hf = try ModelConfig(huggingFaceFolder: try Fixtures.sharedFile("models/tiny/\(m)"))
            let gguf = try ModelConfig(gguf: GGUFFile(url: try Fixtures.sharedFile("models/tiny/\(m).golden/\(m)-f32.gguf")))
            XCTAssertEqual(hf.addBOS, gguf.addBOS, m)
        }
        // SmolLM2 as make-hf.py rebuilds it: tokenizer_config.json has no add_bos_token; llama.cpp's
        // converter writes add_bos_token = false for this vocabulary, so no BOS
        let script = try Fixtures.sharedFile("models/smollm2-135m-instruct/make-hf.py")
        let demoURL = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let smol = try SmolLM2Checkpoint.build(script: script, gguf: demoURL).appendingPathComponent("SmolLM2-135M-Instruct-hf")
        XCTAssertFalse(try ModelConfig(huggingFaceFolder: smol).addBOS)
    }
}
