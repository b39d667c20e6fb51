import Foundation
import XCTest
@testable import SmeltConvert
import SmeltFormats
import SmeltModel
@testable import SmeltTokenizer
import SmeltTestSupport

/// Mixture-of-Experts conversions (tiny-mixtral → llama with experts, tiny-qwen3moe → qwen3moe)
/// against llama.cpp's convert_hf_to_gguf.py: the q8_0 files byte for byte, the f32/f16/bf16
/// files against their fingerprints (`M-TYPE.fp.json`: metadata, tensor order, types, shapes
/// and the sha256 of every tensor's bytes).
final class ConvertMoETests: XCTestCase {
    static let models: [(String, String?)] = [("tiny-mixtral", nil), ("tiny-qwen3moe", "qwen2")]

    func convert(_ model: String, _ type: OutType, pre: String?) throws -> URL {
        let plan = try ConversionPlan(folder: try Fixtures.sharedFile("models/tiny/\(model)"), outType: type, pre: pre)
        let out = try Fixtures.tempDir(self).appendingPathComponent("\(model)-\(type).gguf")
        _ = try Converter.write(plan, to: out, threads: 2, progress: false)
        return out
    }

    func testQ8_0IsByteIdentical() throws {
        for (model, pre) in Self.models {
            let out = try convert(model, .q8_0, pre: pre)
            let golden = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-q8_0.gguf")
            let a = try GGUFFile(url: out), b = try GGUFFile(url: golden)
            XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name), model)
            for (k, v) in b.metadata where a.metadata[k] != v { XCTFail("\(model): \(k) = \(String(describing: a.metadata[k]).prefix(80)) vs \(String(describing: v).prefix(80))") }
            XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: golden), "\(model) q8_0: file differs")
        }
    }

    /// gguf_fingerprint.py's value of a scalar key, for comparison with the JSON.
    func scalar(_ v: GGUFValue) -> JSONValue? {
        switch v {
        case let .string(s): return .string(s)
        case let .bool(b): return .bool(b)
        case let .uint32(x): return .int(Int64(x))
        case let .int32(x): return .int(Int64(x))
        case let .uint64(x): return .int(Int64(x))
        case let .float32(x): return .double(Double(x))
        default: return nil
        }
    }

    func testFloatOutTypesMatchFingerprints() throws {
        for (model, pre) in Self.models {
            for type in [OutType.f32, .f16, .bf16] {
                let out = try convert(model, type, pre: pre)
                let fp = try JSONValue.parse(contentsOf: try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-\(type.rawValue).fp.json"))
                let g = try GGUFFile(url: out)
                let kv = try XCTUnwrap(fp["kv"]?.objectValue)
                XCTAssertEqual(g.metadata.keys, kv.map(\.0), "\(model) \(type): keys")
                for (k, want) in kv {
                    guard let v = g.metadata[k] else { continue }
                    if let arr = v.arrayValue {
                        XCTAssertEqual(arr.count, want["len"]?.intValue, "\(model) \(type): \(k) length")
                    } else if let s = scalar(v) {
                        if case let .double(d) = s { XCTAssertEqual(d, want.doubleValue ?? .nan, "\(model) \(type): \(k)") }
                        else { XCTAssertEqual(s.serialized(), want.serialized(), "\(model) \(type): \(k)") }
                    }
                }
                XCTAssertEqual(g.tensors.map(\.name), fp["tensor_order"]?.arrayValue?.compactMap(\.stringValue), "\(model) \(type): order")
                for t in g.tensors {
                    let want = try XCTUnwrap(fp["tensors"]?[t.name], t.name)
                    XCTAssertEqual(t.type.name.uppercased(), want["type"]?.stringValue, "\(model) \(type) \(t.name)")
                    XCTAssertEqual(t.shape, want["shape"]?.arrayValue?.compactMap(\.intValue), "\(model) \(type) \(t.name)")
                    XCTAssertEqual(SHA256.hex(Array(g.data(for: t))), want["sha256"]?.stringValue, "\(model) \(type) \(t.name): bytes differ")
                }
            }
        }
    }

    func testExpertNamesMapThroughTheTable() throws {
        let q = try Architecture.find(hfClass: "Qwen3MoeForCausalLM")
        let m = try XCTUnwrap(q.mapExpert("model.layers.3.mlp.experts.17.down_proj.weight"))
        XCTAssertEqual(m.name, "blk.3.ffn_down_exps.weight"); XCTAssertEqual(m.expert, 17); XCTAssertEqual(m.block, 3)
        XCTAssertNil(q.map("model.layers.3.mlp.experts.17.down_proj.weight"), "per-expert tensors are not plain tensors")
        XCTAssertEqual(q.map("model.layers.0.mlp.gate.weight")?.name, "blk.0.ffn_gate_inp.weight")
        let q2 = try Architecture.find(hfClass: "Qwen2MoeForCausalLM")
        XCTAssertEqual(q2.map("model.layers.1.mlp.shared_expert_gate.weight")?.name, "blk.1.ffn_gate_inp_shexp.weight")
        XCTAssertEqual(q2.map("model.layers.1.mlp.shared_expert.down_proj.weight")?.name, "blk.1.ffn_down_shexp.weight")
        XCTAssertEqual(q2.expertRules.map(\.gguf), ["blk.{bid}.ffn_down_exps", "blk.{bid}.ffn_gate_exps", "blk.{bid}.ffn_up_exps"])
        let mx = try Architecture.find(hfClass: "MixtralForCausalLM")
        XCTAssertEqual(mx.name, "llama")
        XCTAssertEqual(mx.expertRules.map(\.gguf), ["blk.{bid}.ffn_gate_exps", "blk.{bid}.ffn_down_exps", "blk.{bid}.ffn_up_exps"])
        // the router stays F32 whatever the outtype
        XCTAssertEqual(ConversionPlan.outputType(name: "blk.0.ffn_gate_inp.weight", nDims: 2, rowLength: 256, outType: .q8_0), .f32)
        XCTAssertEqual(ConversionPlan.outputType(name: "blk.0.ffn_gate_inp_shexp.weight", nDims: 2, rowLength: 256, outType: .f16), .f32)
    }

    /// A checkpoint that lacks one expert tensor is an error naming the block.
    func testMissingExpertIsAnError() throws {
        let src = try Fixtures.sharedFile("models/tiny/tiny-qwen3moe")
        let dir = try Fixtures.tempDir(self).appendingPathComponent("broken-moe")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: src.path) where f != "model.safetensors" {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        let ck = try SafetensorsFile(url: src.appendingPathComponent("model.safetensors"))
        let kept = ck.tensors.filter { $0.name != "model.layers.1.mlp.experts.5.up_proj.weight" }
        let w = try SafetensorsWriter(url: dir.appendingPathComponent("model.safetensors"),
                                      tensors: kept.map { .init(name: $0.name, dtype: $0.dtype, shape: $0.shape) })
        for t in kept { try w.write(t.data) }
        try w.finish()
        XCTAssertThrowsError(try ConversionPlan(folder: dir, outType: .f16, pre: "qwen2")) { e in
            XCTAssertTrue("\(e)".contains("block 1"), "\(e)")
        }
    }

    /// `smelt export` of a MoE GGUF is refused with one line, and leaves nothing behind.
    func testExportRefusesMoE() throws {
        let out = try Fixtures.tempDir(self).appendingPathComponent("exported")
        XCTAssertThrowsError(try Exporter.export(gguf: try Fixtures.sharedFile("models/tiny/tiny-qwen3moe.golden/tiny-qwen3moe-q8_0.gguf"),
                                                 to: out, progress: false)) { e in
            XCTAssertTrue("\(e)".contains("Mixture-of-Experts") && "\(e)".contains("tiny-qwen3moe-q8_0.gguf"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }
}
