import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Imatrix files: both formats, written and read back, and llama-quantize's normalisation.
final class ImatrixTests: XCTestCase {
    func sample() -> Imatrix {
        Imatrix(entries: [
            "blk.0.attn_q.weight": .init(sums: [1, 2, 3, 4], counts: [2]),
            "blk.0.ffn_down_exps.weight": .init(sums: [1, 2, 3, 4, 5, 6], counts: [3, 0, 6]),
            "blk.1.unused.weight": .init(sums: [0, 0], counts: [0]),
        ], datasets: ["a.txt", "b.txt"], chunkCount: 7, chunkSize: 512)
    }

    func testGGUFRoundTrip() throws {
        let dir = try Fixtures.tempDir(self)
        let u = dir.appendingPathComponent("im.gguf")
        let im = sample()
        try im.writeGGUF(to: u)
        let back = try Imatrix(url: u)
        XCTAssertEqual(back, im)
        XCTAssertFalse(back.isLegacy); XCTAssertTrue(back.hasMetadata)
        let g = try GGUFFile(url: u)
        XCTAssertEqual(g.metadata.keys, ["general.type", "imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"])
        XCTAssertEqual(g.tensors.map(\.name), ["blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts",
                                              "blk.0.ffn_down_exps.weight.in_sum2", "blk.0.ffn_down_exps.weight.counts",
                                              "blk.1.unused.weight.in_sum2", "blk.1.unused.weight.counts"])
        XCTAssertEqual(g.tensors[2].shape, [2, 3])
        XCTAssertEqual(g.tensors[3].shape, [1, 3])
        let w = back.importanceWeights()
        XCTAssertEqual(w["blk.0.attn_q.weight"], [0.5, 1, 1.5, 2])
        XCTAssertEqual(w["blk.0.ffn_down_exps.weight"], [1.0 / 3, 2.0 / 3, 1, 1, 5.0 / 6, 1])
        XCTAssertEqual(w["blk.1.unused.weight"], [1, 1])
    }

    func testLegacyRoundTrip() throws {
        let dir = try Fixtures.tempDir(self)
        let u = dir.appendingPathComponent("im.dat")
        try sample().writeLegacy(to: u)
        let back = try Imatrix(url: u)
        XCTAssertTrue(back.isLegacy)
        XCTAssertEqual(back.chunkCount, 7)
        XCTAssertEqual(back.datasets, ["b.txt"])
        XCTAssertNil(back.entries["blk.1.unused.weight"], "entries without data are skipped")
        // ncall = ceil(max count / chunk size) = 1; values (sum/count)*ncall
        XCTAssertEqual(back.entries["blk.0.attn_q.weight"], .init(sums: [0.5, 1, 1.5, 2], counts: [1]))
        XCTAssertEqual(back.entries["blk.0.ffn_down_exps.weight"]?.sums, [1.0 / 3, 2.0 / 3, 1, 1, 5.0 / 6, 1])
        XCTAssertEqual(back.importanceWeights()["blk.0.attn_q.weight"], [0.5, 1, 1.5, 2])
        // legacy → legacy is stable, and the bytes follow llama-imatrix's layout
        let u2 = dir.appendingPathComponent("im2.dat")
        var again = back; again.chunkSize = 512
        try again.writeLegacy(to: u2)
        XCTAssertEqual(try Data(contentsOf: u2), try Data(contentsOf: u))
        let d = try Data(contentsOf: u)
        XCTAssertEqual(d.prefix(4), Data([2, 0, 0, 0]))
        XCTAssertEqual(d.count, 4 + (4 + 19 + 4 + 4 + 16) + (4 + 26 + 4 + 4 + 24) + 4 + 4 + 5)
    }

    func testMalformedFilesAreErrors() throws {
        let dir = try Fixtures.tempDir(self)
        let u = dir.appendingPathComponent("bad.dat")
        try Data([1, 0, 0, 0, 100, 0, 0, 0, 65]).write(to: u)
        XCTAssertThrowsError(try Imatrix(url: u))
        try Data([0, 0, 0, 0]).write(to: u)
        XCTAssertThrowsError(try Imatrix(url: u))
    }
}
