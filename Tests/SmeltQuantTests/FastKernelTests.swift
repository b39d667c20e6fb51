import Foundation
import XCTest
import SmeltTestSupport
import SmeltFormats
@testable import SmeltQuant

/// The native SIMD kernels (CSmeltKernels' quant_kernels.c) must give SmeltQuant's scalar
/// (= ggml's) bytes exactly, at every instruction-set level the CPU allows (portable, AVX2,
/// AVX-512).
final class FastKernelTests: XCTestCase {
    /// The levels this CPU can run (the portable one always).
    static var levels: [FastKernels.Level] { FastKernels.Level.allCases.filter { $0.rawValue <= FastKernels.cpuLevel.rawValue } }

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
        out.append((0..<768).map { _ in normal() })  // an odd number of super-blocks after a pair
        out.append([Float](repeating: 0, count: 512))
        out.append([Float](repeating: 0.5, count: 256) + [Float](repeating: -2, count: 256))
        out.append((0..<512).map { _ in abs(normal()) })                  // all positive
        out.append((0..<512).map { _ in -abs(normal()) })                 // all negative
        out.append((0..<512).map { $0 % 37 == 0 ? 50 : normal() * 0.01 })  // spikes
        out.append((0..<512).map { $0 % 2 == 0 ? -0.0 : 0.0 })
        out.append((0..<512).map { i in i < 32 ? 0 : (i < 64 ? 1 : normal()) })  // flat sub-blocks
        out.append((0..<512).map { i in Float(i % 16) - 7.5 })           // integer grid
        out.append((0..<512).map { i in (i / 16) % 2 == 0 ? 0 : normal() })
        out.append((0..<512).map { _ in normal() * 1e-38 })                 // scales near the float minimum
        out.append((0..<512).map { i in i % 32 == 5 ? 3e-44 : (i % 32 == 9 ? -1e-44 : 0) })  // denormals: inverse scales overflow
        out.append((0..<512).map { i in i % 64 < 32 ? (i % 2 == 0 ? 0 : -0.0) : normal() * 3e38 })  // ±0 blocks, ranges overflowing
        for _ in 0..<40 { out.append((0..<256).map { _ in normal() * Float(g.next() % 100 + 1) * 0.003 }) }
        return out
    }

    /// Importance weights for a row of n values: positive, heavy-tailed, some zeros.
    static func weights(_ n: Int, seed: UInt64) -> [Float] {
        var g = SplitMix(seed: seed)
        return (0..<n).map { i in i % 29 == 3 ? 0 : Float(g.next() % 10_000 + 1) / 1000 * (i % 7 == 0 ? 30 : 1) }
    }

    /// Extra rows for the grid iq types: values exactly on grid levels (odd multiples of a step),
    /// odd and even counts of negatives per group of 8 (the sign-parity flip), a group of equal
    /// magnitudes with ties in the least important value, one non-zero value per 32, and rows
    /// whose squares overflow or underflow.
    static func iqRows() -> [[Float]] {
        var g = SplitMix(seed: 7)
        func u() -> Float { Float(g.next() % 2_000_001) / 1_000_000 - 1 }
        var out: [[Float]] = []
        out.append((0..<512).map { i in Float([1, 3, 5, 7, 9, 11, 13, 15][(i * 5) % 8]) * 0.01 * (i % 5 == 0 ? -1 : 1) })
        out.append((0..<512).map { i in Float([1, 3, 5][i % 3]) * 0.25 * (i % 8 == 3 ? -1 : 1) })
        out.append((0..<256).map { i in i % 8 == 0 ? -0.5 : 0.5 })
        out.append((0..<256).map { i in i % 32 == 17 ? -2 : 0 })
        out.append((0..<512).map { _ in u() * 1e19 })     // squares overflow to infinity
        out.append((0..<512).map { _ in u() * 1e-19 })    // squares underflow
        out.append((0..<512).map { i in i % 16 < 8 ? 0 : u() })
        for _ in 0..<8 { out.append((0..<256).map { _ in u() * u() * u() }) }
        return out
    }

    func check(_ type: GGMLType, _ kernel: any QuantType.Type, importance: Bool = false, extra: [[Float]] = []) throws {
        FastKernels.enabled = false  // quantizeRow takes the scalar path; rowKernel is the native one
        defer { FastKernels.enabled = true }
        defer { FastKernels.cap(nil) }
        let fast = try XCTUnwrap(FastKernels.rowKernel(for: type, importance: importance))
        let rows = Self.rows() + extra
        for level in Self.levels {
            FastKernels.cap(level)
            XCTAssertEqual(FastKernels.level, level)
            for (k, row) in rows.enumerated() {
                let n = row.count
                let bytes = type.rowBytes(n)!
                let qw = Self.weights(n, seed: UInt64(k))
                var a = [UInt8](repeating: 0xAA, count: bytes), b = [UInt8](repeating: 0x55, count: bytes)
                row.withUnsafeBufferPointer { src in
                    qw.withUnsafeBufferPointer { w in
                        let wp = importance ? w.baseAddress : nil
                        a.withUnsafeMutableBytes { kernel.quantizeRow(src.baseAddress!, $0.baseAddress!, count: n, importance: wp) }
                        b.withUnsafeMutableBytes { fast(src.baseAddress!, wp, $0.baseAddress!, n) }
                    }
                }
                XCTAssertEqual(a, b, "\(type) row \(k) at level \(level.name)\(importance ? " with importance" : "")")
            }
        }
    }

    func testQ4K() throws { try check(.q4_K, Q4_K.self) }
    func testQ5K() throws { try check(.q5_K, Q5_K.self) }
    func testQ6K() throws { try check(.q6_K, Q6_K.self) }
    func testQ80() throws { try check(.q8_0, Q8_0.self) }
    func testQ40() throws { try check(.q4_0, Q4_0.self) }
    func testIQ4NL() throws { try check(.iq4_nl, IQ4_NL.self) }
    func testIQ4XS() throws { try check(.iq4_xs, IQ4_XS.self) }
    func testQ4KImportance() throws { try check(.q4_K, Q4_K.self, importance: true) }
    func testQ5KImportance() throws { try check(.q5_K, Q5_K.self, importance: true) }
    func testQ6KImportance() throws { try check(.q6_K, Q6_K.self, importance: true) }
    func testIQ4NLImportance() throws { try check(.iq4_nl, IQ4_NL.self, importance: true) }
    func testIQ4XSImportance() throws { try check(.iq4_xs, IQ4_XS.self, importance: true) }
    func testQ2K() throws { try check(.q2_K, Q2_K.self) }
    func testQ3K() throws { try check(.q3_K, Q3_K.self) }
    func testQ41() throws { try check(.q4_1, Q4_1.self) }
    func testQ50() throws { try check(.q5_0, Q5_0.self) }
    func testQ51() throws { try check(.q5_1, Q5_1.self) }
    func testQ2KImportance() throws { try check(.q2_K, Q2_K.self, importance: true) }
    func testQ3KImportance() throws { try check(.q3_K, Q3_K.self, importance: true) }
    func testQ40Importance() throws { try check(.q4_0, Q4_0.self, importance: true) }
    func testQ41Importance() throws { try check(.q4_1, Q4_1.self, importance: true) }
    func testQ50Importance() throws { try check(.q5_0, Q5_0.self, importance: true) }
    func testQ51Importance() throws { try check(.q5_1, Q5_1.self, importance: true) }
    func testIQ2XXSImportance() throws { try check(.iq2_xxs, IQ2_XXS.self, importance: true, extra: Self.iqRows()) }
    func testIQ2XSImportance() throws { try check(.iq2_xs, IQ2_XS.self, importance: true, extra: Self.iqRows()) }
    func testIQ2S() throws { try check(.iq2_s, IQ2_S.self, extra: Self.iqRows()) }
    func testIQ2SImportance() throws { try check(.iq2_s, IQ2_S.self, importance: true, extra: Self.iqRows()) }
    func testIQ3XXS() throws { try check(.iq3_xxs, IQ3_XXS.self, extra: Self.iqRows()) }
    func testIQ3XXSImportance() throws { try check(.iq3_xxs, IQ3_XXS.self, importance: true, extra: Self.iqRows()) }
    func testIQ3S() throws { try check(.iq3_s, IQ3_S.self, extra: Self.iqRows()) }
    func testIQ3SImportance() throws { try check(.iq3_s, IQ3_S.self, importance: true, extra: Self.iqRows()) }
    func testIQ1SImportance() throws { try check(.iq1_s, IQ1_S.self, importance: true, extra: Self.iqRows()) }
    func testIQ1M() throws { try check(.iq1_m, IQ1_M.self, extra: Self.iqRows()) }
    func testIQ1MImportance() throws { try check(.iq1_m, IQ1_M.self, importance: true, extra: Self.iqRows()) }

    /// bf16 rows quantized straight into q8_0 / q4_0 (`BF16Rows`, quantize's fused path) give the
    /// scalar kernels' bytes on the same values; a row holding NaN or infinity (or, q4_0, an
    /// overflowing inverse scale) stops the kernel there, leaving it and the rows after it.
    func testBF16RowsFused() throws {
        defer { FastKernels.cap(nil) }
        func bf16(_ row: [Float]) -> [UInt16] { row.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) } }
        func widen(_ h: [UInt16]) -> [Float] { h.map { Float(bitPattern: UInt32($0) << 16) } }
        func scalar(_ type: GGMLType, _ x: [Float]) -> [UInt8] {
            let kernel: any QuantType.Type = type == .q8_0 ? Q8_0.self : Q4_0.self
            FastKernels.enabled = false
            defer { FastKernels.enabled = true }
            var a = [UInt8](repeating: 0xAA, count: type.rowBytes(x.count)!)
            x.withUnsafeBufferPointer { src in
                a.withUnsafeMutableBytes { kernel.quantizeRow(src.baseAddress!, $0.baseAddress!, count: x.count, importance: nil) }
            }
            return a
        }
        XCTAssertTrue(BF16Rows.supports(.q8_0, importance: true))
        XCTAssertFalse(BF16Rows.supports(.q4_0, importance: true))
        XCTAssertFalse(BF16Rows.supports(.q4_K, importance: false))
        for level in Self.levels {
            FastKernels.cap(level)
            for type in [GGMLType.q8_0, .q4_0] {
                var finished = 0
                let rows = Self.rows()
                for (k, row) in rows.enumerated() {
                    let h = bf16(row), x = widen(h)
                    var b = [UInt8](repeating: 0x55, count: type.rowBytes(x.count)!)
                    let done = h.withUnsafeBytes { src in
                        b.withUnsafeMutableBytes { BF16Rows.quantize(type, src: src.baseAddress!, dst: $0.baseAddress!, rows: 1, n: x.count) }
                    }
                    XCTAssert(done == 0 || done == 1)
                    if !x.allSatisfy({ $0.isFinite }) { XCTAssertEqual(done, 0, "\(type) row \(k): non-finite values") }
                    if done == 1 {
                        finished += 1
                        XCTAssertEqual(b, scalar(type, x), "\(type) row \(k) at level \(level.name)")
                    }
                }
                // only the non-finite rows (and, for q4_0, the rows of denormal blocks) are left
                XCTAssertGreaterThanOrEqual(finished, rows.count - (type == .q8_0 ? 1 : 3), "\(type) at level \(level.name)")
                // several rows at once: the fourth holds a NaN, so three are done
                let n = 256
                var many = (0..<(6 * n)).map { Float($0 % 41) * 0.173 - 3.3 + Float($0 / n) }
                many[3 * n + 100] = .nan
                let h = bf16(many), x = widen(h)
                let rb = type.rowBytes(n)!
                var b = [UInt8](repeating: 0x55, count: 6 * rb)
                let done = h.withUnsafeBytes { src in
                    b.withUnsafeMutableBytes { BF16Rows.quantize(type, src: src.baseAddress!, dst: $0.baseAddress!, rows: 6, n: n) }
                }
                XCTAssertEqual(done, 3)
                for r in 0..<3 {
                    XCTAssertEqual(Array(b[(r * rb)..<((r + 1) * rb)]), scalar(type, Array(x[(r * n)..<((r + 1) * n)])), "\(type) row \(r)")
                }
                XCTAssertEqual(Array(b[(4 * rb)...]), [UInt8](repeating: 0x55, count: 2 * rb), "rows after the unfinished one untouched")
            }
        }
        FastKernels.enabled = false
        defer { FastKernels.enabled = true }
        XCTAssertFalse(BF16Rows.supports(.q8_0, importance: false))
    }

    /// Grid iq rows holding NaN or infinities (the neighbour search's fallbacks) match too,
    /// with and without importance weights.
    func testIQGridNonFiniteRows() throws {
        FastKernels.enabled = false
        defer { FastKernels.enabled = true; FastKernels.cap(nil) }
        var row = (0..<512).map { Float($0 % 23) * 0.37 - 4 }
        row[7] = .nan; row[300] = .infinity; row[301] = -.infinity
        let qw = Self.weights(512, seed: 3)
        for level in Self.levels {
            FastKernels.cap(level)
            for (type, kernel, plain) in [(GGMLType.iq2_xxs, IQ2_XXS.self as any QuantType.Type, false), (.iq2_xs, IQ2_XS.self, false),
                                          (.iq2_s, IQ2_S.self, true), (.iq3_xxs, IQ3_XXS.self, true), (.iq3_s, IQ3_S.self, true),
                                          (.iq1_s, IQ1_S.self, false), (.iq1_m, IQ1_M.self, true)] {
                for importance in plain ? [false, true] : [true] {
                    let fast = try XCTUnwrap(FastKernels.rowKernel(for: type, importance: importance))
                    let bytes = type.rowBytes(512)!
                    var a = [UInt8](repeating: 0, count: bytes), b = [UInt8](repeating: 1, count: bytes)
                    row.withUnsafeBufferPointer { src in
                        qw.withUnsafeBufferPointer { w in
                            let wp = importance ? w.baseAddress : nil
                            a.withUnsafeMutableBytes { kernel.quantizeRow(src.baseAddress!, $0.baseAddress!, count: 512, importance: wp) }
                            b.withUnsafeMutableBytes { fast(src.baseAddress!, wp, $0.baseAddress!, 512) }
                        }
                    }
                    XCTAssertEqual(a, b, "\(type) at level \(level.name)\(importance ? " with importance" : "")")
                }
            }
        }
    }

    /// Rows holding NaN or infinities give the scalar kernels' bytes too (quantize
    /// --allow-nonfinite writes them).
    func testNonFiniteRows() throws {
        FastKernels.enabled = false
        defer { FastKernels.enabled = true; FastKernels.cap(nil) }
        var row = (0..<512).map { Float($0 % 23) * 0.37 - 4 }
        row[7] = .nan; row[300] = .infinity; row[301] = -.infinity
        for level in Self.levels {
            FastKernels.cap(level)
            for (type, kernel) in [(GGMLType.q4_K, Q4_K.self as any QuantType.Type), (.q5_K, Q5_K.self), (.q6_K, Q6_K.self),
                                   (.iq4_nl, IQ4_NL.self), (.iq4_xs, IQ4_XS.self), (.q8_0, Q8_0.self), (.q4_0, Q4_0.self),
                                   (.q2_K, Q2_K.self), (.q3_K, Q3_K.self), (.q4_1, Q4_1.self), (.q5_0, Q5_0.self),
                                   (.q5_1, Q5_1.self)] {
                let fast = try XCTUnwrap(FastKernels.rowKernel(for: type, importance: false))
                let bytes = type.rowBytes(512)!
                var a = [UInt8](repeating: 0, count: bytes), b = [UInt8](repeating: 1, count: bytes)
                row.withUnsafeBufferPointer { src in
                    a.withUnsafeMutableBytes { kernel.quantizeRow(src.baseAddress!, $0.baseAddress!, count: 512, importance: nil) }
                    b.withUnsafeMutableBytes { fast(src.baseAddress!, nil, $0.baseAddress!, 512) }
                }
                XCTAssertEqual(a, b, "\(type) at level \(level.name)")
            }
        }
    }

    /// q8_0 ties: values that land exactly on k + 0.5 after scaling round away from zero.
    func testQ80Ties() throws {
        FastKernels.enabled = false  // quantizeRow takes the scalar path; rowKernel is the SIMD one
        defer { FastKernels.enabled = true }
        var row = [Float](repeating: 0, count: 64)
        for i in 0..<32 { row[i] = Float(i) - 15.5 }      // amax 16.5 → id = 127/16.5
        for i in 32..<64 { row[i] = Float(i - 32) * 0.5 - 8 }  // amax 8 → halves of 127/8 steps
        row[63] = 127; row[62] = -63.5; row[61] = 0.5
        defer { FastKernels.cap(nil) }
        var nanRow = row; nanRow[5] = .nan; nanRow[40] = .infinity
        var infRow = row; infRow[33] = -.infinity
        for level in Self.levels {
            FastKernels.cap(level)
            for (type, kernel) in [(GGMLType.q8_0, Q8_0.self as any QuantType.Type), (.q4_0, Q4_0.self)] {
                let fast = try XCTUnwrap(FastKernels.rowKernel(for: type, importance: false))
                let bytes = type.rowBytes(64)!
                for r in [row, nanRow, infRow] {
                    var a = [UInt8](repeating: 0, count: bytes), b = [UInt8](repeating: 1, count: bytes)
                    r.withUnsafeBufferPointer { src in
                        a.withUnsafeMutableBytes { kernel.quantizeRow(src.baseAddress!, $0.baseAddress!, count: 64, importance: nil) }
                        b.withUnsafeMutableBytes { fast(src.baseAddress!, nil, $0.baseAddress!, 64) }
                    }
                    XCTAssertEqual(a, b, "\(type) at level \(level.name)")
                }
            }
        }
    }

    /// SMELT_QUANT_LEVEL and `cap` never raise the level above what the CPU has.
    func testLevelCap() {
        defer { FastKernels.cap(nil) }
        FastKernels.cap(.avx512)
        XCTAssertEqual(FastKernels.level, FastKernels.cpuLevel)
        FastKernels.cap(.portable)
        XCTAssertEqual(FastKernels.level, .portable)
    }

    func testNoNativeKernel() {
        FastKernels.enabled = false  // quantizeRow takes the scalar path; rowKernel is the SIMD one
        defer { FastKernels.enabled = true }
        XCTAssertNil(FastKernels.rowKernel(for: .q1_0, importance: false))
        XCTAssertNil(FastKernels.rowKernel(for: .tq1_0, importance: false))
        XCTAssertNil(FastKernels.rowKernel(for: .iq1_s, importance: false))  // needs weights (as ggml)
        XCTAssertNil(FastKernels.rowKernel(for: .iq2_xxs, importance: false))  // needs weights (as ggml)
    }
}

