import Foundation
import XCTest
import SmeltFormats
import SmeltQuantize
import SmeltTestSupport

/// Sensitivity measurements and their cache.
final class RecipeSensitivityTests: XCTestCase {
    func testWeightedErrorsOrderTypesAndCacheRoundTrips() throws {
        let input = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let source = try GGUFTensorSource(url: input)
        let idx = source.tensors.indices.filter { source.tensors[$0].name.hasSuffix("attn_v.weight") || source.tensors[$0].name == "output.weight" }
        var table = SensitivityTable()
        try Sensitivity.measureErrors(source: source, tensors: idx, types: [.q4_0, .q5_0, .q8_0, .q4_K, .q6_K],
                                      importance: [:], table: &table, maxRows: 64, threads: 2)
        for i in idx {
            let n = source.tensors[i].name
            let e4 = try XCTUnwrap(table[n, .q4_0]), e5 = try XCTUnwrap(table[n, .q5_0]), e8 = try XCTUnwrap(table[n, .q8_0])
            XCTAssertGreaterThan(e4.relativeError, e5.relativeError, n)
            XCTAssertGreaterThan(e5.relativeError, e8.relativeError, n)
            XCTAssertEqual(e4.bytes, GGUF.byteCount(shape: source.tensors[i].shape, type: .q4_0))
            XCTAssertNotNil(table[n, .q6_K], n)
        }
        let dir = try Fixtures.tempDir(self)
        let url = Sensitivity.cacheURL(folder: dir, modelKey: Sensitivity.modelKey(source), imatrixKey: "none")
        table.groupKLD["attn_v.first"] = [.q4_0: 0.01]
        try Sensitivity.saveCache(table, url)
        let back = Sensitivity.loadCache(url)
        XCTAssertEqual(back.entries.count, table.entries.count)
        XCTAssertEqual(back[source.tensors[idx[0]].name, .q4_0], table[source.tensors[idx[0]].name, .q4_0])
        XCTAssertEqual(back.groupKLD["attn_v.first"]?[.q4_0], 0.01)
        // Cached pairs are not measured again.
        var again = back
        try Sensitivity.measureErrors(source: source, tensors: idx, types: [.q4_0], importance: [:], table: &again, maxRows: 64)
        XCTAssertEqual(again[source.tensors[idx[0]].name, .q4_0], back[source.tensors[idx[0]].name, .q4_0])
        XCTAssertEqual(Budget.group(of: "blk.0.attn_v.weight", nLayer: 16), "attn_v.first")
        XCTAssertEqual(Budget.group(of: "blk.14.ffn_down.weight", nLayer: 16), "ffn_down.last")
        XCTAssertEqual(Budget.group(of: "blk.7.ffn_up.weight", nLayer: 16), "ffn_up.middle")
    }
}
