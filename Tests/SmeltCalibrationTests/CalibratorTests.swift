import Foundation
import XCTest
import SmeltCalibration
import SmeltCompressedTensors
import SmeltEval
import SmeltFormats
import SmeltTestSupport

/// Records copies of the inputs of every product.
final class InputRecorder: ActivationObserver {
    var inputs: [String: [Float]] = [:]
    func observe(weight: String, input: UnsafePointer<Float>, rows: Int, cols: Int) {
        inputs[weight, default: []] += Array(UnsafeBufferPointer(start: input, count: rows * cols))
    }
}

final class CalibratorTests: XCTestCase {
    func tinyLlama() throws -> URL { try Fixtures.sharedFile("models/tiny/tiny-llama") }

    func load() throws -> InferenceModel {
        try InferenceModel(url: try tinyLlama(), threads: 2, cacheFloat32: true, llamaRounding: false, nativeKernels: false)
    }

    /// Deterministic token ids (the tiny model's vocabulary is 1000).
    func tokens(_ n: Int, seed: UInt64 = 7) -> [Int32] {
        var g = SplitMix(state: seed)
        return (0..<n).map { _ in Int32(g.next() % 990) + 3 }
    }

    func logits(_ m: InferenceModel, _ toks: [Int32], length: Int) throws -> [Float] {
        try m.forward(tokens: toks, sequenceLength: length, sequenceCount: toks.count / length)
    }

    func meanSquared(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(a.count)
    }

    /// Every linear weight of `m` replaced by its round-to-nearest quantization.
    func roundToNearest(_ m: InferenceModel, _ grid: IntegerGrid) throws {
        for il in 0..<m.layerCount {
            for name in m.linearWeightNames(layer: il) {
                let w = try m.weightValues(name)
                try m.replaceWeight(name, values: grid.roundToNearest(w.values, rows: w.rows, cols: w.cols))
            }
        }
    }

    func testBlockByBlockForwardSeesWhatTheForwardPassSees() throws {
        let m = try load()
        let toks = tokens(2 * 64)
        let whole = InputRecorder()
        _ = try m.forward(tokens: toks, sequenceLength: 64, sequenceCount: 2, observer: whole)
        let blocks = InputRecorder()
        var s = try m.embed(tokens: toks, sequenceLength: 64, sequenceCount: 2)
        for il in 0..<m.layerCount { try m.runLayer(il, &s, observer: blocks) }
        let last = "blk.\(m.layerCount - 1).ffn_down.weight"
        XCTAssertEqual(m.linearWeightNames(layer: 0), ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
                                                       "blk.0.attn_output.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
                                                       "blk.0.ffn_down.weight"])
        XCTAssertEqual(blocks.inputs[last]?.count, whole.inputs[last]?.count)
        XCTAssertEqual(blocks.inputs[last], whole.inputs[last])
        XCTAssertEqual(blocks.inputs["blk.0.attn_q.weight"], whole.inputs["blk.0.attn_q.weight"])
    }

    func testStatisticsMatchTheInputs() throws {
        let m = try load()
        let toks = tokens(3 * 32)
        var s = try m.embed(tokens: toks, sequenceLength: 32, sequenceCount: 3)
        let names = m.linearWeightNames(layer: 0)
        let stats = CalibrationStatistics(weights: names, hessian: true, threads: 2)
        let rec = InputRecorder()
        final class Both: ActivationObserver {
            let a: ActivationObserver, b: ActivationObserver
            init(_ a: ActivationObserver, _ b: ActivationObserver) { self.a = a; self.b = b }
            func observe(weight: String, input: UnsafePointer<Float>, rows: Int, cols: Int) {
                a.observe(weight: weight, input: input, rows: rows, cols: cols)
                b.observe(weight: weight, input: input, rows: rows, cols: cols)
            }
        }
        try m.runLayer(0, &s, observer: Both(stats, rec))
        // Q, K and V share one entry, gate and up another
        XCTAssertEqual(stats.inputOf["blk.0.attn_k.weight"], "blk.0.attn_q.weight")
        XCTAssertEqual(stats.inputOf["blk.0.attn_v.weight"], "blk.0.attn_q.weight")
        XCTAssertEqual(stats.inputOf["blk.0.ffn_up.weight"], "blk.0.ffn_gate.weight")
        XCTAssertEqual(stats.inputs.count, 4)
        for name in ["blk.0.attn_q.weight", "blk.0.attn_output.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"] {
            let st = try XCTUnwrap(stats.statistics(of: name))
            let x = try XCTUnwrap(rec.inputs[name])
            let n = st.channels, t = x.count / n
            XCTAssertEqual(st.count, t)
            for j in stride(from: 0, to: n, by: 37) {
                let col = (0..<t).map { x[$0 * n + j] }
                XCTAssertEqual(st.absMax[j], col.map(abs).max()!)
                XCTAssertEqual(st.minimum[j], col.min()!)
                XCTAssertEqual(st.maximum[j], col.max()!)
                XCTAssertEqual(Double(st.meanAbs[j]), col.reduce(0.0) { $0 + Double(abs($1)) } / Double(t), accuracy: 1e-5)
                let h = try XCTUnwrap(st.hessian)
                for k in stride(from: 0, to: n, by: 53) {
                    let direct = (0..<t).reduce(0.0) { $0 + Double(x[$1 * n + j]) * Double(x[$1 * n + k]) } * 2 / Double(t)
                    XCTAssertEqual(h[j * n + k], direct, accuracy: 1e-4 * max(1, abs(direct)))
                }
            }
        }
    }

    func testGPTQOnAModelBeatsRoundToNearest() throws {
        let grid = IntegerGrid(weights: CTSchemePreset.W4A16.scheme().weights!, type: .f32)!
        // 2048 calibration tokens (with 512, fewer than the widest layer's 512 inputs × 4, GPTQ overfits)
        let nCal = 32
        let calibration = tokens(nCal * 64, seed: 1), evaluation = tokens(4 * 64, seed: 2)
        let reference = try logits(try load(), evaluation, length: 64)
        let rtn = try load()
        try roundToNearest(rtn, grid)
        let eR = meanSquared(try logits(rtn, evaluation, length: 64), reference)
        let m = try load()
        let c = try Calibrator(model: m, tokens: calibration, settings: CalibrationSettings(sequenceLength: 64, sequences: nCal, batch: 3))
        let out = try c.gptq(grid: { $0.hasSuffix("_proj.weight") ? grid : nil })
        XCTAssertEqual(out.quantized.count, 7 * m.layerCount)
        XCTAssertNotNil(out.quantized["model.layers.1.mlp.down_proj.weight"])
        // the model now holds the GPTQ weights: integers · scales
        let q = try XCTUnwrap(out.quantized["model.layers.0.self_attn.q_proj.weight"])
        XCTAssertEqual(try m.weightValues("blk.0.attn_q.weight").values, q.values)
        let eG = meanSquared(try logits(m, evaluation, length: 64), reference)
        print("logit mean squared error: GPTQ \(eG), RTN \(eR)")
        XCTAssertLessThan(eG, eR, "GPTQ logit error \(eG) not below RTN's \(eR)")
    }
}

