import Foundation
import XCTest
import SmeltEval
import SmeltFormats
import SmeltTestSupport

/// The default calibration text is built into the binary (scripts/gen-calibration-text.py).
final class CalibrationTextTests: XCTestCase {
    func testEmbeddedTextEqualsTheFile() throws {
        let file = Fixtures.repoRoot.appendingPathComponent("calibration-data/calibration_data_v5_rc.txt")
        XCTAssertEqual(Array(CalibrationText.text.utf8), Array(try Data(contentsOf: file)))
        XCTAssertEqual(CalibrationText.name, file.lastPathComponent)
    }

    /// `smelt imatrix` without -f, run from a folder that has no calibration-data/: it uses the built-in text.
    func testImatrixWithoutFileAnywhere() throws {
        let model = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let dir = try Fixtures.tempDir(self)
        let r = try SmeltBinary.run(["imatrix", "-m", model.path, "-c", "128", "--chunks", "2", "-t", "2", "-o", "im.gguf"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let im = try Imatrix(url: dir.appendingPathComponent("im.gguf"))
        XCTAssertEqual(im.datasets, ["calibration_data_v5_rc.txt"])
        XCTAssertEqual(im.chunkCount, 2)
    }
}
