import XCTest
import SmeltFormats
@testable import SmeltQuant

/// Properties of the codebook ("iq") kernels beyond the golden vectors.
final class IQKernelTests: XCTestCase {
    static let kernels: [(any QuantType.Type, needsImportance: Bool)] = [
        (IQ2_XXS.self, true), (IQ2_XS.self, true), (IQ2_S.self, false), (IQ3_XXS.self, false),
        (IQ3_S.self, false), (IQ1_S.self, true), (IQ1_M.self, false),
    ]

    /// Deterministic Gaussian-ish data (xorshift + Box-Muller).
    func gaussian(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        func next() -> Double {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return (Double(s >> 11) + 0.5) / Double(1 << 53)
        }
        return (0..<n).map { _ in Float((-2 * Foundation.log(next())).squareRoot() * Foundation.cos(2 * Double.pi * next())) }
    }

    func testImportanceRequirementMatchesGGML() {
        // ggml_quantize_requires_imatrix: IQ2_XXS, IQ2_XS, IQ1_S (not IQ1_M).
        for (k, needs) in Self.kernels {
            XCTAssertEqual(k.requiresImportance, needs, "\(k.ggmlType)")
            XCTAssertTrue(QuantRegistry.kernel(for: k.ggmlType) == k, "\(k.ggmlType) registered")
        }
    }

    func testRoundTripErrorIsBounded() {
        let rows = 4, n = 1024
        let x = gaussian(rows * n, seed: 0x5EED)
        let qw = gaussian(n, seed: 42).map { $0 * $0 + 0.1 }
        // Upper bounds on RMS error / RMS value (measured values are well below).
        let bounds: [GGMLType: Float] = [.iq1_s: 0.65, .iq1_m: 0.65, .iq2_xxs: 0.45, .iq2_xs: 0.40,
                                         .iq2_s: 0.35, .iq3_xxs: 0.25, .iq3_s: 0.22]
        for (k, needs) in Self.kernels {
            for useImportance in needs ? [true] : [true, false] {
                let t = k.ggmlType
                let rowBytes = t.rowBytes(n)!
                var q = [UInt8](repeating: 0, count: rows * rowBytes)
                var back = [Float](repeating: .nan, count: rows * n)
                x.withUnsafeBufferPointer { xp in
                    qw.withUnsafeBufferPointer { wp in
                        q.withUnsafeMutableBytes { qp in
                            back.withUnsafeMutableBufferPointer { bp in
                                for r in 0..<rows {
                                    k.quantizeRow(xp.baseAddress! + r * n, qp.baseAddress! + r * rowBytes, count: n,
                                                  importance: useImportance ? wp.baseAddress! : nil)
                                    k.dequantizeRow(qp.baseAddress! + r * rowBytes, bp.baseAddress! + r * n, count: n)
                                }
                            }
                        }
                    }
                }
                var err: Double = 0, ref: Double = 0
                for i in 0..<x.count {
                    let e = Double(back[i] - x[i])
                    err += e * e; ref += Double(x[i]) * Double(x[i])
                }
                let rel = Float((err / ref).squareRoot())
                XCTAssertTrue(rel.isFinite && rel < bounds[t]!, "\(t) importance=\(useImportance): relative RMSE \(rel)")
            }
        }
    }

    /// Rows are quantized block by block: a row's bytes equal its blocks quantized alone.
    func testBlocksAreIndependent() {
        let n = 768
        let x = gaussian(n, seed: 7)
        let qw = gaussian(n, seed: 8).map { abs($0) }
        for (k, _) in Self.kernels {
            let t = k.ggmlType
            let rowBytes = t.rowBytes(n)!, bb = t.bytesPerBlock
            var whole = [UInt8](repeating: 0, count: rowBytes), parts = [UInt8](repeating: 0xAA, count: rowBytes)
            x.withUnsafeBufferPointer { xp in
                qw.withUnsafeBufferPointer { wp in
                    whole.withUnsafeMutableBytes { k.quantizeRow(xp.baseAddress!, $0.baseAddress!, count: n, importance: wp.baseAddress!) }
                    parts.withUnsafeMutableBytes { pp in
                        for b in 0..<(n / 256) {
                            k.quantizeRow(xp.baseAddress! + 256 * b, pp.baseAddress! + bb * b, count: 256,
                                          importance: wp.baseAddress! + 256 * b)
                        }
                    }
                }
            }
            XCTAssertEqual(whole, parts, "\(t)")
        }
    }

    /// The fast neighbour-map construction equals ggml's literal method (sort every
    /// grid point by (distance², index), keep the `nwant` nearest distance shells).
    func testNeighbourMapsMatchGGMLConstruction() {
        let cases: [(IQGridTables, [UInt16], Int, Int, Int)] = [
            (IQGridTables.iq2xxs, IQKGrids.kgrid2bit256, 8, 2, 2), (IQGridTables.iq2xs, IQKGrids.kgrid2bit512, 8, 2, 2),
            (IQGridTables.iq2s, IQKGrids.kgrid2bit1024, 8, 2, 1), (IQGridTables.iq1, IQKGrids.kgrid1bit2048, 8, 2, 3),
            (IQGridTables.iq3xxs, IQKGrids.kgrid3bit256, 4, 3, 2), (IQGridTables.iq3s, IQKGrids.kgrid3bit512, 4, 3, 3),
        ]
        for (t, kgrid, dim, bits, nwant) in cases {
            let kmapSize = dim == 8 ? 43692 : 4096
            var checked = 0
            for i in stride(from: 0, to: kmapSize, by: dim == 8 ? 173 : 11) {
                if let g = kgrid.firstIndex(of: UInt16(i)) {
                    XCTAssertEqual(Int(t.map[i]), g); continue
                }
                var d: [(Int, Int)] = []
                for (j, p) in kgrid.enumerated() {
                    var d2 = 0
                    for c in 0..<dim {
                        let a = 2 * ((i >> (bits * c)) & ((1 << bits) - 1)) + 1
                        let b = 2 * ((Int(p) >> (bits * c)) & ((1 << bits) - 1)) + 1
                        d2 += (a - b) * (a - b)
                    }
                    d.append((d2, j))
                }
                d.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
                var want: [Int] = [], have = 1, cur = d[0].0
                for (d2, j) in d {
                    if d2 > cur { if have == nwant { break }; cur = d2; have += 1 }
                    want.append(j)
                }
                XCTAssertLessThan(t.map[i], 0)
                let list = t.neighbourList(i)
                let got = (0..<Int(list[0])).map { Int(list[1 + $0]) }
                XCTAssertEqual(got, want, "point \(i)")
                checked += 1
            }
            XCTAssertGreaterThan(checked, 50)
        }
    }

    func testNearestIntRoundsHalfToEven() {
        XCTAssertEqual(nearestInt(0.5), 0)
        XCTAssertEqual(nearestInt(1.5), 2)
        XCTAssertEqual(nearestInt(2.5), 2)
        XCTAssertEqual(nearestInt(-0.5), 0)
        XCTAssertEqual(nearestInt(-1.5), -2)
        XCTAssertEqual(nearestInt(3.49), 3)
    }
}
