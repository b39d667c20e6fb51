import Foundation
import XCTest
import SmeltConvert
import SmeltFormats
import SmeltTestSupport

/// Bad checkpoints fail with one line naming the problem and leave no output file.
final class ConvertErrorTests: XCTestCase {
    /// A copy of tiny-llama whose files the test may break.
    func copyOfTinyLlama() throws -> URL {
        let src = try Fixtures.sharedFile("models/tiny/tiny-llama")
        let dst = try Fixtures.tempDir(self).appendingPathComponent("model")
        try FileManager.default.copyItem(at: src, to: dst)
        for f in try FileManager.default.contentsOfDirectory(atPath: dst.path) {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: dst.appendingPathComponent(f).path)
        }
        return dst
    }

    func assertFails(_ folder: URL, containing needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let outDir = try Fixtures.tempDir(self)
        let out = outDir.appendingPathComponent("out.gguf")
        XCTAssertThrowsError(try Converter.write(ConversionPlan(folder: folder, outType: .f16), to: out, progress: false), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(needle), "\(e)", file: file, line: line)
            XCTAssertFalse("\(e)".contains("\n"), "one line", file: file, line: line)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), [], "nothing left behind", file: file, line: line)
    }

    func testUnknownArchitectureListsSupportedOnes() throws {
        let dir = try copyOfTinyLlama()
        let cfg = dir.appendingPathComponent("config.json")
        let text = try String(contentsOf: cfg, encoding: .utf8).replacingOccurrences(of: "LlamaForCausalLM", with: "FancyNewForCausalLM")
        try text.write(to: cfg, atomically: true, encoding: .utf8)
        try assertFails(dir, containing: "unsupported architecture FancyNewForCausalLM (supported: ")
    }

    func testTruncatedSafetensors() throws {
        let dir = try copyOfTinyLlama()
        let st = dir.appendingPathComponent("model.safetensors")
        let h = try FileHandle(forWritingTo: st)
        try h.truncate(atOffset: 3_000_000)
        try h.close()
        try assertFails(dir, containing: "model.safetensors")
    }

    func testUnmappableTensor() throws {
        let dir = try copyOfTinyLlama()
        let w = try SafetensorsWriter(url: dir.appendingPathComponent("extra.safetensors"),
                                      tensors: [.init(name: "model.mystery.weight", dtype: .F32, shape: [2])])
        try w.write([UInt8](repeating: 0, count: 8))
        try w.finish()
        try assertFails(dir, containing: "'model.mystery.weight'")
    }

    func testMissingConfig() throws {
        let dir = try copyOfTinyLlama()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        try assertFails(dir, containing: "no config.json")
    }
}
