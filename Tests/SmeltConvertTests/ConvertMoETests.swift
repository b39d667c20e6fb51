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

    /// `smelt export` of a MoE GGUF writes one HF tensor per expert, as the original checkpoint
    /// stores them: an f32 export of the f32 conversion gives back every original tensor exactly,
    /// and converting an export of llama.cpp's q8_0 file gives back that file's tensors and metadata.
    func testExportRoundTrip() throws {
        for (model, pre) in Self.models {
            let src = try Fixtures.sharedFile("models/tiny/\(model)")
            let tmp = try Fixtures.tempDir(self)
            let dir = tmp.appendingPathComponent("export")
            let s = try Exporter.export(gguf: try convert(model, .f32, pre: pre), to: dir, dtype: .f32, maxShardBytes: 6_000_000, progress: false)
            XCTAssertEqual(s.skipped, [], model)
            XCTAssertGreaterThan(s.files.filter { $0.hasSuffix(".safetensors") }.count, 1, "\(model): sharded")
            let exported = try SafetensorsCheckpoint(folder: dir), original = try SafetensorsCheckpoint(folder: src)
            XCTAssertEqual(Set(exported.tensors.map(\.name)), Set(original.tensors.map(\.name)), model)
            for t in original.tensors {
                guard let e = exported.tensor(named: t.name) else { continue }
                XCTAssertEqual(e.shape, t.shape, "\(model) \(t.name)")
                XCTAssertEqual(e.floats(), t.floats(), "\(model) \(t.name)")
            }
            let cfg = try JSONValue.parse(contentsOf: dir.appendingPathComponent("config.json"))
            let orig = try JSONValue.parse(contentsOf: src.appendingPathComponent("config.json"))
            for k in ["architectures", "model_type", "num_local_experts", "num_experts", "num_experts_per_tok", "moe_intermediate_size",
                      "norm_topk_prob", "intermediate_size", "hidden_size", "num_hidden_layers", "num_key_value_heads", "vocab_size"] {
                XCTAssertEqual(cfg[k], orig[k], "\(model) config \(k)")
            }

            let golden = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-q8_0.gguf")
            let dir2 = tmp.appendingPathComponent("export-q8_0")
            _ = try Exporter.export(gguf: golden, to: dir2, dtype: .f32, progress: false)
            let back = tmp.appendingPathComponent("back.gguf")
            _ = try Converter.write(ConversionPlan(folder: dir2, outType: .q8_0, pre: pre), to: back, threads: 2, progress: false)
            let a = try GGUFFile(url: back), b = try GGUFFile(url: golden)
            XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name), model)
            for (x, y) in zip(a.tensors, b.tensors) {
                XCTAssertEqual(x.type, y.type, "\(model) \(x.name)"); XCTAssertEqual(x.shape, y.shape, "\(model) \(x.name)")
                XCTAssertTrue(a.data(for: x).elementsEqual(b.data(for: y)), "\(model) \(x.name): bytes differ")
            }
            for (k, v) in b.metadata where a.metadata[k] != v { XCTFail("\(model): \(k) = \(String(describing: a.metadata[k]).prefix(80)) vs \(String(describing: v).prefix(80))") }
        }
    }

    /// A stacked expert tensor whose expert dimension disagrees with `expert_count` is an export error
    /// naming the file and tensor, and leaves no folder.
    func testExportRefusesExpertCountMismatch() throws {
        let golden = try GGUFFile(url: try Fixtures.sharedFile("models/tiny/tiny-qwen3moe.golden/tiny-qwen3moe-q8_0.gguf"))
        var md = golden.metadata
        md["qwen3moe.expert_count"] = .uint32(4)
        let tmp = try Fixtures.tempDir(self)
        let bad = tmp.appendingPathComponent("bad.gguf")
        let w = try GGUFWriter(url: bad, metadata: md, tensors: golden.tensors.map { .init(name: $0.name, shape: $0.shape, type: $0.type) })
        for t in golden.tensors { try w.write(golden.data(for: t)) }
        try w.finish()
        let out = tmp.appendingPathComponent("exported")
        XCTAssertThrowsError(try Exporter.export(gguf: bad, to: out, progress: false)) { e in
            XCTAssertTrue("\(e)".contains("bad.gguf") && "\(e)".contains("_exps.weight") && "\(e)".contains("expert_count = 4"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    /// A copy of `model` with transformers' fused expert layout: per block `PREFIX.experts.gate_up_proj`
    /// `[n_expert, 2·n_ff, n_embd]` (each expert's gate rows, then its up rows) and `PREFIX.experts.down_proj`
    /// `[n_expert, n_embd, n_ff]`; with prefix `mlp` Mixtral's router is renamed `mlp.gate` (transformers 5).
    func fusedCopy(_ model: String, prefix: String, swapGateUp: Bool = false) throws -> URL {
        let src = try Fixtures.sharedFile("models/tiny/\(model)")
        let dir = try Fixtures.tempDir(self).appendingPathComponent(model)  // same folder name: same general.name
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: src.path) where !f.hasSuffix(".safetensors") && !f.hasSuffix(".index.json") {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(f), withDestinationURL: src.appendingPathComponent(f))
        }
        let ck = try SafetensorsCheckpoint(folder: src)
        let mixtral = model.contains("mixtral")
        let (gate, up, down) = mixtral ? ("w1", "w3", "w2") : ("gate_proj", "up_proj", "down_proj")
        let old = mixtral ? "block_sparse_moe" : "mlp"
        let nExpert = mixtral ? 4 : 8, nLayer = 2
        var entries: [SafetensorsWriter.Entry] = [], data: [[UInt8]] = []
        for t in ck.tensors where !t.name.contains(".experts.") {
            let name = mixtral && prefix == "mlp" ? t.name.replacingOccurrences(of: "block_sparse_moe.gate", with: "mlp.gate") : t.name
            entries.append(.init(name: name, dtype: t.dtype, shape: t.shape)); data.append(Array(t.data))
        }
        for l in 0..<nLayer {
            func expert(_ e: Int, _ w: String) throws -> SafetensorsTensor {
                try XCTUnwrap(ck.tensor(named: "model.layers.\(l).\(old).experts.\(e).\(w).weight"))
            }
            var gu: [UInt8] = [], dn: [UInt8] = []
            for e in 0..<nExpert {
                let (first, second) = swapGateUp ? (up, gate) : (gate, up)
                gu += Array(try expert(e, first).data) + Array(try expert(e, second).data)
                dn += Array(try expert(e, down).data)
            }
            let g0 = try expert(0, gate), d0 = try expert(0, down)
            entries.append(.init(name: "model.layers.\(l).\(prefix).experts.gate_up_proj", dtype: g0.dtype, shape: [nExpert, 2 * g0.shape[0], g0.shape[1]]))
            data.append(gu)
            entries.append(.init(name: "model.layers.\(l).\(prefix).experts.down_proj", dtype: d0.dtype, shape: [nExpert] + d0.shape))
            data.append(dn)
        }
        let w = try SafetensorsWriter(url: dir.appendingPathComponent("model.safetensors"), tensors: entries)
        for d in data { try w.write(d) }
        try w.finish()
        return dir
    }

    /// The fused expert layout converts to the same GGUF as the per-expert layout: llama.cpp's q8_0
    /// file byte for byte (Mixtral under transformers 5's `mlp` names: the same tensors and metadata,
    /// in the order its tensor names sort); gate and up swapped inside the fused tensor does not.
    func testFusedExpertLayoutConvertsToTheSameGGUF() throws {
        for (model, pre, prefix) in [("tiny-qwen3moe", "qwen2", "mlp"), ("tiny-mixtral", nil, "block_sparse_moe"), ("tiny-mixtral", nil, "mlp")] {
            let golden = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-q8_0.gguf")
            let out = try Fixtures.tempDir(self).appendingPathComponent("fused.gguf")
            let plan = try ConversionPlan(folder: try fusedCopy(model, prefix: prefix), outType: .q8_0, pre: pre)
            XCTAssertTrue(plan.tensors.contains { $0.sourceName.contains("gate_up_proj[") }, model)
            _ = try Converter.write(plan, to: out, threads: 2, progress: false)
            let a = try GGUFFile(url: out), b = try GGUFFile(url: golden)
            for (k, v) in b.metadata where a.metadata[k] != v { XCTFail("\(model) \(prefix): \(k) = \(String(describing: a.metadata[k]).prefix(80)) vs \(String(describing: v).prefix(80))") }
            if prefix == "mlp" && model == "tiny-mixtral" {
                XCTAssertEqual(Set(a.tensors.map(\.name)), Set(b.tensors.map(\.name)))
                for y in b.tensors {
                    let x = try XCTUnwrap(a.tensor(named: y.name))
                    XCTAssertEqual(x.shape, y.shape, y.name)
                    XCTAssertTrue(a.data(for: x).elementsEqual(b.data(for: y)), "\(model) \(prefix) \(y.name): bytes differ")
                }
            } else {
                XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: golden), "\(model) \(prefix): file differs")
            }
        }
        let swapped = try ConversionPlan(folder: try fusedCopy("tiny-qwen3moe", prefix: "mlp", swapGateUp: true), outType: .q8_0, pre: "qwen2")
        let out = try Fixtures.tempDir(self).appendingPathComponent("swapped.gguf")
        _ = try Converter.write(swapped, to: out, threads: 2, progress: false)
        let a = try GGUFFile(url: out), b = try GGUFFile(url: try Fixtures.sharedFile("models/tiny/tiny-qwen3moe.golden/tiny-qwen3moe-q8_0.gguf"))
        let x = try XCTUnwrap(a.tensor(named: "blk.0.ffn_gate_exps.weight")), y = try XCTUnwrap(b.tensor(named: "blk.0.ffn_gate_exps.weight"))
        XCTAssertFalse(a.data(for: x).elementsEqual(b.data(for: y)), "gate rows come first in gate_up_proj")
    }

    /// A fused expert tensor whose first dimension is not the expert count is an error naming it.
    func testFusedExpertTensorWithWrongShapeIsAnError() throws {
        let dir = try fusedCopy("tiny-qwen3moe", prefix: "mlp")
        var cfg = try XCTUnwrap(try JSONValue.parse(contentsOf: dir.appendingPathComponent("config.json")).objectValue)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        cfg = cfg.map { $0.0 == "num_experts" ? ($0.0, .int(4)) : $0 }
        try Data(JSONValue.object(cfg).serialized().utf8).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try ConversionPlan(folder: dir, outType: .f16, pre: "qwen2")) { e in
            XCTAssertTrue("\(e)".contains("gate_up_proj") || "\(e)".contains("down_proj"), "\(e)")
            XCTAssertTrue("\(e)".contains("[8, 512, 256]") || "\(e)".contains("[8, 256, 256]"), "\(e)")
        }
    }
}
