import Foundation
import XCTest
import SmeltFormats
import SmeltQuant
import SmeltTestSupport
@testable import SmeltGPU

/// ggml's golden quantization cases (../shared/test-vectors) on the GPU: every case whose type
/// has a GPU kernel gives ggml's bytes, and the GPU dequantization gives ggml's floats.
final class GPUGoldenVectorTests: XCTestCase {
    struct Case {
        let type: GGMLType, input: String, rows: Int, nPerRow: Int
        let importance: String?, expected: String, dequantized: String
    }

    static func loadCases() throws -> (URL, [Case]) {
        let manifest = try Fixtures.sharedFile("test-vectors/manifest.json")
        let root = manifest.deletingLastPathComponent()
        let json = try JSONValue.parse(contentsOf: manifest)
        let cases = try XCTUnwrap(json["cases"]?.arrayValue).compactMap { c -> Case? in
            guard let id = c["ggml_type_id"]?.intValue, let type = GGMLType(rawValue: UInt32(id)),
                  let input = c["input"]?.stringValue, let rows = c["rows"]?.intValue, let n = c["n_per_row"]?.intValue,
                  let expected = c["expected"]?.stringValue, let deq = c["dequantized"]?.stringValue else { return nil }
            return Case(type: type, input: input, rows: rows, nPerRow: n, importance: c["importance"]?.stringValue,
                        expected: expected, dequantized: deq)
        }
        return (root, cases)
    }

    /// Runs the cases of `types` through `quantizer`; returns the failures.
    static func run(_ quantizer: GPUQuantizer, types: [GGMLType]) throws -> (ran: Int, failures: [String]) {
        let (root, cases) = try loadCases()
        var failures: [String] = []
        var ran = 0
        for c in cases where types.contains(c.type) {
            ran += 1
            let x = try Fixtures.readFloats(root.appendingPathComponent(c.input))
            let qw = try c.importance.map { try Fixtures.readFloats(root.appendingPathComponent($0)) }
            let expected = [UInt8](try Data(contentsOf: root.appendingPathComponent(c.expected)))
            let rowBytes = c.type.rowBytes(c.nPerRow) ?? 0
            var out = [UInt8](repeating: 0xAA, count: rowBytes * c.rows)
            try x.withUnsafeBufferPointer { xp in
                try out.withUnsafeMutableBytes { op in
                    if let qw {
                        try qw.withUnsafeBufferPointer { wp in
                            try quantizer.quantize(type: c.type, src: xp.baseAddress!, rows: c.rows, n: c.nPerRow,
                                                   importance: wp.baseAddress!, dst: op.baseAddress!)
                        }
                    } else {
                        try quantizer.quantize(type: c.type, src: xp.baseAddress!, rows: c.rows, n: c.nPerRow,
                                               importance: nil, dst: op.baseAddress!)
                    }
                }
            }
            if out != expected {
                let first = zip(out, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(out.count, expected.count)
                let hex = { (a: [UInt8]) in a[first..<min(a.count, first + 40)].map { String(format: "%02x", $0) }.joined() }
                failures.append("\(c.expected): first difference at byte \(first) (row \(first / max(rowBytes, 1)), block \((first % max(rowBytes, 1)) / c.type.bytesPerBlock)): gpu \(hex(out)) ggml \(hex(expected))")
            }
            let want = try Fixtures.readFloats(root.appendingPathComponent(c.dequantized))
            var back = [Float](repeating: 0, count: c.rows * c.nPerRow)
            try expected.withUnsafeBytes { ep in
                try back.withUnsafeMutableBufferPointer { bp in
                    try quantizer.dequantize(type: c.type, src: ep.baseAddress!, count: bp.count, dst: bp.baseAddress!)
                }
            }
            if let k = zip(back, want).enumerated().first(where: { $0.element.0.bitPattern != $0.element.1.bitPattern })?.offset {
                failures.append("\(c.dequantized): first difference at value \(k): \(back[k]) vs \(want[k])")
            }
        }
        return (ran, failures)
    }

    func testGoldenCasesOnGPU() throws {
        let q = try GPUQuantizer(device: try GPUTestDevice.device())
        let (ran, failures) = try Self.run(q, types: GPUQuantizer.supportedTypes)
        print("GPU golden vectors: \(ran) cases, \(failures.count) failures, \(q.cpuFallbackRows) rows on the CPU")
        XCTAssertGreaterThanOrEqual(ran, GPUQuantizer.supportedTypes.count * 10)
        XCTAssertTrue(failures.isEmpty, "\n" + failures.joined(separator: "\n"))
        GPUTestDevice.checkValidation()
    }
}
