import Foundation
import XCTest
import SmeltConvert
import SmeltFormats
import SmeltModel
import SmeltTestSupport

/// transformers' config-class defaults (`ConfigDefaults`), as llama.cpp's converter sees
/// config.json through AutoConfig: a missing key takes its class default.
final class ConfigDefaultsTests: XCTestCase {
    func config(_ pairs: [(String, JSONValue)]) throws -> HFConfig { try HFConfig(json: .object(pairs)) }

    /// Per class: derived head_dim (llama, mistral), constant head_dim (qwen3, gemma), KV heads.
    func testDefaultsPerModelType() throws {
        let base: [(String, JSONValue)] = [("hidden_size", .int(576)), ("num_attention_heads", .int(9))]
        let llama = try config([("architectures", .array([.string("LlamaForCausalLM")])), ("model_type", .string("llama"))] + base)
        XCTAssertEqual(llama.int("head_dim"), 64)
        XCTAssertEqual(llama.int("num_key_value_heads"), 9)
        XCTAssertEqual(llama.double("rope_theta"), 10000)
        XCTAssertEqual(llama.int("max_position_embeddings"), 2048)
        let mistral = try config([("architectures", .array([.string("MistralForCausalLM")])), ("model_type", .string("mistral"))] + base)
        XCTAssertEqual(mistral.int("head_dim"), 64)
        XCTAssertEqual(mistral.int("num_key_value_heads"), 8)
        let qwen3 = try config([("architectures", .array([.string("Qwen3ForCausalLM")])), ("model_type", .string("qwen3"))] + base)
        XCTAssertEqual(qwen3.int("head_dim"), 128, "Qwen3Config's head_dim is a constant")
        let qwen2 = try config([("architectures", .array([.string("Qwen2ForCausalLM")])), ("model_type", .string("qwen2"))] + base)
        XCTAssertNil(qwen2.int("head_dim"), "Qwen2Config has no head_dim")
        let phi3 = try config([("architectures", .array([.string("Phi3ForCausalLM")])), ("model_type", .string("phi3"))] + base)
        XCTAssertEqual(phi3.int("num_key_value_heads"), 9)
        XCTAssertEqual(phi3.double("rms_norm_eps"), 1e-5)
        let gemma2 = try config([("architectures", .array([.string("Gemma2ForCausalLM")])), ("model_type", .string("gemma2"))] + base)
        XCTAssertEqual(gemma2.int("head_dim"), 256)
        XCTAssertEqual(gemma2.double("attn_logit_softcapping"), 50)
        // an explicit value (or null: "use the default") wins / is filled; no model_type: raw JSON, as llama.cpp's fallback
        let explicit = try config([("architectures", .array([.string("LlamaForCausalLM")])), ("model_type", .string("llama")),
                                   ("head_dim", .int(32)), ("num_key_value_heads", .null)] + base)
        XCTAssertEqual(explicit.int("head_dim"), 32)
        XCTAssertEqual(explicit.int("num_key_value_heads"), 9)
        let raw = try config([("architectures", .array([.string("LlamaForCausalLM")]))] + base)
        XCTAssertNil(raw.int("head_dim"))
    }

    /// make-hf.py's SmolLM2 config.json has no head_dim: llama.cpp writes key_length and
    /// value_length = 64 (hidden 576 / 9 heads) after the norm epsilon, before general.file_type.
    func testSmolLM2KeyLength() throws {
        let script = try Fixtures.sharedFile("models/smollm2-135m-instruct/make-hf.py")
        let demo = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let hf = try SmolLM2Checkpoint.build(script: script, gguf: demo).appendingPathComponent("SmolLM2-135M-Instruct-hf")
        let raw = try JSONValue.parse(contentsOf: hf.appendingPathComponent("config.json"))
        XCTAssertNil(raw["head_dim"], "the fixture's config.json has no head_dim")
        let plan = try ConversionPlan(folder: hf, outType: .bf16)
        XCTAssertEqual(plan.metadata["llama.attention.key_length"], .uint32(64))
        XCTAssertEqual(plan.metadata["llama.attention.value_length"], .uint32(64))
        let keys = plan.metadata.keys
        let i = try XCTUnwrap(keys.firstIndex(of: "llama.attention.key_length"))
        XCTAssertEqual(Array(keys[(i - 1)...(i + 2)]), ["llama.attention.layer_norm_rms_epsilon", "llama.attention.key_length",
                                                         "llama.attention.value_length", "general.file_type"])
    }

    /// Each tiny fixture with every config.json key that equals its class default removed
    /// converts to llama.cpp's file byte for byte (llama.cpp saw the full config).
    func testStrippedConfigsConvertAsLlamaCpp() throws {
        for (model, pre, mustStrip) in [("tiny-llama", nil, "head_dim"), ("tiny-qwen3", "qwen2", "rms_norm_eps"),
                                        ("tiny-gemma3", nil, "rope_local_base_freq")] as [(String, String?, String)] {
            let src = try Fixtures.sharedFile("models/tiny/\(model)")
            let golden = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-f32.gguf")
            let dir = try Fixtures.tempDir(self).appendingPathComponent(model)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for f in try FileManager.default.contentsOfDirectory(atPath: src.path) where f != "config.json" {
                try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(f), withDestinationURL: src.appendingPathComponent(f))
            }
            let full = try XCTUnwrap(JSONValue.parse(contentsOf: src.appendingPathComponent("config.json")).objectValue)
            // drop, one at a time, each key whose value the defaults give back
            var kept = full, removed: [String] = []
            for (k, v) in full where k != "model_type" && k != "architectures" {
                let without = kept.filter { $0.0 != k }
                if let back = ConfigDefaults.apply(to: without).first(where: { $0.0 == k })?.1, back == v || back.doubleValue == v.doubleValue && v.doubleValue != nil {
                    kept = without; removed.append(k)
                }
            }
            XCTAssertTrue(removed.contains(mustStrip), "\(model): removed \(removed)")
            try Data(JSONValue.object(kept).serialized(pretty: true).utf8).write(to: dir.appendingPathComponent("config.json"))
            let plan = try ConversionPlan(folder: dir, outType: .f32, pre: pre, name: nil)
            let out = dir.deletingLastPathComponent().appendingPathComponent("\(model).gguf")
            _ = try Converter.write(plan, to: out, threads: 2, progress: false)
            let a = try GGUFFile(url: out), b = try GGUFFile(url: golden)
            XCTAssertEqual(a.metadata.keys, b.metadata.keys, model)
            for (k, v) in b.metadata where a.metadata[k] != v && k != "general.name" {
                XCTFail("\(model) (removed \(removed)): \(k) = \(String(describing: a.metadata[k]).prefix(60)) vs \(String(describing: v).prefix(60))")
            }
            XCTAssertEqual(a.tensors.count, b.tensors.count)
            for (x, y) in zip(a.tensors, b.tensors) { XCTAssertTrue(a.data(for: x).elementsEqual(b.data(for: y)), "\(model) \(x.name)") }
        }
    }
}
