import Foundation
import XCTest
@testable import SmeltFormats
import SmeltTestSupport

/// `OutputGuard`, `TemporaryFiles` and `NonFinite` on their own (the command-line behaviour is in
/// SmeltCLITests).
final class OutputSafetyTests: XCTestCase {
    func testOutputGuard() throws {
        let dir = try Fixtures.tempDir(self)
        let input = dir.appendingPathComponent("in.gguf")
        try Data("x".utf8).write(to: input)
        let folder = dir.appendingPathComponent("ck")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let hard = dir.appendingPathComponent("hard.gguf")
        try FileManager.default.linkItem(at: input, to: hard)
        let soft = dir.appendingPathComponent("soft.gguf")
        try FileManager.default.createSymbolicLink(at: soft, withDestinationURL: input)
        let refused: [(URL, [URL])] = [
            (input, [input]), (dir.appendingPathComponent("./in.gguf"), [input]), (hard, [input]), (soft, [input]),
            (folder, [folder]), (folder.appendingPathComponent("model.safetensors"), [folder]),
            (folder.appendingPathComponent("sub/deeper.gguf"), [folder]),
        ]
        for (out, ins) in refused {
            XCTAssertThrowsError(try OutputGuard.check(output: out, inputs: ins), "\(out.path) accepted")
        }
        // a sibling whose name starts like the folder's is not inside it
        XCTAssertNoThrow(try OutputGuard.check(output: dir.appendingPathComponent("ck2.gguf"), inputs: [folder, input]))
        XCTAssertNoThrow(try OutputGuard.check(output: dir.appendingPathComponent("new.gguf"), inputs: [input]))
    }

    func testTemporaryNames() {
        XCTAssertEqual(TemporaryFiles.ownerPID(".out.gguf.smelt-1234-99.tmp"), 1234)
        XCTAssertEqual(TemporaryFiles.ownerPID(".hf.smelt-77.tmp"), 77)
        XCTAssertEqual(TemporaryFiles.ownerPID(".a.smelt-backup.tmp"), nil)
        XCTAssertEqual(TemporaryFiles.ownerPID("out.gguf.smelt-12-1.tmp"), nil)   // not hidden: not ours
        XCTAssertEqual(TemporaryFiles.ownerPID(".out.gguf.smelt-12-x.tmp"), nil)
        XCTAssertEqual(TemporaryFiles.ownerPID(".out.gguf.smelt-0-1.tmp"), nil)
        let u = TemporaryFiles.name(for: URL(fileURLWithPath: "/tmp/model.gguf"))
        XCTAssertEqual(TemporaryFiles.ownerPID(u.lastPathComponent), getpid())
    }

    func testNonFinite() {
        var v: [Float] = [1, 2, 3, .nan, .infinity]
        XCTAssertEqual(v.withUnsafeBufferPointer { NonFinite.first($0.baseAddress!, count: 3) }?.0, nil)
        XCTAssertEqual(v.withUnsafeBufferPointer { NonFinite.first($0.baseAddress!, count: 5) }?.0, 3)
        v[3] = -.infinity
        XCTAssertEqual(v.withUnsafeBufferPointer { NonFinite.first($0.baseAddress!, count: 5) }?.1, -.infinity)
        // f16 and bf16 rows: the row and column of the first bad value
        let f16: [UInt16] = [0x3C00, 0x3C00, 0x3C00, 0x7C00]   // 1, 1, 1, +inf
        let r = f16.withUnsafeBytes { NonFinite.firstInRows($0, type: .f16, rowLength: 2) }
        XCTAssertEqual(r?.0, 1); XCTAssertEqual(r?.1, 1)
        let bf16: [UInt16] = [0x3F80, 0x7FC0]                   // 1, nan
        XCTAssertEqual(bf16.withUnsafeBytes { NonFinite.firstInRows($0, type: .bf16, rowLength: 1) }?.0, 1)
        XCTAssertNil(f16.withUnsafeBytes { NonFinite.firstInRows($0, type: .q8_0, rowLength: 2) })
    }

    /// The scans step 64 values at a time: every position around the step boundaries, lengths that
    /// are not multiples of the step, the first of two bad values, and finite values whose exponent is
    /// nearly all ones (largest normals) must give what a value-by-value scan gives.
    func testNonFiniteScanAtEveryPosition() {
        for n in [1, 63, 64, 65, 127, 128, 200, 1000] {
            for bad in Array(0..<min(n, 70)) + [n - 1, n / 2] {
                var f = [Float](repeating: 1, count: n)
                for i in stride(from: 0, to: n, by: 3) { f[i] = Float.greatestFiniteMagnitude }
                f[bad] = bad % 2 == 0 ? .nan : -.infinity
                if bad + 5 < n { f[bad + 5] = .nan }
                let got = f.withUnsafeBufferPointer { NonFinite.first($0.baseAddress!, count: n) }
                XCTAssertEqual(got?.0, bad, "f32 n=\(n) bad=\(bad)")
                var h = [UInt16](repeating: 0x3C00, count: n), b = [UInt16](repeating: 0x3F80, count: n)
                for i in stride(from: 0, to: n, by: 3) { h[i] = 0x7BFF; b[i] = 0x7F7F }   // largest finite
                h[bad] = 0xFC00; b[bad] = 0x7FC1
                let rh = h.withUnsafeBytes { NonFinite.firstInRows($0, type: .f16, rowLength: 7) }
                let rb = b.withUnsafeBytes { NonFinite.firstInRows($0, type: .bf16, rowLength: 7) }
                XCTAssertEqual(rh.map { $0.0 * 7 + $0.1 }, bad, "f16 n=\(n) bad=\(bad)")
                XCTAssertEqual(rh?.2, -.infinity)
                XCTAssertEqual(rb.map { $0.0 * 7 + $0.1 }, bad, "bf16 n=\(n) bad=\(bad)")
                XCTAssertTrue(rb?.2.isNaN ?? false)
            }
            let clean = [Float](repeating: Float.greatestFiniteMagnitude, count: n)
            XCTAssertNil(clean.withUnsafeBufferPointer { NonFinite.first($0.baseAddress!, count: n) })
        }
    }

    /// Direct writes of whole blocks, a partial flush in the middle (the rest goes through the page
    /// cache), odd tails; on a disk folder, on tmpfs (which refuses O_DIRECT) and with SMELT_DIRECT_IO=0:
    /// the same bytes.
    func testDirectWritesKeepEveryByte() throws {
        var g = SplitMix(seed: 3)
        let pieces = [5_000_001, 8 << 20, 4096, 3, 12_345_678]
        var data = [UInt8](repeating: 0, count: pieces.reduce(0, +))
        data.withUnsafeMutableBytes { b in for i in stride(from: 0, to: b.count - 7, by: 8) { b.storeBytes(of: g.next(), toByteOffset: i, as: UInt64.self) } }
        var folders = [FileManager.default.temporaryDirectory]
        if FileManager.default.fileExists(atPath: "/dev/shm") { folders.append(URL(fileURLWithPath: "/dev/shm")) }
        for (fi, folder) in folders.enumerated() {
            for env in ["1", "0"] {
                setenv("SMELT_DIRECT_IO", env, 1)
                defer { unsetenv("SMELT_DIRECT_IO") }
                let u = folder.appendingPathComponent("smelt-direct-\(UUID().uuidString).bin")
                defer { try? FileManager.default.removeItem(at: u) }
                let out = try OutputFile(url: u)
                var off = 0
                for (i, n) in pieces.enumerated() {
                    try data.withUnsafeBytes { try out.write(UnsafeRawBufferPointer(rebasing: $0[off..<(off + n)])) }
                    off += n
                    if i == 0 { try out.flush() }
                }
                try out.commit()
                XCTAssertEqual(out.sha256, SHA256Hasher.hex(data), "folder \(fi) SMELT_DIRECT_IO=\(env)")
                XCTAssertEqual(try Data(contentsOf: u), Data(data), "folder \(fi) SMELT_DIRECT_IO=\(env)")
            }
        }
    }
}
