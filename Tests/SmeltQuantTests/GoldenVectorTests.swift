import Foundation
import XCTest
import SmeltFormats
import SmeltQuant
import SmeltTestSupport

/// Runs ggml's golden quantization cases (../shared/test-vectors/manifest.json):
/// for every case whose type Smelt has a kernel for, the quantized bytes and the
/// dequantized floats must be identical to ggml's, bit for bit.
final class GoldenVectorTests: XCTestCase {
    struct Case {
        let type: String, input: String, rows: Int, nPerRow: Int
        let importance: String?, expected: String, dequantized: String, typeId: UInt32
    }

    func loadCases() throws -> (URL, [Case]) {
        let manifest = try Fixtures.sharedFile("test-vectors/manifest.json")
        let root = manifest.deletingLastPathComponent()
        let json = try JSONValue.parse(contentsOf: manifest)
        let cases = try XCTUnwrap(json["cases"]?.arrayValue).map { c in
            Case(type: c["type"]!.stringValue!, input: c["input"]!.stringValue!,
                 rows: c["rows"]!.intValue!, nPerRow: c["n_per_row"]!.intValue!,
                 importance: c["importance"]?.stringValue, expected: c["expected"]!.stringValue!,
                 dequantized: c["dequantized"]!.stringValue!, typeId: UInt32(c["ggml_type_id"]!.intValue!))
        }
        return (root, cases)
    }

    func testGoldenCases() throws {
        let (root, cases) = try loadCases()
        XCTAssertEqual(cases.count, 265)
        var failures: [String] = []
        var ran = 0
        for c in cases {
            guard let type = GGMLType(rawValue: c.typeId) else { failures.append("\(c.expected): unknown type id"); continue }
            guard let kernel = QuantRegistry.kernel(for: type) else { continue }
            ran += 1
            let x = try Fixtures.readFloats(root.appendingPathComponent(c.input))
            let qw = try c.importance.map { try Fixtures.readFloats(root.appendingPathComponent($0)) }
            let expected = try Data(contentsOf: root.appendingPathComponent(c.expected))
            let deq = try Data(contentsOf: root.appendingPathComponent(c.dequantized))
            let rowBytes = type.rowBytes(c.nPerRow)!
            XCTAssertEqual(expected.count, rowBytes * c.rows, c.expected)
            var out = [UInt8](repeating: 0, count: rowBytes * c.rows)
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBytes { op in
                    for r in 0..<c.rows {
                        let w = qw?.withUnsafeBufferPointer { $0.baseAddress }
                        kernel.quantizeRow(xp.baseAddress! + r * c.nPerRow, op.baseAddress! + r * rowBytes,
                                           count: c.nPerRow, importance: w)
                    }
                }
            }
            let exp = [UInt8](expected)
            if out != exp {
                let first = zip(out, exp).enumerated().first { $0.element.0 != $0.element.1 }!.offset
                let blockBytes = type.bytesPerBlock
                failures.append("\(c.expected): first difference at byte \(first) (row \(first / rowBytes), block \((first % rowBytes) / blockBytes), byte \(first % blockBytes) in block)")
            }
            var back = [Float](repeating: 0, count: c.rows * c.nPerRow)
            exp.withUnsafeBytes { ep in
                back.withUnsafeMutableBufferPointer { bp in
                    for r in 0..<c.rows {
                        kernel.dequantizeRow(ep.baseAddress! + r * rowBytes, bp.baseAddress! + r * c.nPerRow, count: c.nPerRow)
                    }
                }
            }
            let want = deq.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
            if let k = zip(back, want).enumerated().first(where: { $0.element.0.bitPattern != $0.element.1 && !($0.element.0.isNaN && Float(bitPattern: $0.element.1).isNaN) })?.offset {
                failures.append("\(c.dequantized): first difference at value \(k) (row \(k / c.nPerRow), block \((k % c.nPerRow) / type.blockSize)): \(back[k]) vs \(Float(bitPattern: want[k]))")
            }
        }
        print("golden vectors: \(ran) of \(cases.count) cases have a kernel, \(failures.count) failures")
        XCTAssertEqual(ran, cases.count, "every ggml type of the manifest has a kernel")
        XCTAssertTrue(failures.isEmpty, "\n" + failures.joined(separator: "\n"))
    }
}
