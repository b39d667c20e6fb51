import Foundation
import SmeltConvert
@testable import SmeltEval
import SmeltFormats
import SmeltTestSupport
import XCTest

/// RoPE scaling as llama.cpp applies it: YaRN (ggml's rope_yarn with llama_context's attention
/// factor), checked against transformers' YaRN formula written out in double precision; and a
/// YaRN checkpoint converted and evaluated end to end.
final class RopeScalingTests: XCTestCase {
    /// transformers' `_compute_yarn_parameters` (modeling_rope_utils.py), truncate = true.
    static func hfYarn(dim: Int, base: Double, factor: Double, original: Double, betaFast: Double = 32, betaSlow: Double = 1)
        -> (invFreq: [Double], attention: Double) {
        func corrDim(_ r: Double) -> Double { Double(dim) * log(original / (r * 2 * Double.pi)) / (2 * log(base)) }
        let low = max(floor(corrDim(betaFast)), 0), high0 = min(ceil(corrDim(betaSlow)), Double(dim - 1))
        let high = low == high0 ? high0 + 0.001 : high0
        var inv: [Double] = []
        for i in 0..<(dim / 2) {
            let posFreq = pow(base, Double(2 * i) / Double(dim))
            let extra = 1 / posFreq, inter = 1 / (factor * posFreq)
            let ramp = min(1, max(0, (Double(i) - low) / (high - low)))
            let extrapolationFactor = 1 - ramp
            inv.append(inter * (1 - extrapolationFactor) + extra * extrapolationFactor)
        }
        return (inv, 0.1 * log(factor) + 1)
    }

    func config(_ extra: [(String, GGUFValue)]) throws -> ModelConfig {
        var md = GGUFMetadata()
        md["general.architecture"] = .string("qwen3")
        for (k, v) in [("block_count", 1), ("embedding_length", 256), ("attention.head_count", 4), ("attention.head_count_kv", 2),
                       ("attention.key_length", 64), ("feed_forward_length", 512), ("context_length", 2048),
                       ("vocab_size", 1000)] {
            md["qwen3.\(k)"] = .uint32(UInt32(v))
        }
        md["qwen3.rope.freq_base"] = .float32(10000)
        for (k, v) in extra { md["qwen3.\(k)"] = v }
        let url = try Fixtures.tempDir(self).appendingPathComponent("cfg-\(extra.count).gguf")
        let w = try GGUFWriter(url: url, metadata: md, tensors: [])
        try w.finish()
        return try ModelConfig(gguf: try GGUFFile(url: url))
    }

    func testYarnTableMatchesTransformersFormula() throws {
        let c = try config([("rope.scaling.type", .string("yarn")), ("rope.scaling.factor", .float32(4)),
                            ("rope.scaling.original_context_length", .uint32(512))])
        XCTAssertEqual(c.ropeExtFactor, 1)
        XCTAssertEqual(c.ropeFreqScale, 0.25)
        let table = RopeTable(config: c, length: 2048, base: c.ropeFreqBase, scale: c.ropeFreqScale, factors: nil)
        let ref = Self.hfYarn(dim: 64, base: 10000, factor: 4, original: 512)
        var maxErr = 0.0
        for p in [0, 1, 7, 100, 511, 1000, 2047] {
            for i in 0..<32 {
                let angle = Double(p) * ref.invFreq[i]
                maxErr = max(maxErr, abs(Double(table.cos[p * 32 + i]) - cos(angle) * ref.attention),
                             abs(Double(table.sin[p * 32 + i]) - sin(angle) * ref.attention))
            }
        }
        XCTAssertLessThan(maxErr, 2e-4, "ggml's float32 rope_yarn vs transformers' YaRN (double)")
        // plain linear scaling with the same factor is a different table
        let lin = try config([("rope.scaling.type", .string("linear")), ("rope.scaling.factor", .float32(4))])
        XCTAssertEqual(lin.ropeExtFactor, 0)
        let lt = RopeTable(config: lin, length: 2048, base: lin.ropeFreqBase, scale: lin.ropeFreqScale, factors: nil)
        let differ = zip(lt.cos, table.cos).map { abs($0 - $1) }.max() ?? 0
        XCTAssertGreaterThan(differ, 0.1)
        print("YaRN table vs transformers' formula: max |Δ| \(maxErr)")
    }

    /// A Qwen3 checkpoint with `rope_scaling: {rope_type: yarn}` converts with llama.cpp's keys and evaluates.
    func testYarnCheckpointConvertsAndEvaluates() throws {
        let src = try Fixtures.sharedFile("models/tiny/tiny-qwen3")
        let dir = try Fixtures.tempDir(self).appendingPathComponent("tiny-qwen3-yarn")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: src.path) where f != "config.json" {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(f), withDestinationURL: src.appendingPathComponent(f))
        }
        var cfg = try XCTUnwrap(try JSONValue.parse(contentsOf: src.appendingPathComponent("config.json")).objectValue)
        cfg.removeAll { $0.0 == "rope_scaling" }
        cfg.append(("rope_scaling", .object([("rope_type", .string("yarn")), ("factor", .double(4)),
                                             ("original_max_position_embeddings", .int(128))])))
        try Data(JSONValue.object(cfg).serialized().utf8).write(to: dir.appendingPathComponent("config.json"))
        let out = dir.deletingLastPathComponent().appendingPathComponent("yarn.gguf")
        _ = try Converter.write(try ConversionPlan(folder: dir, outType: .f32, pre: "qwen2"), to: out, threads: 2, progress: false)
        let g = try GGUFFile(url: out)
        XCTAssertEqual(g.metadata["qwen3.rope.scaling.type"], .string("yarn"))
        XCTAssertEqual(g.metadata["qwen3.rope.scaling.factor"], .float32(4))
        XCTAssertEqual(g.metadata["qwen3.rope.scaling.original_context_length"], .uint32(128))
        let m = try InferenceModel(url: out, threads: 2, llamaRounding: false)
        XCTAssertEqual(m.config.ropeExtFactor, 1)
        let golden = try LogitsTests.golden("tiny-qwen3")
        let logits = try m.forward(tokens: golden.tokens, sequenceLength: golden.tokens.count)
        XCTAssertFalse(logits.contains { !$0.isFinite })
        XCTAssertGreaterThan(LogitsTests.relativeError(logits, golden.logits), 1e-4, "YaRN changes the logits")
    }

    /// transformers' logits (Fixtures/rope-scaling, made by scripts/make-rope-scaling-fixtures.py with
    /// torch and transformers, never in CI) for tiny-llama with `linear` and `llama3` scaling and tiny-qwen3
    /// with `yarn`: the weights of the shared fixtures, config.json with `rope_scaling`, 256 tokens (past
    /// each original context). Converted to f32 GGUF and evaluated, the logits at the kept positions agree
    /// as the unscaled fixtures do (max |Δ| < 1e-4 of the largest logit, same argmax), while the same
    /// tokens through the unscaled model miss by far more.
    func testScaledCheckpointsAgreeWithTransformers() throws {
        let fixtures = try XCTUnwrap(Bundle.module.url(forResource: "rope-scaling", withExtension: nil, subdirectory: "Fixtures"))
        for variant in ["llama-linear", "llama-llama3", "qwen3-yarn"] {
            let meta = try JSONValue.parse(contentsOf: fixtures.appendingPathComponent("\(variant).json"))
            let model = try XCTUnwrap(meta["model"]?.stringValue)
            let ids = try XCTUnwrap(meta["token_ids"]?.arrayValue).compactMap { $0.intValue.map(Int32.init) }
            let positions = try XCTUnwrap(meta["positions"]?.arrayValue).compactMap(\.intValue)
            let vocab = try XCTUnwrap(meta["n_vocab"]?.intValue)
            let ref = try Fixtures.readFloats(fixtures.appendingPathComponent("\(variant).f32"))
            XCTAssertEqual(ref.count, positions.count * vocab, variant)

            // the checkpoint: the shared fixture's files, config.json with the variant's rope_scaling
            let src = try Fixtures.sharedFile("models/tiny/\(model)")
            let dir = try Fixtures.tempDir(self).appendingPathComponent(variant)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for f in try FileManager.default.contentsOfDirectory(atPath: src.path) where f != "config.json" {
                try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(f), withDestinationURL: src.appendingPathComponent(f))
            }
            var cfg = try XCTUnwrap(try JSONValue.parse(contentsOf: src.appendingPathComponent("config.json")).objectValue)
            var extra = try XCTUnwrap(meta["config_overrides"]?.objectValue)
            extra.append(("rope_scaling", try XCTUnwrap(meta["rope_scaling"])))
            for (k, v) in extra {
                if let i = cfg.firstIndex(where: { $0.0 == k }) { cfg[i].1 = v } else { cfg.append((k, v)) }
            }
            try Data(JSONValue.object(cfg).serialized().utf8).write(to: dir.appendingPathComponent("config.json"))
            let out = dir.deletingLastPathComponent().appendingPathComponent("\(variant).gguf")
            _ = try Converter.write(try ConversionPlan(folder: dir, outType: .f32, pre: model == "tiny-qwen3" ? "qwen2" : nil),
                                    to: out, threads: 2, progress: false)
            if variant == "llama-llama3" { XCTAssertNotNil(try GGUFFile(url: out).tensor(named: "rope_freqs.weight")) }

            func rows(_ logits: [Float]) -> [Float] {
                positions.flatMap { logits[($0 * vocab)..<(($0 + 1) * vocab)] }
            }
            func argmaxSame(_ a: [Float]) -> Int {
                (0..<positions.count).filter { p in
                    let x = a[(p * vocab)..<((p + 1) * vocab)], y = ref[(p * vocab)..<((p + 1) * vocab)]
                    return x.firstIndex(of: x.max() ?? 0) == y.firstIndex(of: y.max() ?? 0)
                }.count
            }
            var sources = [out]
            if variant == "llama-linear" { sources.append(dir) }  // the evaluator reads linear scaling from config.json too
            for url in sources {
                let m = try InferenceModel(url: url, threads: 2, llamaRounding: false)
                let got = rows(try m.forward(tokens: ids, sequenceLength: ids.count))
                let err = LogitsTests.relativeError(got, ref)
                XCTAssertLessThan(err, 1e-4, "\(variant) \(url.lastPathComponent): relative error \(err)")
                XCTAssertEqual(argmaxSame(got), positions.count, "\(variant) \(url.lastPathComponent): argmax differs")
                print("\(variant) (\(url.lastPathComponent)) vs transformers: max rel error \(err)")
            }
            // control: without the scaling the same tokens give other logits
            let plain = try InferenceModel(url: try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-f32.gguf"), threads: 2, llamaRounding: false)
            let miss = LogitsTests.relativeError(rows(try plain.forward(tokens: ids, sequenceLength: ids.count)), ref)
            XCTAssertGreaterThan(miss, 1e-2, "\(variant): the unscaled model should not agree")
            print("\(variant): unscaled model vs transformers: \(miss)")
        }
    }
}
