import Foundation
import XCTest
import SmeltConvert
import SmeltFormats
import SmeltQuant
import SmeltQuantize
import SmeltTestSupport

/// Mixture-of-Experts quantization against llama-quantize: 3-D expert tensors quantized per
/// expert slice with the expert's slice of the importance matrix, the n_expert == 8 rules,
/// the router kept F32. The f32 input is Smelt's own conversion (byte-identical to
/// llama.cpp's, ConvertMoETests), since ../shared keeps only its fingerprint.
final class MoEQuantizeTests: XCTestCase {
    static let models: [(String, String?)] = [("tiny-mixtral", nil), ("tiny-qwen3moe", "qwen2")]

    func f32(_ model: String, pre: String?, dir: URL) throws -> URL {
        let out = dir.appendingPathComponent("\(model)-f32.gguf")
        if FileManager.default.fileExists(atPath: out.path) { return out }
        let plan = try ConversionPlan(folder: try Fixtures.sharedFile("models/tiny/\(model)"), outType: .f32, pre: pre)
        _ = try Converter.write(plan, to: out, threads: 2, progress: false)
        return out
    }

    func assertSame(_ out: URL, _ golden: URL, _ what: String) throws {
        let a = try Data(contentsOf: out), b = try Data(contentsOf: golden)
        if a != b {
            let ga = try GGUFFile(url: out), gb = try GGUFFile(url: golden)
            for (k, v) in gb.metadata where ga.metadata[k] != v { XCTFail("\(what): \(k) = \(String(describing: ga.metadata[k]).prefix(80)) vs \(v)") }
            for (x, y) in zip(ga.tensors, gb.tensors) {
                XCTAssertEqual(x, y, "\(what): tensor info")
                XCTAssertTrue(ga.data(for: x).elementsEqual(gb.data(for: y)), "\(what): data of \(x.name)")
            }
        }
        XCTAssertEqual(a, b, "\(what): file differs from llama-quantize's")
    }

    func testPresetsWithoutImatrixAreByteIdentical() throws {
        let dir = try Fixtures.tempDir(self)
        for (model, pre) in Self.models {
            let input = try f32(model, pre: pre, dir: dir)
            for preset in [LlamaPreset.Q4_0, .Q4_K_M, .Q6_K] {
                let out = dir.appendingPathComponent("\(model)-\(preset.rawValue).gguf")
                var req = QuantizeRequest(preset: preset); req.threads = 2
                try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: req)
                try assertSame(out, try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-\(preset.rawValue).gguf"), "\(model) \(preset)")
                let g = try GGUFFile(url: out)
                XCTAssertEqual(g.tensor(named: "blk.0.ffn_gate_inp.weight")?.type, .f32, "the router is never quantized")
                if model == "tiny-qwen3moe" {
                    XCTAssertEqual(g.tensor(named: "blk.1.attn_k.weight")?.type, .q8_0, "n_expert == 8: attn_k q8_0")
                    XCTAssertEqual(g.tensor(named: "blk.1.attn_v.weight")?.type, .q8_0, "n_expert == 8: attn_v q8_0")
                }
            }
        }
    }

    /// The HF folder quantized in one pass (the converter's stacked-expert rows as the source)
    /// gives llama-quantize's Q4_0 file made from convert_hf_to_gguf's f32 GGUF.
    func testHFCheckpointOnePass() throws {
        let dir = try Fixtures.tempDir(self)
        for (model, pre) in Self.models {
            let out = dir.appendingPathComponent("\(model)-hf-Q4_0.gguf")
            var req = QuantizeRequest(preset: .Q4_0); req.threads = 2
            let src = try HFCheckpointSource(folder: try Fixtures.sharedFile("models/tiny/\(model)"), outType: .f32, pre: pre)
            try Quantizer.run(source: src, output: out, request: req)
            try assertSame(out, try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-Q4_0.gguf"), "\(model) HF one pass")
        }
    }

    /// `llama-quantize --imatrix M.imatrix.gguf M-f32.gguf OUT Q4_K_M 2` (run inside the golden
    /// folder, so `quantize.imatrix.file` is the bare file name), the whole file. tiny-qwen3moe's
    /// file is identical too (measured: both in 457 s of a debug build on a shared machine); its
    /// expert slices are checked by `testImatrixExpertSlices`.
    func testImatrixQ4_K_MIsByteIdentical() throws {
        let dir = try Fixtures.tempDir(self)
        for (model, pre) in Self.models.prefix(1) {
            let input = try f32(model, pre: pre, dir: dir)
            let out = dir.appendingPathComponent("\(model)-Q4_K_M-imat.gguf")
            var req = QuantizeRequest(preset: .Q4_K_M); req.threads = 2
            req.imatrixURL = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model).imatrix.gguf")
            req.imatrixArgument = "\(model).imatrix.gguf"
            let r = try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: req)
            XCTAssertEqual(r.imatrixWarnings, [], "every expert saw tokens")
            try assertSame(out, try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-Q4_K_M-imat.gguf"), "\(model) Q4_K_M imatrix")
        }
    }

    /// IQ4_XS and Q4_K_M with the imatrix: expert tensors of tiny-qwen3moe's -imat files, each
    /// 2-D expert slice quantized with that expert's slice of the importance data. (The whole
    /// files are byte-identical too, measured once; the imatrix k-quant search is slow in a debug build.)
    func testImatrixExpertSlices() throws {
        let dir = try Fixtures.tempDir(self)
        let model = "tiny-qwen3moe"
        let input = try GGUFFile(url: try f32(model, pre: "qwen2", dir: dir))
        var checked = 0
        for preset in ["IQ4_XS", "Q4_K_M"] {
        let golden = try GGUFFile(url: try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-\(preset)-imat.gguf"))
        let im = try PreparedImatrix(url: try Fixtures.sharedFile("models/tiny/\(model).golden/\(model).imatrix.gguf"), include: [], exclude: [])
        for g in golden.tensors where g.name == "blk.1.ffn_down_exps.weight" || g.name == "blk.0.ffn_up_exps.weight" {
            let src = try XCTUnwrap(input.tensor(named: g.name))
            let n = src.shape[0], perExpert = src.shape[1], nExpert = src.shape[2]
            let kernel = try XCTUnwrap(QuantRegistry.kernel(for: g.type))
            let rowBytes = try XCTUnwrap(g.type.rowBytes(n))
            let w = try XCTUnwrap(im.weights[g.name])
            XCTAssertEqual(w.count, n * nExpert)
            let f = input.data(for: src).bindMemory(to: Float.self)
            var out = [UInt8](repeating: 0, count: rowBytes * perExpert * nExpert)
            w.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBytes { ob in
                    for r in 0..<(perExpert * nExpert) {
                        kernel.quantizeRow(f.baseAddress! + r * n, ob.baseAddress! + r * rowBytes, count: n,
                                           importance: wp.baseAddress! + (r / perExpert) * n)
                    }
                }
            }
            XCTAssertTrue(golden.data(for: g).elementsEqual(out), "\(preset) \(g.name) (\(g.type.name)) differs from llama-quantize's")
            checked += 1
        }
        }
        XCTAssertEqual(checked, 4)
    }

    /// An expert that saw no tokens gets importance 1 (llama-quantize's load_imatrix), never a
    /// NaN, and a warning names the tensor and the expert.
    func testExpertWithoutTokensGetsWeightOneAndAWarning() throws {
        let dir = try Fixtures.tempDir(self)
        var im = try Imatrix(url: try Fixtures.sharedFile("models/tiny/tiny-qwen3moe.golden/tiny-qwen3moe.imatrix.gguf"))
        let name = "blk.0.ffn_up_exps.weight"
        var e = try XCTUnwrap(im.entries[name])
        XCTAssertEqual(e.counts.count, 8)
        let n = e.sums.count / 8
        e.counts[3] = 0; e.counts[6] = 0
        for i in (3 * n)..<(4 * n) { e.sums[i] = 0 }
        for i in (6 * n)..<(7 * n) { e.sums[i] = 0 }
        im.entries[name] = e
        let url = dir.appendingPathComponent("partial.imatrix.gguf")
        try im.writeGGUF(to: url)
        let p = try PreparedImatrix(url: url, include: [], exclude: [])
        XCTAssertEqual(p.warnings.count, 1)
        XCTAssertTrue(p.warnings[0].contains(name) && p.warnings[0].contains("experts 3, 6 of 8"), p.warnings[0])
        let w = try XCTUnwrap(p.weights[name])
        XCTAssertTrue(w[(3 * n)..<(4 * n)].allSatisfy { $0 == 1 })
        XCTAssertTrue(w[(6 * n)..<(7 * n)].allSatisfy { $0 == 1 })
        XCTAssertFalse(w.contains { !$0.isFinite })
        XCTAssertEqual(w[0], e.sums[0] / Float(e.counts[0]))
    }

    /// A recipe addressing experts (Unsloth-style: expert gate/up at 4 bits, ffn_down_exps more,
    /// shared tensors protected) plans and writes a converted MoE file; each expert slice of the
    /// output dequantizes close to the f32 expert.
    func testRecipeAddressesExpertTensors() throws {
        let dir = try Fixtures.tempDir(self)
        let input = try f32("tiny-qwen3moe", pre: "qwen2", dir: dir)
        let yaml = """
        name: moe-xl
        default: q8_0
        rules:
          - name: 'ffn_down_exps'
            type: q6_K
          - role: [ffn_gate, ffn_up]
            experts: true
            type: q4_K
        """
        var req = QuantizeRequest(preset: .Q4_K_M); req.threads = 2
        req.recipe = try Recipe(yaml: yaml, source: "moe.yaml")
        let out = dir.appendingPathComponent("moe-xl.gguf")
        let r = try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: req)
        func ty(_ n: String) -> GGMLType? { r.plan.tensors.first { $0.name == n }?.type }
        XCTAssertEqual(ty("blk.0.ffn_down_exps.weight"), .q6_K)
        XCTAssertEqual(ty("blk.1.ffn_gate_exps.weight"), .q4_K)
        XCTAssertEqual(ty("blk.1.ffn_up_exps.weight"), .q4_K)
        XCTAssertEqual(ty("blk.0.attn_output.weight"), .q8_0, "the default")
        XCTAssertEqual(ty("blk.0.ffn_gate_inp.weight"), .f32, "the router is kept")
        let g = try GGUFFile(url: out), f = try GGUFFile(url: input)
        let t = try XCTUnwrap(g.tensor(named: "blk.1.ffn_down_exps.weight"))
        let src = try XCTUnwrap(f.tensor(named: "blk.1.ffn_down_exps.weight"))
        XCTAssertEqual(t.shape, src.shape)
        let n = t.shape[0], rows = t.shape[1] * t.shape[2]
        let k = try XCTUnwrap(QuantRegistry.kernel(for: t.type)), rb = try XCTUnwrap(t.type.rowBytes(n))
        var back = [Float](repeating: 0, count: n)
        let a = f.data(for: src).bindMemory(to: Float.self), q = g.data(for: t)
        var maxErr: Float = 0, maxAbs: Float = 0
        for r in stride(from: 0, to: rows, by: 37) {
            back.withUnsafeMutableBufferPointer { k.dequantizeRow(q.baseAddress! + r * rb, $0.baseAddress!, count: n) }
            for i in 0..<n { maxErr = max(maxErr, abs(back[i] - a[r * n + i])); maxAbs = max(maxAbs, abs(a[r * n + i])) }
        }
        XCTAssertLessThan(maxErr / maxAbs, 0.05, "q6_K expert slices dequantize near the f32 experts")
    }

    /// 3-D expert tensors are read, quantized and written one expert slice at a time (memory
    /// follows one slice, not the expert count): no read spans two experts, the whole-tensor
    /// release comes after the last slice, and the bytes are the kernel's row by row with each
    /// expert's slice of the importance data, for 8 and 32 experts and 1 or 2 threads.
    func testExpertTensorsStreamOneSliceAtATime() throws {
        final class Experts: TensorSource, @unchecked Sendable {
            let metadata: GGUFMetadata
            let tensors: [SourceTensor]
            let values: [[Float]]
            let lock = NSLock()
            var reads: [(Int, Range<Int>)] = []
            var releasedAfter: [Int: Int] = [:]
            init(experts: Int) {
                var md = GGUFMetadata()
                md["general.architecture"] = .string("qwen3moe")
                md["qwen3moe.block_count"] = .uint32(1)
                md["qwen3moe.expert_count"] = .uint32(UInt32(experts))
                metadata = md
                tensors = [SourceTensor(name: "blk.0.ffn_up_exps.weight", shape: [256, 16, experts], type: .f32),
                           SourceTensor(name: "blk.0.ffn_down_exps.weight", shape: [256, 16, experts], type: .f32)]
                var rng = SplitMix(seed: UInt64(experts))
                values = tensors.map { t in (0..<t.elementCount).map { _ in Float(rng.uniform()) } }
            }
            func rawData(_ index: Int) -> UnsafeRawBufferPointer? { nil }
            var releasedRows: [(Int, Range<Int>)] = []
            func release(_ index: Int) { lock.lock(); releasedAfter[index] = reads.count; lock.unlock() }
            func release(_ index: Int, rows: Range<Int>) { lock.lock(); releasedRows.append((index, rows)); lock.unlock() }
            func readRows(_ index: Int, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) throws {
                lock.lock(); reads.append((index, rows)); lock.unlock()
                let n = tensors[index].rowLength
                values[index].withUnsafeBufferPointer { dst.update(from: $0.baseAddress! + rows.lowerBound * n, count: rows.count * n) }
            }
        }
        let dir = try Fixtures.tempDir(self)
        for experts in [8, 32] {
            let src = Experts(experts: experts)
            var entries: [String: Imatrix.Entry] = [:]
            var rng = SplitMix(seed: 7)
            for t in src.tensors {
                entries[t.name] = Imatrix.Entry(sums: (0..<(256 * experts)).map { _ in Float(rng.uniform() * 20 + 20.1) },
                                                counts: [Int64](repeating: 64, count: experts))
            }
            let imURL = dir.appendingPathComponent("e\(experts).imatrix.gguf")
            try Imatrix(entries: entries, datasets: ["x.txt"], chunkCount: 1, chunkSize: 64).writeGGUF(to: imURL)
            let im = try PreparedImatrix(url: imURL, include: [], exclude: [])
            for threads in [1, 2] {
                src.reads = []; src.releasedAfter = [:]; src.releasedRows = []
                var req = QuantizeRequest(preset: .Q8_0); req.threads = threads; req.imatrixURL = imURL
                req.options.tensorTypes = [("ffn_up_exps", .q4_K), ("ffn_down_exps", .iq4_xs)]
                let out = dir.appendingPathComponent("e\(experts)-t\(threads).gguf")
                try Quantizer.run(source: src, output: out, request: req)
                for (i, r) in src.reads {
                    XCTAssertEqual(r.lowerBound / 16, (r.upperBound - 1) / 16, "\(experts) experts: a read of tensor \(i) spans two experts: \(r)")
                }
                for i in src.tensors.indices {
                    for e in 0..<experts {
                        XCTAssertTrue(src.releasedRows.contains { $0.0 == i && $0.1 == (16 * e)..<(16 * (e + 1)) },
                                      "expert \(e) of tensor \(i): its input pages are released as a whole slice")
                    }
                    let last = try XCTUnwrap(src.reads.lastIndex { $0.0 == i })
                    XCTAssertGreaterThan(try XCTUnwrap(src.releasedAfter[i]), last, "released after its last slice")
                }
                let g = try GGUFFile(url: out)
                for (i, t) in src.tensors.enumerated() {
                    let o = try XCTUnwrap(g.tensor(named: t.name))
                    XCTAssertEqual(o.type, i == 0 ? .q4_K : .iq4_xs)
                    let k = try XCTUnwrap(QuantRegistry.kernel(for: o.type)), rb = try XCTUnwrap(o.type.rowBytes(256))
                    let w = try XCTUnwrap(im.weights[t.name])
                    var want = [UInt8](repeating: 0, count: rb * 16 * experts)
                    src.values[i].withUnsafeBufferPointer { v in
                        w.withUnsafeBufferPointer { wp in
                            want.withUnsafeMutableBytes { ob in
                                for r in 0..<(16 * experts) {
                                    k.quantizeRow(v.baseAddress! + r * 256, ob.baseAddress! + r * rb, count: 256,
                                                  importance: wp.baseAddress! + (r / 16) * 256)
                                }
                            }
                        }
                    }
                    XCTAssertTrue(g.data(for: o).elementsEqual(want), "\(experts) experts, \(threads) threads: \(t.name)")
                }
            }
        }
    }
}
