import Foundation
import XCTest
import SmeltFormats
@testable import SmeltQuant

/// Checks of the basic kernels that do not need ggml's golden files: round-trip error
/// bounds, zero rows, byte counts, row independence, and which types ignore importance.
final class QuantKernelTests: XCTestCase {
    /// The basic types and the largest relative RMS error (‖x − x̂‖ / ‖x‖) allowed on
    /// Gaussian data for the plain and the importance paths.
    static let bounds: [(GGMLType, Float)] = [
        (.f16, 0.001), (.bf16, 0.005),
        (.q8_0, 0.01), (.q6_K, 0.02), (.q5_0, 0.05), (.q5_1, 0.05), (.q5_K, 0.05),
        (.q4_0, 0.1), (.q4_1, 0.1), (.q4_K, 0.1), (.iq4_nl, 0.1), (.iq4_xs, 0.1),
        (.q3_K, 0.18), (.q2_K, 0.35), (.mxfp4, 0.15), (.nvfp4, 0.12),
        (.tq2_0, 0.9), (.tq1_0, 0.9), (.q1_0, 0.65),
    ]
    /// Types for which ggml ignores `quant_weights`.
    static let ignoresImportance: [GGMLType] = [.f16, .bf16, .q8_0, .tq1_0, .tq2_0, .mxfp4, .nvfp4, .q1_0]

    struct RNG {
        var s: UInt64
        mutating func next() -> UInt64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
        mutating func uniform() -> Float { Float(next() >> 40) / 16_777_216 }
        mutating func gauss() -> Float {
            let u = uniform() + 1e-7, v = uniform()
            return (-2 * logf(u)).squareRoot() * cosf(2 * .pi * v)
        }
    }

    func kernel(_ t: GGMLType) throws -> any QuantType.Type {
        try XCTUnwrap(QuantRegistry.kernel(for: t), "no kernel for \(t)")
    }

    func quantize(_ k: any QuantType.Type, _ x: [Float], rows: Int, importance: [Float]?) -> [UInt8] {
        let n = x.count / rows, rb = k.ggmlType.rowBytes(n)!
        var out = [UInt8](repeating: 0, count: rb * rows)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBytes { op in
                for r in 0..<rows {
                    if let w = importance {
                        w.withUnsafeBufferPointer { wp in
                            k.quantizeRow(xp.baseAddress! + r * n, op.baseAddress! + r * rb, count: n, importance: wp.baseAddress)
                        }
                    } else {
                        k.quantizeRow(xp.baseAddress! + r * n, op.baseAddress! + r * rb, count: n, importance: nil)
                    }
                }
            }
        }
        return out
    }

    func dequantize(_ k: any QuantType.Type, _ q: [UInt8], rows: Int, n: Int) -> [Float] {
        let rb = k.ggmlType.rowBytes(n)!
        var y = [Float](repeating: .nan, count: rows * n)
        q.withUnsafeBytes { qp in
            y.withUnsafeMutableBufferPointer { yp in
                for r in 0..<rows { k.dequantizeRow(qp.baseAddress! + r * rb, yp.baseAddress! + r * n, count: n) }
            }
        }
        return y
    }

    func testAllBasicTypesAreRegistered() throws {
        for (t, _) in Self.bounds {
            let k = try kernel(t)
            XCTAssertEqual(k.ggmlType, t)
            XCTAssertFalse(k.requiresImportance, "\(t)")
        }
    }

    func testRoundTripErrorWithinBounds() throws {
        let n = 1024, rows = 4
        var rng = RNG(s: 0x9E37_79B9_7F4A_7C15)
        let x = (0..<(n * rows)).map { _ in rng.gauss() }
        let w = (0..<n).map { _ in rng.uniform() * 2 + 0.01 }
        let norm = x.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        for (t, bound) in Self.bounds {
            let k = try kernel(t)
            for imp in [nil, w] {
                let y = dequantize(k, quantize(k, x, rows: rows, importance: imp), rows: rows, n: n)
                let err = zip(x, y).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / norm
                XCTAssertLessThan(err, bound, "\(t) \(imp == nil ? "plain" : "imatrix")")
                if ProcessInfo.processInfo.environment["SMELT_PRINT_ERR"] != nil { print("rmse \(t) \(imp == nil ? "plain" : "imatrix") \(err)") }
                XCTAssertGreaterThan(err, 0, "\(t) lossless on Gaussian data?")
            }
        }
    }

    func testZeroRowsGiveZeros() throws {
        let n = 512
        let x = [Float](repeating: 0, count: n)
        let w = [Float](repeating: 1, count: n)
        for (t, _) in Self.bounds {
            let k = try kernel(t)
            for imp in [nil, w] {
                let y = dequantize(k, quantize(k, x, rows: 1, importance: imp), rows: 1, n: n)
                XCTAssertTrue(y.allSatisfy { $0 == 0 }, "\(t): \(y.first { $0 != 0 } ?? 0)")
            }
        }
    }

    func testConstantRowsAreNearlyExact() throws {
        // A constant row of a value the types can hold: every type but the ternary and
        // 1-bit ones reproduces it to within its scale's precision.
        let n = 512
        let x = [Float](repeating: 0.375, count: n)
        for (t, _) in Self.bounds {
            let k = try kernel(t)
            let y = dequantize(k, quantize(k, x, rows: 1, importance: nil), rows: 1, n: n)
            for v in y { XCTAssertEqual(v, 0.375, accuracy: 0.02, "\(t)") }
        }
    }

    func testWritesExactlyRowBytes() throws {
        let n = 768
        var rng = RNG(s: 42)
        let x = (0..<n).map { _ in rng.gauss() * 3 }
        for (t, _) in Self.bounds {
            let k = try kernel(t)
            let rb = try XCTUnwrap(t.rowBytes(n))
            XCTAssertEqual(rb, n / t.blockSize * t.bytesPerBlock)
            if t.blockSize > 1 { XCTAssertNil(t.rowBytes(n + 1), "\(t) accepts a partial block") }
            var buf = [UInt8](repeating: 0xA5, count: rb + 64)
            x.withUnsafeBufferPointer { xp in
                buf.withUnsafeMutableBytes { k.quantizeRow(xp.baseAddress!, $0.baseAddress!, count: n, importance: nil) }
            }
            XCTAssertTrue(buf[rb...].allSatisfy { $0 == 0xA5 }, "\(t) wrote past its row")
            var y = [Float](repeating: .infinity, count: n + 16)
            buf.withUnsafeBytes { bp in
                y.withUnsafeMutableBufferPointer { k.dequantizeRow(bp.baseAddress!, $0.baseAddress!, count: n) }
            }
            XCTAssertTrue(y[..<n].allSatisfy { $0.isFinite }, "\(t)")
            XCTAssertTrue(y[n...].allSatisfy { $0 == .infinity }, "\(t) wrote past its values")
        }
    }

    func testRowsAreIndependentAndDeterministic() throws {
        let n = 512, rows = 3
        var rng = RNG(s: 7)
        let x = (0..<(n * rows)).map { _ in rng.gauss() }
        let w = (0..<n).map { _ in rng.uniform() }
        for (t, _) in Self.bounds {
            let k = try kernel(t)
            let all = quantize(k, x, rows: rows, importance: w)
            XCTAssertEqual(all, quantize(k, x, rows: rows, importance: w), "\(t) not deterministic")
            let rb = t.rowBytes(n)!
            for r in 0..<rows {
                let one = quantize(k, Array(x[(r * n)..<((r + 1) * n)]), rows: 1, importance: w)
                XCTAssertEqual(one, Array(all[(r * rb)..<((r + 1) * rb)]), "\(t) row \(r)")
            }
        }
    }

    func testImportanceUsage() throws {
        let n = 1024
        var rng = RNG(s: 11)
        let x = (0..<n).map { _ in rng.gauss() }
        let w = (0..<n).map { i in i % 3 == 0 ? 0 : rng.uniform() * 10 }
        for (t, _) in Self.bounds {
            let k = try kernel(t)
            let plain = quantize(k, x, rows: 1, importance: nil)
            let weighted = quantize(k, x, rows: 1, importance: w)
            if Self.ignoresImportance.contains(t) {
                XCTAssertEqual(plain, weighted, "\(t) should ignore importance")
            } else {
                XCTAssertNotEqual(plain, weighted, "\(t) should use importance")
            }
        }
    }

    func testNonFiniteInputsDoNotTrap() throws {
        // ggml gives no guarantees for NaN/inf input; the kernels must simply not crash.
        let n = 512
        var rng = RNG(s: 5)
        var x = (0..<n).map { _ in rng.gauss() }
        x[3] = .nan; x[40] = .infinity; x[300] = -.infinity; x[301] = 3e38; x[302] = -3e38
        let w = (0..<n).map { i in i == 7 ? Float.nan : (i == 8 ? .infinity : 1) }
        for (t, _) in Self.bounds {
            let k = try kernel(t)
            for imp in [nil, w] {
                let q = quantize(k, x, rows: 1, importance: imp)
                XCTAssertEqual(dequantize(k, q, rows: 1, n: n).count, n)
            }
        }
    }

    func testKnownQ8_0Block() throws {
        // x = j − 16 for j in 0..<32: amax 16, d = 16/127, q = round(x·127/16).
        let x = (0..<32).map { Float($0 - 16) }
        let q = quantize(try kernel(.q8_0), x, rows: 1, importance: nil)
        XCTAssertEqual(UInt16(q[0]) | UInt16(q[1]) << 8, fp32ToFP16(16 / 127))
        XCTAssertEqual(Int8(bitPattern: q[2]), -127)
        XCTAssertEqual(Int8(bitPattern: q[2 + 16]), 0)
        XCTAssertEqual(Int8(bitPattern: q[2 + 24]), 64)  // 8·127/16 = 63.5 rounds away from zero
    }

    func testHelpersMatchGGMLConventions() {
        XCTAssertEqual(nearestInt(2.5), 2)
        XCTAssertEqual(nearestInt(3.5), 4)
        XCTAssertEqual(nearestInt(-2.5), -2)
        XCTAssertEqual(nearestInt(-0.4), 0)
        XCTAssertEqual(truncToInt32(-3.9), -3)
        XCTAssertEqual(truncToInt32(.nan), Int32.min)
        for f: Float in [0, -0.0, 1, 65504, 65520, 1e-8, 6.1e-5, 5.96e-8, 2.98e-8, -1.5, .infinity, 3.14159] {
            XCTAssertEqual(fp32ToFP16(f), Float16(f).bitPattern, "\(f)")
        }
        XCTAssertEqual(fp32ToFP16(.nan) & 0x7E00, 0x7E00)
        for h: UInt16 in [0, 1, 0x3C00, 0x7BFF, 0x8001, 0xFC00, 0x0400, 0x03FF] {
            XCTAssertEqual(fp16ToFP32(h).bitPattern, Float(Float16(bitPattern: h)).bitPattern, "\(h)")
        }
        XCTAssertEqual(e8m0ToFP32Half(128), 1)
        XCTAssertEqual(e8m0ToFP32Half(0), Float(sign: .plus, exponent: -128, significand: 1))
        XCTAssertEqual(ue4m3ToFP32(fp32ToUE4M3(1)), 0.5)
        XCTAssertEqual(fp32ToUE4M3(1000), 0x7E)
    }
}
