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
}
