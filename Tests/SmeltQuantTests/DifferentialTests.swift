import Foundation
import XCTest
import SmeltFormats
import SmeltQuant
import SmeltTestSupport

/// Developer check against a locally built ggml: when `SMELT_QUANT_DIFF_DIR` names a folder
/// holding a `manifest.json` in the golden-vector format (paths relative to that folder),
/// every case with a registered kernel must match byte for byte and bit for bit.
/// Skipped otherwise (CI runs the golden vectors instead).
final class DifferentialTests: XCTestCase {
    func testAgainstLocalGGML() throws {
        guard let dir = ProcessInfo.processInfo.environment["SMELT_QUANT_DIFF_DIR"] else {
            throw XCTSkip("SMELT_QUANT_DIFF_DIR not set")
        }
        let root = URL(fileURLWithPath: dir)
        let json = try JSONValue.parse(contentsOf: root.appendingPathComponent("manifest.json"))
        var failures: [String] = []
        var ran = 0
        for c in try XCTUnwrap(json["cases"]?.arrayValue) {
            let typeId = UInt32(c["ggml_type_id"]!.intValue!)
            guard let type = GGMLType(rawValue: typeId), let kernel = QuantRegistry.kernel(for: type) else { continue }
            let rows = c["rows"]!.intValue!, n = c["n_per_row"]!.intValue!
            let x = try Fixtures.readFloats(root.appendingPathComponent(c["input"]!.stringValue!))
            let qw = try c["importance"]?.stringValue.map { try Fixtures.readFloats(root.appendingPathComponent($0)) }
            let expected = [UInt8](try Data(contentsOf: root.appendingPathComponent(c["expected"]!.stringValue!)))
            let deq = try Data(contentsOf: root.appendingPathComponent(c["dequantized"]!.stringValue!))
            let rowBytes = type.rowBytes(n)!
            var out = [UInt8](repeating: 0, count: rowBytes * rows)
            ran += 1
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBytes { op in
                    for r in 0..<rows {
                        let w = qw?.withUnsafeBufferPointer { $0.baseAddress }
                        kernel.quantizeRow(xp.baseAddress! + r * n, op.baseAddress! + r * rowBytes, count: n, importance: w)
                    }
                }
            }
            let name = c["expected"]!.stringValue!
            if out != expected {
                let first = zip(out, expected).enumerated().first { $0.element.0 != $0.element.1 }!.offset
                failures.append("\(name): byte \(first) (row \(first / rowBytes), block \((first % rowBytes) / type.bytesPerBlock), byte \(first % type.bytesPerBlock))")
            }
            var back = [Float](repeating: 0, count: rows * n)
            expected.withUnsafeBytes { ep in
                back.withUnsafeMutableBufferPointer { bp in
                    for r in 0..<rows {
                        kernel.dequantizeRow(ep.baseAddress! + r * rowBytes, bp.baseAddress! + r * n, count: n)
                    }
                }
            }
            let want = deq.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
            if let k = zip(back, want).enumerated().first(where: {
                $0.element.0.bitPattern != $0.element.1 && !($0.element.0.isNaN && Float(bitPattern: $0.element.1).isNaN)
            })?.offset {
                failures.append("\(name) dequantized: value \(k): \(back[k]) vs \(Float(bitPattern: want[k]))")
            }
        }
        print("differential: \(ran) cases, \(failures.count) failures")
        XCTAssertTrue(failures.isEmpty, "\n" + failures.joined(separator: "\n"))
    }
}
