import Foundation
import XCTest
import SmeltFormats
import SmeltQuant
import SmeltQuantize
import SmeltTestSupport

/// A 2-D tensor larger than the CPU path's piece size is computed and written in pieces of
/// whole chunks (two small buffers instead of two whole tensors) with unchanged bytes.
final class LargeTensorPiecesTests: XCTestCase {
    func testLargeTensorIsWrittenInPiecesWithTheSameBytes() throws {
        final class Big: TensorSource, @unchecked Sendable {
            let metadata: GGUFMetadata
            let tensors: [SourceTensor]
            let values: [Float]
            let lock = NSLock()
            var reads: [Range<Int>] = []
            var releasedRows: [Range<Int>] = []
            init(rows: Int) {
                var md = GGUFMetadata()
                md["general.architecture"] = .string("llama")
                md["llama.block_count"] = .uint32(1)
                metadata = md
                tensors = [SourceTensor(name: "blk.0.ffn_down.weight", shape: [4096, rows], type: .f32)]
                var rng = SplitMix(seed: 11)
                values = (0..<(4096 * rows)).map { _ in Float(rng.uniform() * 2 - 1) }
            }
            func rawData(_ index: Int) -> UnsafeRawBufferPointer? { nil }
            func release(_ index: Int) {}
            func release(_ index: Int, rows: Range<Int>) { lock.lock(); releasedRows.append(rows); lock.unlock() }
            func readRows(_ index: Int, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) throws {
                lock.lock(); reads.append(rows); lock.unlock()
                values.withUnsafeBufferPointer { dst.update(from: $0.baseAddress! + rows.lowerBound * 4096, count: rows.count * 4096) }
            }
        }
        // 2,112 rows of q8_0 (4,352 bytes each) are 9.2 MB of output: more than one 8 MiB piece
        let rows = 2112
        let src = Big(rows: rows)
        let dir = try Fixtures.tempDir(self)
        for threads in [1, 2] {
            src.reads = []; src.releasedRows = []
            var req = QuantizeRequest(preset: .Q8_0); req.threads = threads
            let out = dir.appendingPathComponent("big-t\(threads).gguf")
            try Quantizer.run(source: src, output: out, request: req)
            let pieces = src.releasedRows.filter { $0.count > 64 }.sorted { $0.lowerBound < $1.lowerBound }
            XCTAssertGreaterThanOrEqual(pieces.count, 2, "\(threads) threads: the tensor is cut into pieces: \(pieces)")
            XCTAssertEqual(pieces.first?.lowerBound, 0)
            XCTAssertEqual(pieces.last?.upperBound, rows)
            for (a, b) in zip(pieces, pieces.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound, "pieces are contiguous") }
            for p in pieces { XCTAssertLessThanOrEqual(p.count * 4352, 8 << 20, "a piece holds at most 8 MiB of output") }
            for r in src.reads {
                XCTAssertTrue(pieces.contains { $0.contains(r.lowerBound) && $0.contains(r.upperBound - 1) }, "read \(r) crosses a piece")
            }
            let g = try GGUFFile(url: out)
            let o = try XCTUnwrap(g.tensor(named: "blk.0.ffn_down.weight"))
            XCTAssertEqual(o.type, .q8_0)
            let k = try XCTUnwrap(QuantRegistry.kernel(for: .q8_0))
            var want = [UInt8](repeating: 0, count: 4352 * rows)
            src.values.withUnsafeBufferPointer { v in
                want.withUnsafeMutableBytes { ob in
                    for r in 0..<rows { k.quantizeRow(v.baseAddress! + r * 4096, ob.baseAddress! + r * 4352, count: 4096, importance: nil) }
                }
            }
            XCTAssertTrue(g.data(for: o).elementsEqual(want), "\(threads) threads: bytes as row by row")
        }
    }
}
