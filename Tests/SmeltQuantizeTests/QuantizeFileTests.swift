import Foundation
import XCTest
import SmeltFormats
import SmeltQuant
import SmeltQuantize
import SmeltTestSupport

/// Whole-file runs against llama-quantize's outputs, and failure behaviour.
final class QuantizeFileTests: XCTestCase {
    /// The tiny fixtures: `llama-quantize M-f32.gguf OUT TYPE 2` for Q4_0, Q4_K_M, Q6_K.
    /// Smelt's file must be identical byte for byte (metadata, tensor infos, data, padding).
    func testTinyFixturesByteIdentical() throws {
        let dir = try Fixtures.tempDir(self)
        for model in ["tiny-llama", "tiny-qwen3", "tiny-gemma3"] {
            let input = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-f32.gguf")
            for preset in [LlamaPreset.Q4_0, .Q4_K_M, .Q6_K] {
                let golden = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-\(preset.rawValue).gguf")
                let out = dir.appendingPathComponent("\(model)-\(preset.rawValue).gguf")
                var req = QuantizeRequest(preset: preset)
                req.threads = 2
                let r = try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: req)
                let a = try Data(contentsOf: out), b = try Data(contentsOf: golden)
                if a != b {
                    // say which tensor differs
                    let ga = try GGUFFile(url: out), gb = try GGUFFile(url: golden)
                    XCTAssertEqual(ga.metadata, gb.metadata, "\(model) \(preset): metadata")
                    for (x, y) in zip(ga.tensors, gb.tensors) {
                        XCTAssertEqual(x, y, "\(model) \(preset): tensor info")
                        XCTAssertTrue(ga.data(for: x).elementsEqual(gb.data(for: y)), "\(model) \(preset): data of \(x.name)")
                    }
                }
                XCTAssertEqual(a, b, "\(model) \(preset): file differs from llama-quantize's")
                XCTAssertEqual(r.outputBytes + 0, try GGUFFile(url: golden).tensors.reduce(0) { $0 + $1.byteCount })
            }
        }
    }

    /// An HF checkpoint folder quantized in one pass (converter's tensor source, f32
    /// intermediate) gives llama-quantize's file made from convert_hf_to_gguf's f32 GGUF.
    func testHFCheckpointOnePass() throws {
        let dir = try Fixtures.tempDir(self)
        for model in ["tiny-llama", "tiny-qwen3", "tiny-gemma3"] {
            let folder = try Fixtures.sharedFile("models/tiny/\(model)")
            let golden = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-Q4_K_M.gguf")
            let out = dir.appendingPathComponent("\(model).gguf")
            var req = QuantizeRequest(preset: .Q4_K_M); req.threads = 2
            let src = try HFCheckpointSource(folder: folder, outType: .f32, pre: model == "tiny-qwen3" ? "qwen2" : nil)
            try Quantizer.run(source: src, output: out, request: req)
            XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: golden), model)
        }
    }

    /// Same result with 1 and 3 threads (rows are independent).
    func testThreadCountDoesNotMatter() throws {
        let input = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let dir = try Fixtures.tempDir(self)
        var outs: [Data] = []
        for th in [1, 3] {
            let out = dir.appendingPathComponent("t\(th).gguf")
            var req = QuantizeRequest(preset: .Q4_0); req.threads = th
            try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: req)
            outs.append(try Data(contentsOf: out))
        }
        XCTAssertEqual(outs[0], outs[1])
    }

    /// bf16 input: the same as quantizing the f32 file (bf16 values are exact in f32)
    /// only where the f32 data equals the bf16 data, so check type and size instead.
    func testBF16InputAndSummary() throws {
        let input = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-bf16.gguf")
        let dir = try Fixtures.tempDir(self)
        let out = dir.appendingPathComponent("q8.gguf")
        var req = QuantizeRequest(preset: .Q8_0); req.threads = 2
        let r = try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: req)
        let g = try GGUFFile(url: out)
        XCTAssertEqual(g.metadata["general.file_type"], .uint32(7))
        XCTAssertEqual(g.metadata.keys.suffix(2), ["general.quantization_version", "general.file_type"])
        XCTAssertEqual(g.tensor(named: "blk.0.attn_q.weight")?.type, .q8_0)
        XCTAssertEqual(r.summaryLines[0], "model size  =     3.23 MiB (16.01 BPW)")
        XCTAssertTrue(r.summaryLines[1].hasPrefix("quant size  =     1.72 MiB (8.52 BPW)"), r.summaryLines[1])
        // Q8_0 rows dequantize close to the input
        let src = try GGUFTensorSource(url: input)
        let i = src.tensors.firstIndex { $0.name == "blk.0.attn_q.weight" }!
        var a = [Float](repeating: 0, count: 256), b = [Float](repeating: 0, count: 256)
        try src.readRows(i, rows: 3..<4, into: &a)
        let t = g.tensor(named: "blk.0.attn_q.weight")!
        Q8_0.dequantizeRow(g.data(for: t).baseAddress! + 3 * 272, &b, count: 256)
        for k in 0..<256 { XCTAssertEqual(a[k], b[k], accuracy: 0.01) }
    }

    func testIQ2XXSWithoutImatrixFailsAndLeavesNothing() throws {
        let input = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let dir = try Fixtures.tempDir(self)
        let out = dir.appendingPathComponent("iq2.gguf")
        XCTAssertThrowsError(try Quantizer.run(source: try GGUFTensorSource(url: input), output: out,
                                               request: QuantizeRequest(preset: .IQ2_XXS))) { e in
            XCTAssertTrue("\(e)".contains("importance matrix"), "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        // dry run: sizes only, nothing written
        let r = try Quantizer.run(source: try GGUFTensorSource(url: input), output: nil, request: QuantizeRequest(preset: .IQ2_XXS))
        XCTAssertTrue(r.plan.willRequireImatrix)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testRequantizeNeedsFlag() throws {
        let input = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-Q4_0.gguf")
        let dir = try Fixtures.tempDir(self)
        let out = dir.appendingPathComponent("rq.gguf")
        XCTAssertThrowsError(try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: QuantizeRequest(preset: .Q8_0)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        var req = QuantizeRequest(preset: .Q8_0); req.allowRequantize = true
        try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: req)
        XCTAssertEqual(try GGUFFile(url: out).tensor(named: "blk.0.attn_q.weight")?.type, .q8_0)
    }

    /// A source that fails in the middle of the run: the error surfaces and no file (not even the temporary one) is left.
    func testFailureMidRunLeavesNoFile() throws {
        final class Failing: TensorSource {
            let inner: GGUFTensorSource
            init(_ u: URL) throws { inner = try GGUFTensorSource(url: u) }
            var metadata: GGUFMetadata { inner.metadata }
            var tensors: [SourceTensor] { inner.tensors }
            func rawData(_ index: Int) -> UnsafeRawBufferPointer? { inner.rawData(index) }
            func release(_ index: Int) {}
            func readRows(_ index: Int, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) throws {
                if tensors[index].name.hasPrefix("blk.1.") { throw SmeltError("disk on fire") }
                try inner.readRows(index, rows: rows, into: dst)
            }
        }
        let input = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let dir = try Fixtures.tempDir(self)
        let out = dir.appendingPathComponent("x.gguf")
        var req = QuantizeRequest(preset: .Q4_K_M); req.threads = 2
        XCTAssertThrowsError(try Quantizer.run(source: try Failing(input), output: out, request: req)) { e in
            XCTAssertEqual(e as? SmeltError, SmeltError("disk on fire"))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    /// With importance data: weights reach the kernels per tensor (the file changes
    /// for q4_K tensors), the metadata gets `quantize.imatrix.*`.
    func testImatrixChangesDataAndMetadata() throws {
        let input = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let dir = try Fixtures.tempDir(self)
        let src = try GGUFTensorSource(url: input)
        var entries: [String: Imatrix.Entry] = [:]
        var rng = SystemRandomNumberGenerator()
        for t in src.tensors where t.shape.count >= 2 && t.name.hasPrefix("blk.") {
            entries[t.name] = Imatrix.Entry(sums: (0..<t.shape[0]).map { _ in Float.random(in: 0.1...50, using: &rng) }, counts: [512])
        }
        let im = Imatrix(entries: entries, datasets: ["wiki.txt"], chunkCount: 4, chunkSize: 128)
        let imURL = dir.appendingPathComponent("imatrix.gguf")
        try im.writeGGUF(to: imURL)
        let out = dir.appendingPathComponent("q.gguf")
        var req = QuantizeRequest(preset: .Q4_0); req.threads = 2; req.imatrixURL = imURL
        req.excludeWeights = ["ffn_up"]
        let r = try Quantizer.run(source: src, output: out, request: req)
        XCTAssertEqual(r.imatrixEntries, 12)
        let g = try GGUFFile(url: out), gold = try GGUFFile(url: try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-Q4_0.gguf"))
        XCTAssertEqual(g.metadata["quantize.imatrix.file"], .string(imURL.path))
        XCTAssertEqual(g.metadata["quantize.imatrix.dataset"], .string("wiki.txt"))
        XCTAssertEqual(g.metadata["quantize.imatrix.entries_count"], .uint32(12))
        XCTAssertEqual(g.metadata["quantize.imatrix.chunks_count"], .uint32(4))
        func same(_ n: String) -> Bool { g.data(for: g.tensor(named: n)!).elementsEqual(gold.data(for: gold.tensor(named: n)!)) }
        XCTAssertFalse(same("blk.0.attn_q.weight"))
        XCTAssertTrue(same("blk.0.ffn_up.weight"), "excluded from the imatrix")
        XCTAssertTrue(same("token_embd.weight"), "no imatrix entry")
    }
}
