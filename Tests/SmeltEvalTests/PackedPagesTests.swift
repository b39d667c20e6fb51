import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport
@testable import SmeltEval

/// A repacked weight matrix does not keep its mapped rows resident too: after `packBF16` /
/// `packInt` the process holds the packed copy, not the packed copy and the file's pages.
final class PackedPagesTests: XCTestCase {
    static func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
        return kb * 1024
    }

    func testRepackedMatrixReleasesItsMappedRows() throws {
        let dir = try Fixtures.tempDir(self)
        let rows = 4096, cols = 4096   // 32 MiB of bf16
        let url = dir.appendingPathComponent("w.gguf")
        let desc = GGUFTensorDescriptor(name: "w", shape: [cols, rows], type: .bf16)
        var md = GGUFMetadata()
        md["general.architecture"] = .string("llama")
        let writer = try GGUFWriter(files: [GGUFWriter.FilePlan(url: url, metadata: md, tensors: [desc])], hashContent: false)
        var bits = [UInt16](repeating: 0, count: rows * cols)
        for i in bits.indices { bits[i] = 0x3F80 &+ UInt16(truncatingIfNeeded: i % 97) }  // 1.0 … 1.75
        try bits.withUnsafeBytes { try writer.write($0) }
        try writer.finish()
        bits = []
        let file = try GGUFFile(url: url)
        let t = try XCTUnwrap(file.tensor(named: "w"))
        let raw = try XCTUnwrap(file.data(for: t).baseAddress)
        let m = try WeightMatrix(name: "w", rows: rows, cols: cols, type: .bf16, raw: raw, owner: file)
        var sum = 0
        for i in stride(from: 0, to: rows * cols * 2, by: 4096) { sum &+= Int(raw.load(fromByteOffset: i, as: UInt8.self)) }
        XCTAssertGreaterThan(sum, 0)
        let before = Self.residentBytes()
        XCTAssertGreaterThan(before, 32 << 20, "the mapped rows are resident")
        m.packBF16(threads: 2)
        let packed = try XCTUnwrap(m.packedBF16).byteCount
        let after = Self.residentBytes()
        // packed copy in, mapped rows out: about level (before the release: +32 MiB)
        XCTAssertLessThan(after - before, packed / 2, "resident \(before >> 20) → \(after >> 20) MiB with \(packed >> 20) MiB packed")
        // the rows still read correctly (mapped again from the page cache)
        XCTAssertEqual(raw.load(fromByteOffset: 2 * (cols * 5 + 7), as: UInt16.self), 0x3F80 &+ UInt16((cols * 5 + 7) % 97))

        // a float32 cache of the same rows (the f16 / other-type path): 64 MiB in, the 32 MiB mapped out
        let c = try WeightMatrix(name: "w", rows: rows, cols: cols, type: .bf16, raw: raw, owner: file)
        sum = 0
        for i in stride(from: 0, to: rows * cols * 2, by: 4096) { sum &+= Int(raw.load(fromByteOffset: i, as: UInt8.self)) }
        XCTAssertGreaterThan(sum, 0)
        let before2 = Self.residentBytes()
        c.cache(threads: 2)
        let after2 = Self.residentBytes()
        XCTAssertLessThan(after2 - before2, c.floatBytes * 3 / 4, "resident \(before2 >> 20) → \(after2 >> 20) MiB with a 64 MiB cache")
        var row = [Float](repeating: 0, count: cols)
        c.dequantize(rows: 5..<6, into: &row)
        XCTAssertEqual(row[7], Float(bitPattern: UInt32(0x3F80 &+ UInt16((cols * 5 + 7) % 97)) << 16))
    }
}
