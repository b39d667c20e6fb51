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
            // input rows are released in runs of about 16 MiB (1,024 rows of 16 KiB here), not chunk
            // by chunk (132 chunks of 16 rows), and each piece once more as a whole when it is done
            XCTAssertLessThanOrEqual(src.releasedRows.count, 8, "\(threads) threads: releases \(src.releasedRows)")
            for r in src.releasedRows { XCTAssertLessThanOrEqual(r.count, 2048, "a release run of \(r)") }
            // the pieces: releases not inside another one
            let pieces = src.releasedRows.filter { r in
                !src.releasedRows.contains { $0 != r && $0.lowerBound <= r.lowerBound && r.upperBound <= $0.upperBound }
            }.sorted { $0.lowerBound < $1.lowerBound }
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

    /// A bf16 tensor held in memory (`rawData`) goes into q8_0 / q4_0 through the fused kernel
    /// (no `readRows`), with the bytes of the float path; a NaN stops the fused kernel at its
    /// row, which the float path then reports (row and column) or, with `allowNonfinite`, writes.
    func testBF16RowsGoStraightIntoQ8_0AndQ4_0() throws {
        final class BF16: TensorSource, @unchecked Sendable {
            let metadata: GGUFMetadata
            let tensors: [SourceTensor]
            var bits: [UInt16]
            let n = 512, rows = 1000
            let lock = NSLock()
            var reads: [Range<Int>] = []
            init() {
                var md = GGUFMetadata()
                md["general.architecture"] = .string("llama")
                md["llama.block_count"] = .uint32(1)
                metadata = md
                tensors = [SourceTensor(name: "blk.0.ffn_down.weight", shape: [n, rows], type: .bf16)]
                var rng = SplitMix(seed: 5)
                bits = (0..<(n * rows)).map { _ in UInt16(truncatingIfNeeded: Float(rng.uniform() * 2 - 1).bitPattern >> 16) }
            }
            func rawData(_ index: Int) -> UnsafeRawBufferPointer? { bits.withUnsafeBytes { UnsafeRawBufferPointer($0) } }
            func release(_ index: Int) {}
            func readRows(_ index: Int, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) throws {
                lock.lock(); reads.append(rows); lock.unlock()
                for (j, i) in ((rows.lowerBound * n)..<(rows.upperBound * n)).enumerated() { dst[j] = Float(bitPattern: UInt32(bits[i]) << 16) }
            }
            var floats: [Float] { bits.map { Float(bitPattern: UInt32($0) << 16) } }
        }
        let src = BF16()
        let dir = try Fixtures.tempDir(self)
        func expected(_ type: GGMLType) throws -> [UInt8] {
            let k = try XCTUnwrap(QuantRegistry.kernel(for: type))
            let rb = try XCTUnwrap(type.rowBytes(src.n))
            var want = [UInt8](repeating: 0, count: rb * src.rows)
            src.floats.withUnsafeBufferPointer { v in
                want.withUnsafeMutableBytes { ob in
                    for r in 0..<src.rows { k.quantizeRow(v.baseAddress! + r * src.n, ob.baseAddress! + r * rb, count: src.n, importance: nil) }
                }
            }
            return want
        }
        func run(_ preset: LlamaPreset, allowNonfinite: Bool = false) throws -> [UInt8] {
            var req = QuantizeRequest(preset: preset); req.threads = 2; req.allowNonfinite = allowNonfinite
            let out = dir.appendingPathComponent("bf16-\(preset).gguf")
            try Quantizer.run(source: src, output: out, request: req)
            let g = try GGUFFile(url: out)
            let o = try XCTUnwrap(g.tensor(named: "blk.0.ffn_down.weight"))
            return Array(g.data(for: o))
        }
        for (preset, type) in [(LlamaPreset.Q8_0, GGMLType.q8_0), (.Q4_0, .q4_0)] {
            src.reads = []
            XCTAssertEqual(try run(preset), try expected(type), "\(type): the float path's bytes")
            XCTAssertEqual(src.reads, [], "\(type): no float32 copy of a bf16 tensor")
        }
        // a NaN in row 700, column 3
        src.bits[700 * src.n + 3] = 0x7FC0
        for (preset, type) in [(LlamaPreset.Q8_0, GGMLType.q8_0), (.Q4_0, .q4_0)] {
            src.reads = []
            XCTAssertThrowsError(try run(preset)) { e in
                XCTAssertTrue("\(e)".contains("row 700") && "\(e)".contains("column 3"), "\(e)")
            }
            XCTAssertEqual(src.reads.first?.lowerBound, 700, "the float path takes over at the unfinished row")
            XCTAssertEqual(try run(preset, allowNonfinite: true), try expected(type), "\(type) with a NaN, --allow-nonfinite")
        }
    }
}
