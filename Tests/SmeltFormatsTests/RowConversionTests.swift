import CSmeltKernels
import Foundation
import XCTest
@testable import SmeltFormats
import SmeltTestSupport

/// The vectorized row conversions of convert and f16 output (CSmeltKernels' convert.c) at every
/// level this CPU has, against independent scalar references: Swift's own `Float16(Float)`
/// (correctly rounded, to nearest even) and the bf16 bit shift.
final class RowConversionTests: XCTestCase {
    override func tearDown() { smelt_convert_force_level(-1) }

    private var levels: [Int32] {
        smelt_convert_force_level(-1)
        return Array(0...smelt_convert_level())
    }

    /// ggml's f32 → f16: round to nearest even with subnormals, overflow to ±inf, NaN → sign | 0x7E00.
    private func reference(_ f: Float) -> UInt16 {
        if f.isNaN { return (f.sign == .minus ? 0x8000 : 0) | 0x7E00 }
        return Float16(f).bitPattern
    }

    /// Every f16 value, the midpoints between neighbours and a few ulps of float around them (the
    /// ties and near-ties that decide rounding), subnormals, overflow, NaN payloads, random bits.
    private func samples() -> [Float] {
        var xs: [Float] = []
        for h in 0..<UInt16(0x7C00) {
            let a = Float(Float16(bitPattern: h)), b = Float(Float16(bitPattern: h + 1))
            let mid = (a + b) / 2   // exact in float
            for d in -2...2 { xs.append(Float(bitPattern: UInt32(bitPattern: Int32(bitPattern: mid.bitPattern) &+ Int32(d)))) }
            xs.append(a)
        }
        xs += [65504, 65519.99, 65520, 65536, 1e10, .infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
               Float(bitPattern: 0x33000000), Float(bitPattern: 0x33000001), Float(bitPattern: 0x32FFFFFF),
               .nan, Float(bitPattern: 0x7F800001), Float(bitPattern: 0x7FBFFFFF), Float(bitPattern: 0x7FC01234), 0]
        xs += xs.map { -$0 }
        var g = SplitMix(seed: 7)
        for _ in 0..<200_000 { xs.append(Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))) }
        return xs
    }

    func testF32ToF16AtEveryLevel() {
        let xs = samples()
        let want = xs.map(reference)
        for level in levels {
            smelt_convert_force_level(level)
            // odd offsets and lengths: the vector loops' tails and unaligned rows
            for (start, end) in [(0, xs.count), (3, xs.count - 5)] {
                var out = [UInt16](repeating: 0xFFFF, count: end - start)
                xs.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { y in
                    smelt_f32_to_f16(x.baseAddress! + start, y.baseAddress!, end - start)
                } }
                var bad = 0
                for i in 0..<out.count where out[i] != want[start + i] {
                    if bad < 5 { XCTFail("level \(level): \(xs[start + i]) (0x\(String(xs[start + i].bitPattern, radix: 16))) → 0x\(String(out[i], radix: 16)), want 0x\(String(want[start + i], radix: 16))") }
                    bad += 1
                }
                XCTAssertEqual(bad, 0, "level \(level)")
            }
        }
    }

    /// f16 → f32 for every half value (at an odd address, with a tail): exact, Swift's `Float(Float16)`
    /// for every non-NaN value; NaNs stay NaNs of the same sign, the same bits at every level.
    func testF16ToF32AtEveryLevel() {
        let n = 65536 + 5
        var bytes = [UInt8](repeating: 0, count: 2 * n + 1)
        for i in 0..<n { let h = UInt16(truncatingIfNeeded: i); bytes[1 + 2 * i] = UInt8(h & 0xFF); bytes[2 + 2 * i] = UInt8(h >> 8) }
        var portable: [Float] = []
        for level in levels {
            smelt_convert_force_level(level)
            var out = [Float](repeating: 0, count: n)
            bytes.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { smelt_f16_to_f32(b.baseAddress! + 1, $0.baseAddress!, n) } }
            if level == 0 { portable = out }
            var bad = 0
            for i in 0..<n {
                let h = Float16(bitPattern: UInt16(truncatingIfNeeded: i)), want = Float(h)
                let ok = h.isNaN ? out[i].isNaN && out[i].sign == want.sign && out[i].bitPattern == portable[i].bitPattern
                                 : out[i].bitPattern == want.bitPattern
                if !ok { if bad < 5 { XCTFail("level \(level): 0x\(String(i & 0xFFFF, radix: 16)) → 0x\(String(out[i].bitPattern, radix: 16))") }; bad += 1 }
            }
            XCTAssertEqual(bad, 0, "level \(level)")
        }
    }

    func testBF16ToF32AtEveryLevel() {
        var g = SplitMix(seed: 9)
        let n = 70_001
        let bytes = (0..<(2 * n + 1)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        for level in levels {
            smelt_convert_force_level(level)
            var out = [Float](repeating: 0, count: n)
            bytes.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { o in
                FloatFormats.bf16ToFloat(b.baseAddress! + 1, o.baseAddress!, count: n)   // odd address
            } }
            for i in 0..<n {
                let h = UInt32(bytes[1 + 2 * i]) | UInt32(bytes[2 + 2 * i]) << 8
                if out[i].bitPattern != h << 16 { XCTFail("level \(level) value \(i)"); break }
            }
        }
    }
}
