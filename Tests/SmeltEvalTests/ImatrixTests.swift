import Foundation
import SmeltEval
import SmeltFormats
import SmeltQuant
import SmeltTestSupport
import XCTest

/// `smelt imatrix`: statistics, both file formats, and use for quantization.
final class ImatrixTests: XCTestCase {
    func testImatrixWritesReadsBackAndQuantizes() throws {
        let dir = try Fixtures.tempDir(self)
        let m = try InferenceModel(url: try Fixtures.sharedFile("models/tiny/tiny-qwen3.golden/tiny-qwen3-f32.gguf"), threads: 2)
        let text = try EvaluationText.read(try Fixtures.sharedFile("data/calibration_data_v5_rc.txt"))
        let tokens = try m.makeTokenizer().encode(text, addSpecial: true, parseSpecial: false)
        let (im, result) = try Evaluator.imatrix(model: m, tokens: tokens, options: EvaluationOptions(contextLength: 128, chunks: 6),
                                                 dataset: "calibration_data_v5_rc.txt")
        XCTAssertEqual(result.chunks, 6)
        // 7 products per block (q, k, v, output, gate, up, down) × 2 blocks; tied output is not collected
        XCTAssertEqual(im.entries.count, 14)
        XCTAssertEqual(im.chunkCount, 6)
        XCTAssertEqual(im.chunkSize, 128)
        let q = try XCTUnwrap(im.entries["blk.0.attn_q.weight"])
        XCTAssertEqual(q.sums.count, 256)
        XCTAssertEqual(q.counts, [6 * 128])
        XCTAssertEqual(im.entries["blk.1.ffn_down.weight"]?.sums.count, 512)
        // q, k and v see the same input
        XCTAssertEqual(im.entries["blk.0.attn_k.weight"]?.sums, q.sums)
        XCTAssertTrue(q.sums.allSatisfy { $0 > 0 && $0.isFinite })

        // GGUF round trip
        let g = dir.appendingPathComponent("imatrix.gguf")
        try im.writeGGUF(to: g)
        let back = try Imatrix(url: g)
        XCTAssertEqual(back.entries, im.entries)
        XCTAssertEqual(back.datasets, ["calibration_data_v5_rc.txt"])
        XCTAssertEqual(back.chunkCount, 6)
        XCTAssertTrue(back.hasMetadata)
        let gguf = try GGUFFile(url: g)
        XCTAssertEqual(gguf.metadata["general.type"]?.stringValue, "imatrix")
        // ggml writes ggml_n_dims dimensions (llama-imatrix's files: [256] and [1] for a dense weight)
        XCTAssertEqual(gguf.tensor(named: "blk.0.attn_q.weight.in_sum2")?.shape, [256])
        XCTAssertEqual(gguf.tensor(named: "blk.0.attn_q.weight.counts")?.shape, [1])

        // legacy .dat round trip: values are per-token means × ncall
        let d = dir.appendingPathComponent("imatrix.dat")
        try im.writeLegacy(to: d, dataset: "calibration_data_v5_rc.txt")
        let legacy = try Imatrix(url: d)
        XCTAssertTrue(legacy.isLegacy)
        XCTAssertEqual(legacy.entries.count, 14)
        let wG = back.importanceWeights()["blk.0.attn_q.weight"]!, wD = legacy.importanceWeights()["blk.0.attn_q.weight"]!
        for i in 0..<256 { XCTAssertEqual(wG[i], wD[i], accuracy: wG[i] * 1e-5) }

        // the importance weights change how a matrix is quantized (Q4_K with quant_weights)
        let gf = try GGUFFile(url: try Fixtures.sharedFile("models/tiny/tiny-qwen3.golden/tiny-qwen3-f32.gguf"))
        let t = try XCTUnwrap(gf.tensor(named: "blk.0.attn_q.weight"))
        let k = try XCTUnwrap(QuantRegistry.kernel(for: .q4_K))
        let row = Array(UnsafeBufferPointer(start: gf.data(for: t).baseAddress!.assumingMemoryBound(to: Float.self), count: 256))
        var plainQ = [UInt8](repeating: 0, count: GGMLType.q4_K.rowBytes(256)!), weighted = plainQ
        k.quantizeRow(row, &plainQ, count: 256, importance: nil)
        wG.withUnsafeBufferPointer { k.quantizeRow(row, &weighted, count: 256, importance: $0.baseAddress!) }
        XCTAssertNotEqual(plainQ, weighted)
        // weighted error (by importance) is not worse than the unweighted quantization's
        func err(_ b: [UInt8]) -> Double {
            var out = [Float](repeating: 0, count: 256)
            k.dequantizeRow(b, &out, count: 256)
            var e = 0.0
            for i in 0..<256 {
                let d = Double(out[i] - row[i])
                e += Double(wG[i]) * d * d
            }
            return e
        }
        XCTAssertLessThanOrEqual(err(weighted), err(plainQ) * 1.0001)
    }
}
