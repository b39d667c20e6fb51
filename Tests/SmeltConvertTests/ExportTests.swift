import Foundation
import XCTest
import SmeltConvert
import SmeltFormats
import SmeltTestSupport

/// GGUF → HF export: llama.cpp's transforms are undone, so an f32 export of
/// llama.cpp's f32 conversion gives back the original checkpoint's tensors.
final class ExportTests: XCTestCase {
    func testExportRecoversOriginalCheckpointTensors() throws {
        for model in ["tiny-llama", "tiny-qwen3", "tiny-gemma3"] {
            let gguf = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-f32.gguf")
            let dir = try Fixtures.tempDir(self).appendingPathComponent("export")
            let s = try Exporter.export(gguf: gguf, to: dir, dtype: .f32, maxShardBytes: 1_500_000, progress: false)
            XCTAssertGreaterThan(s.files.filter { $0.hasSuffix(".safetensors") }.count, 1, "sharded")
            XCTAssertTrue(s.files.contains("model.safetensors.index.json"))
            let exported = try SafetensorsCheckpoint(folder: dir)
            let original = try SafetensorsCheckpoint(folder: try Fixtures.sharedFile("models/tiny/\(model)"))
            for t in original.tensors {
                guard let e = exported.tensor(named: t.name) else {
                    // tied models: llama.cpp drops nothing but has no lm_head to give back
                    XCTAssertEqual(t.name, "lm_head.weight", "\(model): \(t.name) missing"); continue
                }
                XCTAssertEqual(e.shape, t.shape, "\(model) \(t.name)")
                let a = e.floats(), b = t.floats()
                if t.name.hasSuffix("norm.weight") && model == "tiny-gemma3" {
                    // Gemma stores w - 1; (w + 1) - 1 in float32 loses the low bits of small w
                    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1.2e-7, "\(model) \(t.name)") }
                } else {
                    XCTAssertEqual(a, b, "\(model) \(t.name)")
                }
            }
            let cfg = try JSONValue.parse(contentsOf: dir.appendingPathComponent("config.json"))
            let orig = try JSONValue.parse(contentsOf: try Fixtures.sharedFile("models/tiny/\(model)/config.json"))
            for k in ["architectures", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                      "num_key_value_heads", "max_position_embeddings", "head_dim", "vocab_size"] {
                XCTAssertEqual(cfg[k], orig[k], "\(model) config \(k)")
            }
            XCTAssertEqual(cfg["rope_theta"]?.doubleValue, orig["rope_theta"]?.doubleValue, model)
            // transformers ties by default for Gemma (the config omits the key)
            XCTAssertEqual(cfg["tie_word_embeddings"]?.boolValue, orig["tie_word_embeddings"]?.boolValue ?? (model == "tiny-gemma3"), model)
        }
    }

    func testExportRefusesNonEmptyFolderAndLeavesNothingOnError() throws {
        let gguf = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-Q4_K_M.gguf")
        let base = try Fixtures.tempDir(self)
        let busy = base.appendingPathComponent("busy")
        try FileManager.default.createDirectory(at: busy, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: busy.appendingPathComponent("x").path, contents: Data())
        XCTAssertThrowsError(try Exporter.export(gguf: gguf, to: busy, progress: false))
        // a quantized input dequantizes (bf16 output)
        let ok = base.appendingPathComponent("ok")
        let s = try Exporter.export(gguf: gguf, to: ok, progress: false)
        XCTAssertEqual(s.files.first, "model.safetensors")
        let ck = try SafetensorsCheckpoint(folder: ok)
        XCTAssertEqual(ck.tensors.first?.dtype, .BF16)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: base.path)), ["busy", "ok"])
    }
}

/// `smelt convert` of `smelt export` of an F32/F16/BF16/Q8_0 GGUF gives back the same tensors.
final class ExportConvertRoundTripTests: XCTestCase {
    func testConvertOfExportGivesBackTheSameTensors() throws {
        for (model, pre) in [("tiny-llama", nil), ("tiny-qwen3", "qwen2"), ("tiny-gemma3", nil)] as [(String, String?)] {
            for (type, dtype) in [(OutType.f32, Exporter.DType.f32), (.f16, .f16), (.bf16, .bf16), (.q8_0, .f32)] {
                let golden = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-\(type.rawValue).gguf")
                let tmp = try Fixtures.tempDir(self)
                let dir = tmp.appendingPathComponent(model)
                _ = try Exporter.export(gguf: golden, to: dir, dtype: dtype, progress: false)
                let out = tmp.appendingPathComponent("back.gguf")
                _ = try Converter.write(ConversionPlan(folder: dir, outType: type, pre: pre), to: out, threads: 2, progress: false)
                let a = try GGUFFile(url: out), b = try GGUFFile(url: golden)
                XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name), "\(model) \(type)")
                for (x, y) in zip(a.tensors, b.tensors) {
                    XCTAssertEqual(x.type, y.type, "\(model) \(type) \(x.name)")
                    XCTAssertEqual(x.shape, y.shape, "\(model) \(type) \(x.name)")
                    XCTAssertTrue(a.data(for: x).elementsEqual(b.data(for: y)), "\(model) \(type) \(x.name)")
                }
                for k in b.metadata.keys where k.hasPrefix("tokenizer.") || k.hasPrefix("general.license") || k == "general.name" {
                    XCTAssertEqual(a.metadata[k], b.metadata[k], "\(model) \(type) \(k)")
                }
            }
        }
    }
}

/// The model card written by export carries the license and lineage back through convert.
final class ExportModelCardTests: XCTestCase {
    func testDemoModelCardRoundTrip() throws {
        let demo = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let dir = try Fixtures.tempDir(self).appendingPathComponent("smol")
        _ = try Exporter.export(gguf: demo, to: dir, progress: false)
        let plan = try ConversionPlan(folder: dir, outType: .bf16)
        let g = try GGUFFile(url: demo)
        for k in ["general.name", "general.license", "general.languages"] {
            XCTAssertEqual(plan.metadata[k], g.metadata[k], k)
        }
    }
}
