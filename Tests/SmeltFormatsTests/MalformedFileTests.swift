import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Hostile and broken files produce errors, never crashes or huge allocations.
final class MalformedFileTests: XCTestCase {
    func validGGUF() throws -> [UInt8] {
        let url = try Fixtures.tempDir(self).appendingPathComponent("ok.gguf")
        let ts = GGUFRoundTripTests.tensors()
        let w = try GGUFWriter(url: url, metadata: GGUFRoundTripTests.allTypesMetadata(), tensors: ts.map(\.0))
        for (_, b) in ts { try w.write(b) }
        try w.finish()
        return [UInt8](try Data(contentsOf: url))
    }

    func parse(_ bytes: [UInt8]) -> Result<GGUFFile, Error> {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("smelt-bad-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
        return Result { try GGUFFile(url: url) }
    }

    func testTruncatedAtEveryHeaderOffsetAndManyDataOffsets() throws {
        let good = try validGGUF()
        guard case let .success(g) = parse(good) else { return XCTFail("valid file did not parse") }
        var cuts = Array(0..<g.dataOffset)
        cuts += stride(from: g.dataOffset, to: good.count, by: 97)
        for n in cuts {
            switch parse(Array(good[0..<n])) {
            case .success: XCTFail("truncation at \(n) of \(good.count) bytes was accepted")
            case let .failure(e): XCTAssertTrue(e is SmeltError, "\(e)")
            }
        }
    }

    func testBitFlipsInHeaderNeverCrash() throws {
        let good = try validGGUF()
        var rng = SplitMix(seed: 42)
        var rejected = 0
        for _ in 0..<3000 {
            var b = good
            let pos = Int(rng.next() % 1200)
            b[pos] ^= UInt8(1 << (rng.next() % 8))
            if case .failure = parse(b) { rejected += 1 }
            // Accepted mutants must still be internally consistent: reading every tensor stays in bounds.
            if case let .success(g) = parse(b) { for t in g.tensors { _ = g.data(for: t).count } }
        }
        XCTAssertGreaterThan(rejected, 100)
    }

    func header(tensors: UInt64, kv: UInt64, rest: [UInt8] = []) -> [UInt8] {
        var b: [UInt8] = Array("GGUF".utf8)
        for v in [UInt32(3)] { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        for v in [tensors, kv] { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        return b + rest
    }
    func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    func testHugeCountsAndSizes() {
        let cases: [(String, [UInt8])] = [
            ("huge kv count", header(tensors: 0, kv: UInt64.max)),
            ("huge tensor count", header(tensors: 1 << 60, kv: 0)),
            ("huge string length", header(tensors: 0, kv: 1, rest: u64(UInt64.max) + Array("k".utf8))),
            ("huge array", header(tensors: 0, kv: 1, rest: u64(1) + Array("k".utf8) + u32(9) + u32(4) + u64(1 << 62))),
            ("negative-looking array length", header(tensors: 0, kv: 1, rest: u64(1) + Array("k".utf8) + u32(9) + u32(8) + u64(UInt64.max))),
            ("bad value type", header(tensors: 0, kv: 1, rest: u64(1) + Array("k".utf8) + u32(99) + u32(0))),
            ("bad bool", header(tensors: 0, kv: 1, rest: u64(1) + Array("k".utf8) + u32(7) + [2])),
            ("too many dims", header(tensors: 1, kv: 0, rest: u64(1) + Array("t".utf8) + u32(5) + Array(repeating: 0, count: 64))),
            ("overflowing shape", header(tensors: 1, kv: 0, rest: u64(1) + Array("t".utf8) + u32(2) + u64(1 << 40) + u64(1 << 40) + u32(0) + u64(0) + Array(repeating: 0, count: 32))),
            ("unknown ggml type", header(tensors: 1, kv: 0, rest: u64(1) + Array("t".utf8) + u32(1) + u64(4) + u32(5) + u64(0) + Array(repeating: 0, count: 32))),
            ("data past the end", header(tensors: 1, kv: 0, rest: u64(1) + Array("t".utf8) + u32(1) + u64(1000) + u32(0) + u64(0) + Array(repeating: 0, count: 32))),
            ("misaligned offset", header(tensors: 1, kv: 0, rest: u64(1) + Array("t".utf8) + u32(1) + u64(1) + u32(0) + u64(3) + Array(repeating: 0, count: 64))),
            ("row not a whole block", header(tensors: 1, kv: 0, rest: u64(1) + Array("t".utf8) + u32(1) + u64(33) + u32(2) + u64(0) + Array(repeating: 0, count: 64))),
            // found by `make fuzz`: an empty tensor whose data section would start past the end
            ("data section past the end", header(tensors: 1, kv: 0, rest: u64(0) + u32(3) + u64(2) + u64(0) + u64(0) + u32(0) + u64(0)
                                                 + [0, 0x03, 0, 0, 0, 0x02, 0, 0x2c, 0, 0, 0, 0x6d, 0, 0, 0x08])),
            ("bad magic", Array("GGML".utf8) + Array(repeating: 0, count: 20)),
            ("version 1", Array("GGUF".utf8) + u32(1) + Array(repeating: 0, count: 16)),
            ("empty", []),
        ]
        for (what, bytes) in cases {
            if case .success = parse(bytes) { XCTFail("\(what) was accepted") }
        }
        // duplicate keys
        let dup = header(tensors: 0, kv: 2, rest: u64(1) + Array("k".utf8) + u32(0) + [1] + u64(1) + Array("k".utf8) + u32(0) + [2])
        if case .success = parse(dup) { XCTFail("duplicate key accepted") }
    }

    func testErrorsNameTheFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("named-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        FileManager.default.createFile(atPath: url.path, contents: Data(header(tensors: 0, kv: 1)))
        XCTAssertThrowsError(try GGUFFile(url: url)) { e in
            XCTAssertTrue("\(e)".contains(url.lastPathComponent), "\(e)")
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
    }
}
