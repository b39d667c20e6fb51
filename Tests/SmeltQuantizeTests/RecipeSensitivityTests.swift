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
        let key = try Sensitivity.errorKey(source: source, importance: [:])
        let url = Sensitivity.cacheURL(folder: dir, key: key)
        table.key = key
        table.kld["k"] = KLDMeasurements(model: "m", conditions: "text t, -c 64, 2 chunks", groups: ["attn_v.first": [.q4_0: 0.01]])
        try Sensitivity.saveCache(table, url)
        let back = Sensitivity.loadCache(url, key: key)
        XCTAssertEqual(back.entries.count, table.entries.count)
        XCTAssertEqual(back[source.tensors[idx[0]].name, .q4_0], table[source.tensors[idx[0]].name, .q4_0])
        XCTAssertEqual(back.kld["k"], table.kld["k"])
        XCTAssertEqual(back.kldSets(model: "m").count, 1)
        XCTAssertEqual(back.kldSets(model: "other").count, 0)
        // A file read under another key (or of another version) is not used.
        XCTAssertTrue(Sensitivity.loadCache(url, key: "x").entries.isEmpty)
        // Cached pairs are not measured again.
        var again = back
        try Sensitivity.measureErrors(source: source, tensors: idx, types: [.q4_0], importance: [:], table: &again, maxRows: 64)
        XCTAssertEqual(again[source.tensors[idx[0]].name, .q4_0], back[source.tensors[idx[0]].name, .q4_0])
        XCTAssertEqual(Budget.group(of: "blk.0.attn_v.weight", nLayer: 16), "attn_v.first")
        XCTAssertEqual(Budget.group(of: "blk.14.ffn_down.weight", nLayer: 16), "ffn_down.last")
        XCTAssertEqual(Budget.group(of: "blk.7.ffn_up.weight", nLayer: 16), "ffn_up.middle")
    }

    /// The error key covers what a measurement reads: the same inputs give the same key; the
    /// sampled rows' values, the importance weights and the rows sampled each change it.
    func testErrorKeyCoversWhatAMeasurementReads() throws {
        let input = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let source = try GGUFTensorSource(url: input)
        let k = try Sensitivity.errorKey(source: source, importance: [:])
        XCTAssertEqual(try Sensitivity.errorKey(source: try GGUFTensorSource(url: input), importance: [:]), k)
        let v = try XCTUnwrap(source.tensors.first { $0.name == "blk.0.attn_v.weight" })
        var w = [Float](repeating: 1, count: v.rowLength)
        let kw = try Sensitivity.errorKey(source: source, importance: [v.name: w])
        XCTAssertNotEqual(kw, k)
        w[3] = 2
        XCTAssertNotEqual(try Sensitivity.errorKey(source: source, importance: [v.name: w]), kw)
        XCTAssertNotEqual(try Sensitivity.errorKey(source: source, importance: [:], maxRows: 8), k)
        // one float of a sampled row changed (row 0 is always sampled)
        let dir = try Fixtures.tempDir(self)
        let copy = dir.appendingPathComponent("m.gguf")
        var bytes = try Data(contentsOf: input)
        let f = try GGUFFile(url: input)
        let info = try XCTUnwrap(f.tensors.first { $0.name == v.name })
        let at = f.fileOffset(of: info) + 4 * 5
        bytes[at] ^= 0x01
        try bytes.write(to: copy)
        XCTAssertNotEqual(try Sensitivity.errorKey(source: try GGUFTensorSource(url: copy), importance: [:]), k)
        XCTAssertNotEqual(try Sensitivity.contentKey(try GGUFTensorSource(url: copy)), try Sensitivity.contentKey(source))
    }
}
