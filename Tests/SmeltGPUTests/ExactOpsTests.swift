import Foundation
import XCTest
import SmeltTestSupport
import SmeltFormats
@testable import SmeltGPU

/// The shaders' emulated division, square root and f16/bf16 rounding against the CPU's IEEE
/// results (x86 divss/sqrtss, Swift's correctly rounded Float16 conversion, ggml's bf16
/// rounding): every pair of special values (zeros, subnormals, the largest and smallest
/// normals, infinities, NaNs, f16 rounding boundaries) and 2 million random operands.
/// With the hardware switch on the same comparison must find differences.
final class ExactOpsTests: XCTestCase {
    static let specials: [UInt32] = {
        var s: [UInt32] = [0x0000_0000, 0x0000_0001, 0x0000_0002, 0x0000_0003, 0x003F_FFFF, 0x0040_0000, 0x007F_FFFF,
                           0x0080_0000, 0x0080_0001, 0x0100_0000, 0x7F7F_FFFF, 0x7F7F_FFFE, 0x7F00_0000, 0x7F80_0000,
                           0x7FC0_0000, 0x7F80_0001, 0x7FFF_FFFF, 0x3F80_0000, 0x3F80_0001, 0x3F7F_FFFF, 0x4000_0000,
                           0x4040_0000, 0x3F00_0000, 0x42FE_0000]
        // f16 boundaries: max (65504), halfway to overflow (65520), min normal, min subnormal and
        // values just around halfway points.
        for f: Float in [65504, 65520, 65519.996, 6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08,
                         8.940697e-08, 1.0009766, 1.0004883, 1.0014648, 2049, 2051, 0.1, 1e-30, 1e30, 3.0e-39] {
            s.append(f.bitPattern)
        }
        return s + s.map { $0 | 0x8000_0000 }
    }()

    /// Operand pairs: all pairs of specials, then random bit patterns and random "typical" floats.
    static func operands(random: Int) -> [(UInt32, UInt32)] {
        var pairs: [(UInt32, UInt32)] = []
        for a in specials { for b in specials { pairs.append((a, b)) } }
        var seeded = SplitMix(seed: 0x5EED_1234)
        for i in 0..<random {
            if i % 2 == 0 {
                pairs.append((UInt32(truncatingIfNeeded: seeded.next()), UInt32(truncatingIfNeeded: seeded.next() >> 32)))
            } else {
                // exponents near 1 (where quantization scales live) and in the subnormal range
                let r = seeded.next()
                let ea = UInt32(truncatingIfNeeded: (r >> 40) % 60) + (i % 6 == 1 ? 0 : 97)
                let eb = UInt32(truncatingIfNeeded: (r >> 50) % 60) + 97
                pairs.append(((ea << 23) | UInt32(truncatingIfNeeded: r) & 0x807F_FFFF,
                              (eb << 23) | UInt32(truncatingIfNeeded: r >> 20) & 0x807F_FFFF))
            }
        }
        return pairs
    }

    /// Differences per operation between the GPU and the CPU on `pairs`, with examples.
    static func compare(_ q: GPUQuantizer, _ pairs: [(UInt32, UInt32)]) throws -> ([String: Int], [String]) {
        let got = try q.exactOps(pairs)
        var counts = ["div": 0, "sqrt": 0, "f16": 0, "bf16": 0]
        var examples: [String] = []
        func miss(_ op: String, _ detail: @autoclosure () -> String) {
            counts[op, default: 0] += 1
            if examples.count < 12 { examples.append(detail()) }
        }
        for (ab, g) in zip(pairs, got) {
            let a = Float(bitPattern: ab.0), b = Float(bitPattern: ab.1)
            let div = (a / b).bitPattern
            if g.div != div { miss("div", String(format: "div %08x / %08x: gpu %08x cpu %08x", ab.0, ab.1, g.div, div)) }
            let sq = a.squareRoot().bitPattern
            if g.sqrt != sq { miss("sqrt", String(format: "sqrt %08x: gpu %08x cpu %08x", ab.0, g.sqrt, sq)) }
            let h: UInt16 = a.isNaN ? UInt16(truncatingIfNeeded: (ab.0 >> 16) & 0x8000) | 0x7E00 : Float16(a).bitPattern
            if g.f16 != h { miss("f16", String(format: "f16 %08x: gpu %04x cpu %04x", ab.0, g.f16, h)) }
            let bf = FloatFormats.floatToBF16(a)
            if g.bf16 != bf { miss("bf16", String(format: "bf16 %08x: gpu %04x cpu %04x", ab.0, g.bf16, bf)) }
        }
        return (counts, examples)
    }

    func testEmulatedOperationsMatchIEEE() throws {
        let q = try GPUQuantizer(device: try GPUTestDevice.device())
        let pairs = Self.operands(random: 2_000_000)
        let (counts, examples) = try Self.compare(q, pairs)
        print("exact ops on \(pairs.count) operand pairs: differences \(counts.sorted { $0.key < $1.key })")
        XCTAssertEqual(counts.values.reduce(0, +), 0, "\n" + examples.joined(separator: "\n"))
        GPUTestDevice.checkValidation()
    }

    func testHardwareSwitchMakesTheTestsFail() throws {
        let q = try GPUQuantizer(device: try GPUTestDevice.device(), hardwareOps: true)
        let pairs = Self.operands(random: 200_000)
        let (counts, examples) = try Self.compare(q, pairs)
        print("hardware ops on \(pairs.count) operand pairs: differences \(counts.sorted { $0.key < $1.key })")
        print(examples.joined(separator: "\n"))
        XCTAssertGreaterThan(counts.values.reduce(0, +), 0, "the hardware operations should differ somewhere")
    }
}

