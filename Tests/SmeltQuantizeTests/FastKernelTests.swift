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

    func testNoFastPathWithImportance() {
        XCTAssertNil(FastKernels.rowKernel(for: .q4_K, importance: true))
        XCTAssertNil(FastKernels.rowKernel(for: .q8_0, importance: false))
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
