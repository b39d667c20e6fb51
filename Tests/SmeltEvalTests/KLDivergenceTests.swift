import Foundation
@testable import SmeltEval
import SmeltFormats
import SmeltTestSupport
import XCTest

/// The KL-divergence base file (plain and zstd) and the statistics.
final class KLDivergenceTests: XCTestCase {
    func model(_ file: String) throws -> InferenceModel {
        try InferenceModel(url: try Fixtures.sharedFile("models/tiny/tiny-llama.golden/\(file)"), threads: 2)
    }

    func tokens(_ m: InferenceModel) throws -> [Int32] {
        let text = try EvaluationText.read(try Fixtures.sharedFile("models/tiny/tiny-llama.golden/eval-sample.txt"))
        return try m.makeTokenizer().encode(text, addSpecial: true, parseSpecial: false)
    }

    func testBaseFileRoundTripsWithBothCompressions() throws {
        let dir = try Fixtures.tempDir(self)
        let base = try model("tiny-llama-f32.gguf")
        let toks = try tokens(base)
        let opts = EvaluationOptions(contextLength: 128, chunks: 12)
        let plainURL = dir.appendingPathComponent("base.kld"), zstURL = dir.appendingPathComponent("base.kld.zst")
        let p1 = try Evaluator.perplexity(model: base, tokens: toks, options: opts, saveLogits: plainURL)
        let p2 = try Evaluator.perplexity(model: base, tokens: toks, options: opts, saveLogits: zstURL)
        XCTAssertEqual(p1.perplexity, p2.perplexity)

        // layout: header, tokens, rows of nv uint16 per scored token
        let plain = try Data(contentsOf: plainURL)
        let V = base.logitCount, nv = KLDBaseFile.rowStride(vocabulary: V)
        XCTAssertEqual(plain.count, 8 + 12 + 12 * 128 * 4 + 12 * 63 * nv * 2)
        XCTAssertEqual(Array(plain.prefix(8)), Array("_logits_".utf8))
        let zst = try Data(contentsOf: zstURL)
        XCTAssertEqual(Array(zst.prefix(4)), [0x28, 0xB5, 0x2F, 0xFD])
        XCTAssertLessThan(zst.count, plain.count)

        // both read back to the same content
        let r1 = try KLDBaseReader(url: plainURL), r2 = try KLDBaseReader(url: zstURL)
        XCTAssertFalse(r1.compressed); XCTAssertTrue(r2.compressed)
        XCTAssertEqual(r1.context, 128); XCTAssertEqual(r1.vocabulary, V); XCTAssertEqual(r1.chunks, 12)
        XCTAssertEqual(r1.tokens, Array(toks.prefix(12 * 128)))
        XCTAssertEqual(r1.tokens, r2.tokens)
        var a = [UInt16](repeating: 0, count: 63 * nv), b = a
        for c in 0..<12 {
            try a.withUnsafeMutableBufferPointer { try r1.readChunk(into: $0, index: c) }
            try b.withUnsafeMutableBufferPointer { try r2.readChunk(into: $0, index: c) }
            XCTAssertEqual(a, b, "chunk \(c)")
        }
        XCTAssertThrowsError(try a.withUnsafeMutableBufferPointer { try r1.readChunk(into: $0, index: 12) })

        // the base against itself: KLD ≈ 0, same top 100 %, PPL(base) = PPL(Q) up to quantization of the file
        let selfK = try Evaluator.klDivergence(model: base, base: zstURL)
        XCTAssertEqual(selfK.scoredTokens, 12 * 63)
        XCTAssertLessThan(selfK.kld.value, 1e-5)
        XCTAssertEqual(selfK.sameTop.value, 1)
        XCTAssertEqual(selfK.pplBase.value, p1.perplexity, accuracy: p1.perplexity * 1e-4)
        XCTAssertEqual(selfK.pplQ.value, p1.perplexity, accuracy: p1.perplexity * 1e-6)

        // a quantized model against the plain and the compressed file: identical statistics
        let q = try model("tiny-llama-Q4_0.gguf")
        let k1 = try Evaluator.klDivergence(model: q, base: plainURL)
        let k2 = try Evaluator.klDivergence(model: q, base: zstURL)
        XCTAssertEqual(k1.kld, k2.kld)
        XCTAssertEqual(k1.kldDistribution, k2.kldDistribution)
        XCTAssertGreaterThan(k1.kld.value, 0.01)
        XCTAssertLessThan(k1.sameTop.value, 1)
        XCTAssertEqual(k1.perChunk.count, 12)
        XCTAssertEqual(k1.pplBase.value, selfK.pplBase.value, accuracy: 1e-9)
        // Codable round trip (results are stored by a later issue)
        let data = try JSONEncoder().encode(k1)
        XCTAssertEqual(try JSONDecoder().decode(KLDivergenceResult.self, from: data), k1)
    }

    func testQuantizedRowMatchesLlamaCpp() {
        // A hand-checked row: max 2, min clamps to max − 16, scale = 16/65535.
        var logits: [Float] = [2, 0, -30, 1.5, -14]
        var row = [UInt16](repeating: 0xFFFF, count: KLDBaseFile.rowStride(vocabulary: 5))
        XCTAssertEqual(row.count, 10)
        let nll = logits.withUnsafeMutableBufferPointer { lp in
            row.withUnsafeMutableBufferPointer { KLDBaseFile.quantize(logits: lp.baseAddress!, count: 5, token: 1, into: $0.baseAddress!) }
        }
        let scale = row.withUnsafeBytes { $0.load(as: Float.self) }
        let minLP = row.withUnsafeBytes { $0.load(fromByteOffset: 4, as: Float.self) }
        XCTAssertEqual(scale, 16 / 65535)
        XCTAssertEqual(row[4], 65535)                 // the max logit
        XCTAssertEqual(row[6], 0)                     // below min_logit
        XCTAssertEqual(row[8], 0)                     // exactly min_logit (not > min)
        XCTAssertEqual(row[9], 0)                     // padding
        XCTAssertEqual(row[5], UInt16(KLDBaseFile.nearestInt(14 / scale)))
        var sum = 0.0
        for l in logits { sum += Double(expf(l - 2)) }
        XCTAssertEqual(nll, Double(2 + Float(log(sum)) - 0), accuracy: 1e-6)
        XCTAssertEqual(Double(minLP), Double(-16 - Float(log(sum))), accuracy: 1e-6)
    }

    func testRejectsForeignFiles() throws {
        let dir = try Fixtures.tempDir(self)
        let u = dir.appendingPathComponent("x.kld")
        try Data("not a logits file at all".utf8).write(to: u)
        XCTAssertThrowsError(try KLDBaseReader(url: u))
    }
}
