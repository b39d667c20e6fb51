import Foundation
import XCTest
import SmeltCalibration
import SmeltEval
import SmeltTestSupport


/// Synthetic layer: weights, correlated activations with a few large channels and one dead channel.
struct SyntheticLayer {
    let rows: Int, cols: Int, tokens: Int
    var w: [Float]
    var x: [Float]      // tokens × cols
    var hessian: [Double]

    init(rows: Int, cols: Int, tokens: Int, seed: UInt64, deadColumn: Int? = nil) {
        self.rows = rows; self.cols = cols; self.tokens = tokens
        var g = SplitMix(state: seed)
        w = (0..<(rows * cols)).map { _ in Float(g.normal() * 0.05) }
        // a few latent factors mixed into every channel: a correlated, ill-conditioned Hessian
        let factors = 8
        let mix = (0..<(factors * cols)).map { _ in g.normal() }
        let channelScale = (0..<cols).map { j in j % 17 == 0 ? 8.0 : 0.5 + abs(g.uniform()) }
        var xs = [Float](repeating: 0, count: tokens * cols)
        for t in 0..<tokens {
            let f = (0..<factors).map { _ in g.normal() }
            for j in 0..<cols {
                var v = g.normal() * 0.3
                for k in 0..<factors { v += f[k] * mix[k * cols + j] * 0.4 }
                xs[t * cols + j] = Float(v * channelScale[j])
            }
        }
        if let d = deadColumn { for t in 0..<tokens { xs[t * cols + d] = 0 } }
        x = xs
        var h = [Double](repeating: 0, count: cols * cols)
        for t in 0..<tokens {
            for i in 0..<cols {
                let a = Double(xs[t * cols + i])
                if a == 0 { continue }
                for j in 0..<cols { h[i * cols + j] += a * Double(xs[t * cols + j]) }
            }
        }
        hessian = h.map { $0 * 2 / Double(tokens) }
    }

    /// ‖W X − Ŵ X‖² over the tokens (Frobenius).
    func outputError(_ q: [Float]) -> Double {
        var e = 0.0
        for t in 0..<tokens {
            for r in 0..<rows {
                var d = 0.0
                for j in 0..<cols { d += Double(w[r * cols + j] - q[r * cols + j]) * Double(x[t * cols + j]) }
                e += d * d
            }
        }
        return e
    }
}

final class GPTQTests: XCTestCase {
    /// Runs Tests/scripts/gptq_reference.py (numpy) on the same inputs.
    func reference(_ l: SyntheticLayer, grid: IntegerGrid, options: GPTQOptions) throws -> [Double] {
        guard let py = Fixtures.venvPython else { throw XCTSkip("no .venv (make venv)") }
        let dir = try Fixtures.tempDir(self)
        let params: [String: Any] = [
            "rows": l.rows, "cols": l.cols, "bits": grid.bits, "symmetric": grid.symmetric,
            "group_size": grid.groupSize ?? 0, "actorder": options.actOrder, "block_size": options.blockSize,
            "dampening": options.dampening, "eps": grid.epsilon,
        ]
        try JSONSerialization.data(withJSONObject: params).write(to: dir.appendingPathComponent("params.json"))
        try l.w.map { Double($0) }.withUnsafeBytes { Data($0) }.write(to: dir.appendingPathComponent("w.f64"))
        try l.hessian.withUnsafeBytes { Data($0) }.write(to: dir.appendingPathComponent("h.f64"))
        let p = Process()
        p.executableURL = py
        p.arguments = [Fixtures.repoRoot.appendingPathComponent("Tests/scripts/gptq_reference.py").path, dir.path]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "gptq_reference.py failed")
        let d = try Data(contentsOf: dir.appendingPathComponent("q.f64"))
        return d.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
    }

    func check(grid: IntegerGrid, options: GPTQOptions, rows: Int = 48, cols: Int = 320, seed: UInt64) throws {
        let l = SyntheticLayer(rows: rows, cols: cols, tokens: 600, seed: seed, deadColumn: 5)
        let r = try GPTQ.quantize(weight: l.w, rows: rows, cols: cols, hessian: l.hessian, grid: grid, options: options)
        XCTAssertFalse(r.fellBack)
        let ref = try reference(l, grid: grid, options: options)
        XCTAssertEqual(ref.count, r.values.count)
        var maxDiff = 0.0, differing = 0
        for i in ref.indices {
            let d = abs(ref[i] - Double(r.values[i]))
            maxDiff = max(maxDiff, d)
            if d > 1e-6 { differing += 1 }
        }
        XCTAssertEqual(differing, 0, "GPTQ differs from the numpy reference in \(differing) weights (max \(maxDiff))")
        // the integers and scales reproduce the values
        let groups = grid.groups(cols: cols), gs = grid.groupSize ?? cols
        for i in 0..<(rows * cols) {
            let rr = i / cols, g = (i % cols) / gs
            let v = (Float(r.integers[i]) - Float(r.zeroPoints[rr * groups + g])) * r.scales[rr * groups + g]
            XCTAssertEqual(v, r.values[i], accuracy: 1e-6 * max(1, abs(v)))
        }
        // the dead column is zero
        for rr in 0..<rows { XCTAssertEqual(r.values[rr * cols + 5], 0) }
        // GPTQ's layer output error is lower than round-to-nearest's
        let rtn = grid.roundToNearest(l.w, rows: rows, cols: cols)
        let eG = l.outputError(r.values), eR = l.outputError(rtn)
        XCTAssertLessThan(eG, eR * 0.9, "GPTQ ‖WX − ŴX‖² \(eG) is not clearly below RTN's \(eR)")
    }

    func testW4GroupsStaticActOrderMatchesReference() throws {
        try check(grid: .w4(), options: GPTQOptions(), seed: 1)
    }

    func testW4AsymmetricInOrderMatchesReference() throws {
        // IST-DASLab's dynamic groups: scales at each group's first column from the updated weights;
        // groups of 32 inside blocks of 64 (group starts in the middle of a block)
        try check(grid: IntegerGrid(bits: 4, symmetric: false, groupSize: 32),
                  options: GPTQOptions(blockSize: 64, actOrder: false), seed: 2)
    }

    func testW8ChannelMatchesReference() throws {
        try check(grid: .w8, options: GPTQOptions(blockSize: 128, actOrder: true), seed: 3)
    }

    func testBadShapesAreErrors() {
        XCTAssertThrowsError(try GPTQ.quantize(weight: [1, 2, 3], rows: 2, cols: 2, hessian: [1, 0, 0, 1], grid: .w8))
        XCTAssertThrowsError(try GPTQ.quantize(weight: [1, 2, 3, 4], rows: 2, cols: 2, hessian: [1], grid: .w8))
    }

    func testNotPositiveDefiniteFallsBackToRoundToNearest() throws {
        // negative diagonal: not a Hessian; llm-compressor falls back to round-to-nearest
        let w: [Float] = [0.1, -0.2, 0.3, 0.05]
        let r = try GPTQ.quantize(weight: w, rows: 1, cols: 4, hessian: [-1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1],
                                  grid: IntegerGrid(bits: 4, symmetric: true, groupSize: nil), options: GPTQOptions(actOrder: false))
        XCTAssertTrue(r.fellBack)
        XCTAssertEqual(r.values, IntegerGrid(bits: 4, symmetric: true, groupSize: nil).roundToNearest(w, rows: 1, cols: 4))
    }
}
