import Foundation
import XCTest
import SmeltFormats
import SmeltQuant
@testable import SmeltQuantize

/// The SIMD kernels must give SmeltQuant's (= ggml's) bytes exactly.
final class FastKernelTests: XCTestCase {
    /// Rows of 256-value super-blocks covering the awkward cases: zeros, constant and
    /// all-positive sub-blocks, single spikes, tiny and huge magnitudes, ±0, random data.
    static func rows() -> [[Float]] {
        var g = SplitMix(seed: 42)
        var out: [[Float]] = []
        func normal() -> Float {
            let u1 = max(Float(g.next() % 1_000_000 + 1) / 1_000_001, 1e-7), u2 = Float(g.next() % 1_000_000) / 1_000_000
            return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
        for scale in [Float(0.02), 1, 1e-3, 300, 1e-20, 3e30] {
            out.append((0..<1024).map { _ in normal() * scale })
        }
        out.append([Float](repeating: 0, count: 512))
        out.append([Float](repeating: 0.5, count: 256) + [Float](repeating: -2, count: 256))
        out.append((0..<512).map { _ in abs(normal()) })                  // all positive
        out.append((0..<512).map { _ in -abs(normal()) })                 // all negative
        out.append((0..<512).map { $0 % 37 == 0 ? 50 : normal() * 0.01 })  // spikes
        out.append((0..<512).map { $0 % 2 == 0 ? -0.0 : 0.0 })
        out.append((0..<512).map { i in i < 32 ? 0 : (i < 64 ? 1 : normal()) })  // flat sub-blocks
        out.append((0..<512).map { i in Float(i % 16) - 7.5 })           // integer grid
        out.append((0..<512).map { i in (i / 16) % 2 == 0 ? 0 : normal() })
        for _ in 0..<40 { out.append((0..<256).map { _ in normal() * Float(g.next() % 100 + 1) * 0.003 }) }
        return out
    }

    func check(_ type: GGMLType, _ kernel: any QuantType.Type) throws {
        let fast = try XCTUnwrap(FastKernels.rowKernel(for: type, importance: false))
        for (k, row) in Self.rows().enumerated() {
            let n = row.count
            let bytes = type.rowBytes(n)!
            var a = [UInt8](repeating: 0xAA, count: bytes), b = [UInt8](repeating: 0x55, count: bytes)
            row.withUnsafeBufferPointer { src in
                a.withUnsafeMutableBytes { kernel.quantizeRow(src.baseAddress!, $0.baseAddress!, count: n, importance: nil) }
                b.withUnsafeMutableBytes { fast(src.baseAddress!, $0.baseAddress!, n) }
            }
            XCTAssertEqual(a, b, "\(type) row \(k)")
        }
    }

    func testQ4K() throws { try check(.q4_K, Q4_K.self) }
    func testQ5K() throws { try check(.q5_K, Q5_K.self) }
    func testQ6K() throws { try check(.q6_K, Q6_K.self) }
    func testQ80() throws { try check(.q8_0, Q8_0.self) }
    func testQ40() throws { try check(.q4_0, Q4_0.self) }

    /// q8_0 ties: values that land exactly on k + 0.5 after scaling round away from zero.
    func testQ80Ties() throws {
        var row = [Float](repeating: 0, count: 64)
        for i in 0..<32 { row[i] = Float(i) - 15.5 }      // amax 16.5 → id = 127/16.5
        for i in 32..<64 { row[i] = Float(i - 32) * 0.5 - 8 }  // amax 8 → halves of 127/8 steps
        row[63] = 127; row[62] = -63.5; row[61] = 0.5
        let fast = try XCTUnwrap(FastKernels.rowKernel(for: .q8_0, importance: false))
        var a = [UInt8](repeating: 0, count: 68), b = [UInt8](repeating: 1, count: 68)
        row.withUnsafeBufferPointer { src in
            a.withUnsafeMutableBytes { Q8_0.quantizeRow(src.baseAddress!, $0.baseAddress!, count: 64, importance: nil) }
            b.withUnsafeMutableBytes { fast(src.baseAddress!, $0.baseAddress!, 64) }
        }
        XCTAssertEqual(a, b)
        var nanRow = row; nanRow[5] = .nan; nanRow[40] = .infinity
        nanRow.withUnsafeBufferPointer { src in
            a.withUnsafeMutableBytes { Q8_0.quantizeRow(src.baseAddress!, $0.baseAddress!, count: 64, importance: nil) }
            b.withUnsafeMutableBytes { fast(src.baseAddress!, $0.baseAddress!, 64) }
        }
        XCTAssertEqual(a, b)
    }

    func testNoFastPathWithImportance() {
        XCTAssertNil(FastKernels.rowKernel(for: .q4_K, importance: true))
        XCTAssertNil(FastKernels.rowKernel(for: .q5_0, importance: false))
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
