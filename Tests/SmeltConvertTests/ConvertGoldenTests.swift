import Foundation
import XCTest
import SmeltConvert
import SmeltFormats
import SmeltTestSupport

/// Smelt's conversions of the tiny fixtures against what llama.cpp's
/// convert_hf_to_gguf.py wrote from the same checkpoints.
final class ConvertGoldenTests: XCTestCase {
    func convert(_ model: String, _ type: OutType, pre: String? = nil, folder: String? = nil) throws -> URL {
        let src = try Fixtures.sharedFile("models/tiny/\(folder ?? model)")
        let plan = try ConversionPlan(folder: src, outType: type, pre: pre)
        let out = try Fixtures.tempDir(self).appendingPathComponent("\(model)-\(type).gguf")
        _ = try Converter.write(plan, to: out, threads: 2, progress: false)
        return out
    }

    /// Whole files byte for byte: same tensors, metadata, order and layout.
    func testEveryTinyFixtureEveryOutTypeIsByteIdentical() throws {
        for (model, pre) in [("tiny-llama", nil), ("tiny-qwen3", "qwen2"), ("tiny-gemma3", nil)] as [(String, String?)] {
            for type in [OutType.f32, .f16, .bf16, .q8_0] {
                let out = try convert(model, type, pre: pre)
                let golden = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-\(type.rawValue).gguf")
                let a = try GGUFFile(url: out), b = try GGUFFile(url: golden)
                XCTAssertEqual(a.metadata.keys, b.metadata.keys, "\(model) \(type)")
                for (k, v) in b.metadata where a.metadata[k] != v { XCTFail("\(model) \(type): \(k) = \(String(describing: a.metadata[k]).prefix(80)) vs \(String(describing: v).prefix(80))") }
                XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name), "\(model) \(type)")
                for (x, y) in zip(a.tensors, b.tensors) {
                    XCTAssertEqual(x.type, y.type, "\(model) \(type) \(x.name)")
                    XCTAssertEqual(x.shape, y.shape, "\(model) \(type) \(x.name)")
                    XCTAssertTrue(a.data(for: x).elementsEqual(b.data(for: y)), "\(model) \(type) \(x.name) bytes differ")
                }
                XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: golden), "\(model) \(type): file differs")
            }
        }
    }

    /// The 4-shard checkpoint gives tiny-llama's tensors and metadata but for general.name
    /// (the folder name). Tensor order follows llama.cpp's `index_tensors`: shards in name
    /// order, tensors sorted by name within each shard (docs/CONVERT.md).
    func testShardedCheckpoint() throws {
        let out = try convert("tiny-llama-sharded", .bf16)
        let golden = try GGUFFile(url: try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-bf16.gguf"))
        let g = try GGUFFile(url: out)
        XCTAssertEqual(g.metadata["general.name"], .string("Tiny Llama Sharded"))
        XCTAssertEqual(g.metadata.keys, golden.metadata.keys)
        for (k, v) in golden.metadata where k != "general.name" { XCTAssertEqual(g.metadata[k], v, k) }
        XCTAssertEqual(Set(g.tensors.map(\.name)), Set(golden.tensors.map(\.name)))
        for y in golden.tensors {
            let x = try XCTUnwrap(g.tensor(named: y.name))
            XCTAssertEqual(x.type, y.type); XCTAssertEqual(x.shape, y.shape)
            XCTAssertTrue(g.data(for: x).elementsEqual(golden.data(for: y)), y.name)
        }
        // shard 1 holds embed_tokens and layer 0's attention: they come first
        XCTAssertEqual(Array(g.tensors.map(\.name).prefix(5)), ["token_embd.weight", "blk.0.attn_k.weight", "blk.0.attn_output.weight", "blk.0.attn_q.weight", "blk.0.attn_v.weight"])
    }

    func testAutoPicksTheCheckpointType() throws {
        // the tiny checkpoints are float32: auto means f16, as llama.cpp's converter decides
        let plan = try ConversionPlan(folder: try Fixtures.sharedFile("models/tiny/tiny-llama"), outType: .auto)
        XCTAssertEqual(plan.outType, .f16)
        XCTAssertEqual(plan.metadata["general.file_type"], .uint32(1))
    }

    func testQwenWithoutKnownPreHashIsAnErrorSuggestingPre() throws {
        XCTAssertThrowsError(try ConversionPlan(folder: try Fixtures.sharedFile("models/tiny/tiny-qwen3"), outType: .f16)) { e in
            XCTAssertTrue("\(e)".contains("--pre"), "\(e)")
        }
    }

    func testPermutationMatchesLlamaCppReshape() {
        // LlamaModel.permute: reshape(h, 2, n/h/2, ...).swapaxes(1, 2): rows 0..3 of head 0 of 8 rows, 2 heads
        XCTAssertEqual(ConversionPlan.permutation(rows: 8, heads: 2), [0, 2, 1, 3, 4, 6, 5, 7])
        XCTAssertEqual(ConversionPlan.permutation(rows: 12, heads: 1), [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11])
    }
}
