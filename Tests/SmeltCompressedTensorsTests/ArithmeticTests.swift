import XCTest
import SmeltFormats
@testable import SmeltCompressedTensors

/// compressed-tensors' arithmetic on values that can be checked by hand.
final class ArithmeticTests: XCTestCase {
    func testFP8HandValues() {
        XCTAssertEqual(CTFloat8.bits(1.0), 0x38)
        XCTAssertEqual(CTFloat8.bits(-2.0), 0xC0)
        XCTAssertEqual(CTFloat8.bits(448), 0x7E)
        XCTAssertEqual(CTFloat8.bits(1.0625), 0x38, "tie between 1 and 1.125 goes to the even mantissa")
        XCTAssertEqual(CTFloat8.bits(1.1875), 0x3A, "tie between 1.125 and 1.25 goes to the even mantissa")
        XCTAssertEqual(CTFloat8.bits(464), 0x7E, "tie between 448 and 480 goes to 448")
        XCTAssertEqual(CTFloat8.bits(465), 0x7F, "no saturation: above the tie the cast gives NaN")
        XCTAssertEqual(CTFloat8.bits(480), 0x7F)
        XCTAssertEqual(CTFloat8.bits(-1e6), 0xFF)
        XCTAssertEqual(CTFloat8.bits(.infinity), 0x7F)
        XCTAssertEqual(CTFloat8.bits(.nan), 0x7F)
        XCTAssertEqual(CTFloat8.bits(0.015625), 0x08, "2^-6: smallest normal")
        XCTAssertEqual(CTFloat8.bits(0.001953125), 0x01, "2^-9: smallest subnormal")
        XCTAssertEqual(CTFloat8.bits(0.0009765625), 0x00, "2^-10 ties to zero (even)")
        XCTAssertEqual(CTFloat8.bits(3 * 0.0009765625), 0x02, "3·2^-10 ties to 2·2^-9 (even)")
        XCTAssertEqual(CTFloat8.bits(-0.0), 0x80)
        XCTAssertEqual(CTFloat8.value(0x7E), 448)
    }

    /// Every bf16 value in [-448, 448] goes to the nearest E4M3 value, ties to the even code.
    func testFP8ExhaustiveOverBF16() {
        var finite: [(Float, UInt8)] = []
        for b in 0...255 where b & 0x7F != 0x7F { finite.append((CTFloat8.value(UInt8(b)), UInt8(b))) }
        for h in 0...0xFFFF {
            let x = FloatFormats.bf16ToFloat(UInt16(h))
            guard x.isFinite, abs(x) <= 448 else { continue }
            var best: (d: Float, b: UInt8)? = nil
            for (v, b) in finite where v.sign == x.sign {
                let d = abs(v - x)
                if let cur = best {
                    if d < cur.d || (d == cur.d && (b & 1) == 0 && (cur.b & 1) == 1) { best = (d, b) }
                } else { best = (d, b) }
            }
            var expect = best!.b
            if x == 0 { expect = x.sign == .minus ? 0x80 : 0x00 }
            XCTAssertEqual(CTFloat8.bits(x), expect, "bf16 \(x)")
        }
    }

    func testComputeTypeRounding() {
        XCTAssertEqual(CTComputeType.bf16.round(1 / 448), 146.0 / 128 / 512)
        XCTAssertEqual(CTComputeType.f16.round(1.0 + 1.0 / 4096), 1.0)
        XCTAssertEqual(CTComputeType.f32.round(0.1), 0.1)
    }

    func testSymmetricScales() throws {
        let fp8 = try XCTUnwrap(CTSchemePreset.FP8.scheme().weights)
        XCTAssertEqual(CTQuantizer.qparams(min: -1, max: 0.5, args: fp8, type: .f32).scale, 1 / 448)
        XCTAssertEqual(CTQuantizer.qparams(min: -1, max: 0.5, args: fp8, type: .bf16).scale, 146.0 / 128 / 512,
                       "the scale is rounded to the weight's dtype")
        let w8 = try XCTUnwrap(CTSchemePreset.W8A8.scheme().weights)
        XCTAssertEqual(CTQuantizer.qparams(min: 0, max: 255, args: w8, type: .f32).scale, 2, "int8: amax / 127.5")
        let w4 = try XCTUnwrap(CTSchemePreset.W4A16.scheme().weights)
        XCTAssertEqual(CTQuantizer.qparams(min: -15, max: 3, args: w4, type: .f32).scale, 2, "int4: amax / 7.5")
        let zero = CTQuantizer.qparams(min: 0, max: 0, args: w4, type: .bf16)
        XCTAssertEqual(zero.scale, 0.0078125, "a zero scale becomes bf16's epsilon")
        XCTAssertEqual(zero.zeroPoint, 0)
        XCTAssertEqual(CTQuantizer.qparams(min: 1, max: 3, args: w4, type: .f32).scale, 3 / 7.5, "0 is always in the range")
    }

    func testAsymmetricScalesAndZeroPoints() throws {
        let a = try XCTUnwrap(CTSchemePreset.W4A16_ASYM.scheme().weights)
        let p = CTQuantizer.qparams(min: -1, max: 2, args: a, type: .f32)
        XCTAssertEqual(p.scale, Float(3) / 15)
        XCTAssertEqual(p.zeroPoint, -3, "-8 - (-1 / 0.2) = -3")
        let q = CTQuantizer.qparams(min: 0.5, max: 1.5, args: a, type: .f32)   // min clamped to 0
        XCTAssertEqual(q.scale, Float(1.5) / 15)
        XCTAssertEqual(q.zeroPoint, -8)
        let n = CTQuantizer.qparams(min: -3, max: -1, args: a, type: .f32)     // max clamped to 0
        XCTAssertEqual(n.zeroPoint, 7)
    }

    func testInt8ChannelQuantizeDequantize() throws {
        let args = try XCTUnwrap(CTSchemePreset.W8A8.scheme().weights)
        let w: [Float] = [-127.5, 63.75, 1.0, 0.5,
                          2.0, -1.0, 0.25, 0.0]
        let p = try w.withUnsafeBufferPointer { try CTQuantizer.weightParams($0, rows: 2, columns: 4, args: args, type: .f32) }
        XCTAssertEqual(p.rows, 2); XCTAssertEqual(p.columns, 1)
        XCTAssertEqual(p.scales, [1.0, Float(2) / 127.5])
        XCTAssertNil(p.zeroPoints)
        let q = try w.withUnsafeBufferPointer { try CTQuantizer.quantize($0, rows: 2, columns: 4, params: p, args: args, type: .f32) }
        let qi = q.map { Int8(bitPattern: $0) }
        XCTAssertEqual(Array(qi[0..<4]), [-128, 64, 1, 0], "half to even: -127.5 → -128, 63.75 → 64, 0.5 → 0")
        XCTAssertEqual(Array(qi[4..<8]), [127, -64, 16, 0], "2 / (2/127.5) = 127.5 → clamped to 127")
        let d = try CTQuantizer.dequantize(q, rows: 2, columns: 4, params: p, args: args, type: .f32)
        XCTAssertEqual(Array(d[0..<4]), [-128, 64, 1, 0])
        XCTAssertEqual(d[4], 127 * (Float(2) / 127.5))
    }

    func testInt4GroupsSymmetricAndAsymmetric() throws {
        let sym = try CTQuantizationArgs(numBits: 4, type: .int, symmetric: true, groupSize: 4, strategy: .group)
        let w: [Float] = [7.5, -3.75, 1.25, 0, 1, 2, -3, 0.5]
        let p = try w.withUnsafeBufferPointer { try CTQuantizer.weightParams($0, rows: 1, columns: 8, args: sym, type: .f32) }
        XCTAssertEqual(p.columns, 2)
        XCTAssertEqual(p.scales, [1, Float(3) / 7.5])
        let q = try w.withUnsafeBufferPointer { try CTQuantizer.quantize($0, rows: 1, columns: 8, params: p, args: sym, type: .f32) }
        XCTAssertEqual(q.map { Int8(bitPattern: $0) }, [7, -4, 1, 0, 2, 5, -8, 1],
                       "7.5 clamps to 7; -3.75 → -4; 1/0.4 = 2.5 → 2 (even); 2/0.4 = 5; -3/0.4 = -7.5 → -8; 0.5/0.4 = 1.25 → 1")

        let asym = try CTQuantizationArgs(numBits: 4, type: .int, symmetric: false, groupSize: 4, strategy: .group)
        let v: [Float] = [-1, 2, 0, 1, 0, 0, 0, 0]
        let pa = try v.withUnsafeBufferPointer { try CTQuantizer.weightParams($0, rows: 1, columns: 8, args: asym, type: .f32) }
        XCTAssertEqual(pa.zeroPoints, [-3, 0])
        XCTAssertEqual(pa.scales[1], CTComputeType.f32.eps, "an all-zero group gets epsilon as its scale")
        let qa = try v.withUnsafeBufferPointer { try CTQuantizer.quantize($0, rows: 1, columns: 8, params: pa, args: asym, type: .f32) }
        XCTAssertEqual(qa.map { Int8(bitPattern: $0) }, [-8, 7, -3, 2, 0, 0, 0, 0], "1/0.2 - 3 = 2")
        let da = try CTQuantizer.dequantize(qa, rows: 1, columns: 8, params: pa, args: asym, type: .f32)
        XCTAssertEqual(da[0], -5 * (Float(3) / 15))
        XCTAssertEqual(da[2], 0)
    }

    func testGroupSizeMustDivideColumns() throws {
        let args = try XCTUnwrap(CTSchemePreset.W4A16.scheme().weights)
        let w = [Float](repeating: 1, count: 2 * 200)
        XCTAssertThrowsError(try w.withUnsafeBufferPointer { try CTQuantizer.weightParams($0, rows: 2, columns: 200, args: args, type: .f32) })
        let narrow = [Float](repeating: 1, count: 2 * 64)   // fewer columns than a group: one group
        let p = try narrow.withUnsafeBufferPointer { try CTQuantizer.weightParams($0, rows: 2, columns: 64, args: args, type: .f32) }
        XCTAssertEqual(p.columns, 1)
    }

    func testFP8TensorBF16IsRoundedTwice() throws {
        let args = try XCTUnwrap(CTSchemePreset.FP8.scheme().weights)
        // amax 1 → scale bf16(1/448) = 146/128·2^-9; 1 / scale = 448·(128/146)·… rounds in bf16 first
        let w: [Float] = [1, -0.5, 0.25, 0.001]
        let p = try w.withUnsafeBufferPointer { try CTQuantizer.weightParams($0, rows: 2, columns: 2, args: args, type: .bf16) }
        XCTAssertEqual(p.scales, [146.0 / 128 / 512])
        let q = try w.withUnsafeBufferPointer { try CTQuantizer.quantize($0, rows: 2, columns: 2, params: p, args: args, type: .bf16) }
        for (i, x) in w.enumerated() {
            let scaled = CTComputeType.bf16.round(x / p.scales[0])
            XCTAssertEqual(q[i], CTFloat8.bits(scaled))
        }
        // 1 / (146/65536) = 448.876… → bf16 448 (exact) → E4M3 448; in f32 it would clamp to 448 too
        XCTAssertEqual(q[0], 0x7E)
        let d = try CTQuantizer.dequantize(q, rows: 2, columns: 2, params: p, args: args, type: .bf16)
        for v in d { XCTAssertEqual(v, CTComputeType.bf16.round(v), "dequantized values are bf16 values") }
    }

    func testFakeQuantizeTokensAndTensor() throws {
        let args = try XCTUnwrap(CTSchemePreset.W8A8.scheme().inputActivations)
        var x: [Float] = [127.5, 0, -63.75, 1,
                          1, 1, 1, 1]
        try x.withUnsafeMutableBufferPointer { try CTQuantizer.fakeQuantizeTokens($0, tokens: 2, features: 4, args: args, type: .f32) }
        XCTAssertEqual(Array(x[0..<4]), [127, 0, -64, 1], "token 1: scale 1")
        let s = Float(1) / 127.5
        XCTAssertEqual(Array(x[4..<8]), [Float](repeating: 127 * s, count: 4), "token 2: 1/s = 127.5 → 127")

        let fp8 = try XCTUnwrap(CTSchemePreset.FP8.scheme().inputActivations)
        var y: [Float] = [1, 1000, -3]
        try y.withUnsafeMutableBufferPointer { try CTQuantizer.fakeQuantizeTensor($0, scale: 0.5, args: fp8, type: .f32) }
        XCTAssertEqual(y, [1, 224, -3], "1000/0.5 clamps to 448 → 224")
    }

    func testPackingOrder() throws {
        // q = -8 … -1 → unsigned 0 … 7 → element i in bits 4i
        let q: [Int8] = [-8, -7, -6, -5, -4, -3, -2, -1, 7]
        let p = try CTPacking.pack(q, rows: 1, columns: 9, bits: 4)
        XCTAssertEqual(p, [0x7654_3210, 0x0000_000F])
        XCTAssertEqual(try CTPacking.unpack(p, rows: 1, columns: 9, bits: 4), q)
        // zero points packed along rows: 9 rows × 1 group → 2 × 1 words
        let pc = try CTPacking.packColumns(q, rows: 9, columns: 1, bits: 4)
        XCTAssertEqual(pc, [0x7654_3210, 0x0000_000F])
        XCTAssertEqual(try CTPacking.unpackColumns(pc, rows: 9, columns: 1, bits: 4), q)
        // 3 bits cross word boundaries: round trip
        var g = SystemRandomNumberGenerator()
        let r3 = (0..<(5 * 70)).map { _ in Int8.random(in: -4...3, using: &g) }
        let p3 = try CTPacking.pack(r3, rows: 5, columns: 70, bits: 3)
        XCTAssertEqual(p3.count, 5 * 7)
        XCTAssertEqual(try CTPacking.unpack(p3, rows: 5, columns: 70, bits: 3), r3)
        // 0x8…: the top nibble set gives a negative int32
        XCTAssertEqual(try CTPacking.pack([Int8](repeating: 7, count: 8), rows: 1, columns: 8, bits: 4), [Int32(bitPattern: 0xFFFF_FFFF)])
    }
}
