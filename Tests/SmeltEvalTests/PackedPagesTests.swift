import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport
@testable import SmeltEval

/// Weights are resident once: a bf16 matrix is multiplied on its mapped rows (`useBF16Product`
/// copies nothing), a float32 cache replaces the file's pages instead of adding to them.
final class PackedPagesTests: XCTestCase {
    static func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
        return kb * 1024
    }

    func testWeightsAreResidentOnce() throws {
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
        m.useBF16Product()
        let product = try XCTUnwrap(m.bf16Product)
        XCTAssertEqual(UnsafeRawPointer(product.data), raw, "the product reads the mapped rows themselves")
        let after = Self.residentBytes()
        // nothing copied, nothing released: the 32 MiB stay as they were
        XCTAssertLessThan(abs(after - before), 4 << 20, "resident \(before >> 20) → \(after >> 20) MiB")
        XCTAssertEqual(raw.load(fromByteOffset: 2 * (cols * 5 + 7), as: UInt16.self), 0x3F80 &+ UInt16((cols * 5 + 7) % 97))

        // a quantized matrix (q8_0, 17 MiB): the integer product decodes blocks of rows into scratch
        // during each product; a decoded copy of the whole matrix would be 16 MiB of int8
        let qBytes = try XCTUnwrap(GGMLType.q8_0.rowBytes(cols)) * rows
        let qRaw = UnsafeMutableRawPointer.allocate(byteCount: qBytes, alignment: 64)
        defer { qRaw.deallocate() }
        for i in 0..<qBytes { qRaw.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
        for b in stride(from: 0, to: qBytes, by: 34) { qRaw.storeBytes(of: UInt16(0x2000), toByteOffset: b, as: UInt16.self) }  // scale 2⁻¹⁵ per block
        let qm = try WeightMatrix(name: "q", rows: rows, cols: cols, type: .q8_0, raw: UnsafeRawPointer(qRaw), owner: nil)
        let x = [Float](repeating: 0.5, count: 2 * cols)
        var y = [Float](repeating: .nan, count: 2 * rows)
        let ws = Workspace()
        let beforeQ = Self.residentBytes()
        qm.useIntProduct()
        let intProduct = try XCTUnwrap(qm.packedInt)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
            intProduct.multiply(xp.baseAddress!, m: 2, out: $0.baseAddress!, ldc: rows, threads: 2, workspace: ws)
        } }
        let afterQ = Self.residentBytes()
        XCTAssertLessThan(afterQ - beforeQ, 8 << 20, "resident \(beforeQ >> 20) → \(afterQ >> 20) MiB")
        XCTAssertFalse(y.contains { !$0.isFinite })

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
