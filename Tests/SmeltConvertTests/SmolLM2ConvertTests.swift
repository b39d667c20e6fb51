import Foundation
import XCTest
import SmeltConvert
import SmeltFormats
import SmeltQuant
import SmeltTestSupport

/// The real 135M model: make-hf.py rebuilt an HF checkpoint from the demo GGUF
/// (dequantized, q/k permutation undone); converting it back must give the
/// demo GGUF's values (rounded to bf16) in llama.cpp's layout, and its tokenizer.
final class SmolLM2ConvertTests: XCTestCase {
    func testRoundTripThroughMakeHF() throws {
        let script = try Fixtures.sharedFile("models/smollm2-135m-instruct/make-hf.py")
        let demoURL = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let hf = try SmolLM2Checkpoint.build(script: script, gguf: demoURL).appendingPathComponent("SmolLM2-135M-Instruct-hf")
        let plan = try ConversionPlan(folder: hf, outType: .bf16)
        XCTAssertEqual(plan.metadata["tokenizer.ggml.pre"], .string("smollm"))
        let out = try Fixtures.tempDir(self).appendingPathComponent("smol-bf16.gguf")
        _ = try Converter.write(plan, to: out, threads: 2, progress: false)
        let ours = try GGUFFile(url: out), demo = try GGUFFile(url: demoURL)

        XCTAssertEqual(ours.tensors.count, 272)
        for key in ["tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
                    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.chat_template",
                    "llama.block_count", "llama.context_length", "llama.embedding_length", "llama.feed_forward_length",
                    "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.freq_base",
                    "llama.attention.layer_norm_rms_epsilon", "llama.vocab_size", "llama.rope.dimension_count"] {
            XCTAssertEqual(ours.metadata[key], demo.metadata[key], key)
        }
        for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.7.attn_v.weight",
                     "blk.29.ffn_down.weight", "blk.3.attn_norm.weight", "output_norm.weight"] {
            let d = try XCTUnwrap(demo.tensor(named: name)), o = try XCTUnwrap(ours.tensor(named: name))
            XCTAssertEqual(o.shape, d.shape, name)
            var want = [Float](repeating: 0, count: d.elementCount)
            let src = demo.data(for: d)
            want.withUnsafeMutableBufferPointer { w in
                if d.type == .f32 { memcpy(w.baseAddress!, src.baseAddress!, d.elementCount * 4) } else {
                    let rb = d.type.rowBytes(d.rowLength)!
                    for r in 0..<d.rowCount {
                        QuantRegistry.kernel(for: d.type)!.dequantizeRow(src.baseAddress! + r * rb, w.baseAddress! + r * d.rowLength, count: d.rowLength)
                    }
                }
            }
            let got = ours.data(for: o)
            if o.type == .f32 {
                XCTAssertEqual(Array(got.bindMemory(to: Float.self)), want, name)
            } else {
                XCTAssertEqual(o.type, .bf16)
                let bits = Array(got.bindMemory(to: UInt16.self))
                XCTAssertEqual(bits, want.map { FloatFormats.floatToBF16($0) }, name)
            }
        }
    }
}
