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

/// tiny-llama helpers.
enum Tiny {
    static func tinyLlama() throws -> URL { try Fixtures.sharedFile("models/tiny/tiny-llama") }

    static func load() throws -> InferenceModel {
        try InferenceModel(url: try tinyLlama(), threads: 2, cacheFloat32: true, llamaRounding: false, nativeKernels: false)
    }

    /// Deterministic token ids (the tiny model's vocabulary is 1000).
    static func tokens(_ n: Int, seed: UInt64 = 7) -> [Int32] {
        var g = SplitMix(state: seed)
        return (0..<n).map { _ in Int32(g.next() % 990) + 3 }
    }

    static func logits(_ m: InferenceModel, _ toks: [Int32], length: Int) throws -> [Float] {
        try m.forward(tokens: toks, sequenceLength: length, sequenceCount: toks.count / length)
    }

    static func meanSquared(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(a.count)
    }

    /// Every linear weight of `m` replaced by its round-to-nearest quantization.
    static func roundToNearest(_ m: InferenceModel, _ grid: IntegerGrid) throws {
        for il in 0..<m.layerCount {
            for name in m.linearWeightNames(layer: il) {
                let w = try m.weightValues(name)
                try m.replaceWeight(name, values: grid.roundToNearest(w.values, rows: w.rows, cols: w.cols))
            }
        }
    }

    /// tiny-llama with a few outlier input channels before Q/K/V and gate/up: the norm weights of
    /// channels 3, 77 and 150 multiplied by 40 and the following columns divided by 40 (same function).
    static func outlierModel() throws -> InferenceModel {
        let m = try load()
        for il in 0..<m.layerCount {
            for (norm, role) in [(BlockNorm.attention, ["attn_q", "attn_k", "attn_v"]), (.feedForward, ["ffn_gate", "ffn_up"])] {
                var n = try m.normWeight(layer: il, norm)
                for j in [3, 77, 150] { n[j] *= 40 }
                try m.replaceNormWeight(layer: il, norm, values: n)
                for r in role {
                    let name = "blk.\(il).\(r).weight"
                    var w = try m.weightValues(name)
                    for row in 0..<w.rows { for j in [3, 77, 150] { w.values[row * w.cols + j] /= 40 } }
                    try m.replaceWeight(name, values: w.values)
                }
            }
        }
        return m
    }
}

final class CalibratorTests: XCTestCase {
    func testBlockByBlockForwardSeesWhatTheForwardPassSees() throws {
        let m = try Tiny.load()
        let toks = Tiny.tokens(2 * 64)
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

    func testInputQuantizerAppliesToProductsOnly() throws {
        let m = try Tiny.load()
        let name = "blk.0.ffn_down.weight"
        let w = try m.weightValues(name)
        var g = SplitMix(state: 3)
        let x = (0..<(5 * w.cols)).map { _ in Float(g.normal() * 3) }
        let plain = try m.applyLinear(name, input: x, rows: 5)
        // inputs rounded to integers before the product
        try m.setInputQuantizer(name) { p, rows, cols in for i in 0..<(rows * cols) { p[i] = p[i].rounded() } }
        let rounded = try m.applyLinear(name, input: x, rows: 5)
        for t in 0..<5 {
            for r in stride(from: 0, to: w.rows, by: 31) {
                var a = 0.0, b = 0.0
                for c in 0..<w.cols {
                    a += Double(x[t * w.cols + c].rounded()) * Double(w.values[r * w.cols + c])
                    b += Double(x[t * w.cols + c]) * Double(w.values[r * w.cols + c])
                }
                XCTAssertEqual(Double(rounded[t * w.rows + r]), a, accuracy: 1e-3)
                XCTAssertEqual(Double(plain[t * w.rows + r]), b, accuracy: 1e-3)
            }
        }
        // the observer still sees the unquantized input (the statistics are of the real activations)
        let rec = InputRecorder()
        let toks = Tiny.tokens(64)
        var s = try m.embed(tokens: toks, sequenceLength: 64)
        try m.runLayer(0, &s, observer: rec)
        XCTAssertTrue(rec.inputs[name]!.contains { $0 != $0.rounded() })
        try m.setInputQuantizer(name, nil)
        XCTAssertEqual(try m.applyLinear(name, input: x, rows: 5), plain)
    }

    /// The calibration sequences are spread evenly over the text (chunk k·m/n of its m chunks), not its
    /// first n chunks: 2 sequences of a 9-chunk text are chunks 0 and 4.
    func testCalibrationSequencesAreSpreadOverTheText() throws {
        let L = 16
        let text = Tiny.tokens(9 * L + 5, seed: 11)
        func chunk(_ i: Int) -> [Int32] { Array(text[(i * L)..<((i + 1) * L)]) }
        func absMax(_ tokens: [Int32]) throws -> [String: Float] {
            try Calibrator(model: try Tiny.load(), tokens: tokens,
                           settings: CalibrationSettings(sequenceLength: L, sequences: 2, batch: 1, addBOS: false)).inputAbsMax()
        }
        let spread = try absMax(text)
        XCTAssertEqual(spread, try absMax(chunk(0) + chunk(4)))
        XCTAssertNotEqual(spread, try absMax(chunk(0) + chunk(1)))
        // every chunk when the text has fewer than asked for
        let all = try Calibrator(model: try Tiny.load(), tokens: Array(text.prefix(3 * L)),
                                 settings: CalibrationSettings(sequenceLength: L, sequences: 16, batch: 2, addBOS: false))
        XCTAssertEqual(all.tokens, 3 * L)
    }

    func testStatisticsMatchTheInputs() throws {
        let m = try Tiny.load()
        let toks = Tiny.tokens(3 * 32)
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
        let calibration = Tiny.tokens(nCal * 64, seed: 1), evaluation = Tiny.tokens(4 * 64, seed: 2)
        let reference = try Tiny.logits(try Tiny.load(), evaluation, length: 64)
        let rtn = try Tiny.load()
        try Tiny.roundToNearest(rtn, grid)
        let eR = Tiny.meanSquared(try Tiny.logits(rtn, evaluation, length: 64), reference)
        let m = try Tiny.load()
        let c = try Calibrator(model: m, tokens: calibration, settings: CalibrationSettings(sequenceLength: 64, sequences: nCal, batch: 3))
        let out = try c.gptq(grid: { $0.hasSuffix("_proj.weight") ? grid : nil })
        XCTAssertEqual(out.quantized.count, 7 * m.layerCount)
        XCTAssertNotNil(out.quantized["model.layers.1.mlp.down_proj.weight"])
        // the model now holds the GPTQ weights: integers · scales
        let q = try XCTUnwrap(out.quantized["model.layers.0.self_attn.q_proj.weight"])
        XCTAssertEqual(try m.weightValues("blk.0.attn_q.weight").values, q.values)
        let eG = Tiny.meanSquared(try Tiny.logits(m, evaluation, length: 64), reference)
        print("logit mean squared error: GPTQ \(eG), RTN \(eR)")
        XCTAssertLessThan(eG, eR, "GPTQ logit error \(eG) not below RTN's \(eR)")
    }
}


final class SmoothingTests: XCTestCase {

    /// W8A8 as the scheme runs it: int8 weights per channel, int8 activations per token.
    func w8a8(_ m: InferenceModel) throws {
        let scheme = CTSchemePreset.W8A8.scheme()
        let grid = try XCTUnwrap(IntegerGrid(weights: scheme.weights!, type: .f32))
        let acts = try XCTUnwrap(scheme.inputActivations)
        try Tiny.roundToNearest(m, grid)
        for il in 0..<m.layerCount {
            for name in m.linearWeightNames(layer: il) {
                try m.setInputQuantizer(name) { p, rows, cols in
                    try? CTQuantizer.fakeQuantizeTokens(UnsafeMutableBufferPointer(start: p, count: rows * cols),
                                                        tokens: rows, features: cols, args: acts, type: .f32)
                }
            }
        }
    }

    func testSmoothQuantKeepsTheFloatModelAndHelpsW8A8() throws {
        let calibration = Tiny.tokens(8 * 64, seed: 1), evaluation = Tiny.tokens(4 * 64, seed: 2)
        let reference = try Tiny.logits(try Tiny.outlierModel(), evaluation, length: 64)
        let plain = try Tiny.outlierModel()
        try w8a8(plain)
        let ePlain = Tiny.meanSquared(try Tiny.logits(plain, evaluation, length: 64), reference)

        let m = try Tiny.outlierModel()
        let c = try Calibrator(model: m, tokens: calibration, settings: CalibrationSettings(sequenceLength: 64, sequences: 8))
        let out = try c.smoothQuant(alpha: 0.8)
        XCTAssertEqual(out.norms.count, 2 * m.layerCount)
        XCTAssertEqual(out.weights.count, 5 * m.layerCount)
        XCTAssertNotNil(out.norms["model.layers.0.input_layernorm.weight"])
        XCTAssertNotNil(out.norms["model.layers.1.post_attention_layernorm.weight"])
        // the outlier channels were scaled down the most
        let n: [Float] = try XCTUnwrap(out.norms["model.layers.0.input_layernorm.weight"])
        let before = try Tiny.outlierModel().normWeight(layer: 0, .attention)
        let ratio = zip(n, before).map { Double($0 / $1) }
        XCTAssertLessThan(ratio[77], ratio.sorted()[ratio.count / 2] / 4)
        // folding leaves the float model's function (float32 rounding only)
        let folded = try Tiny.logits(m, evaluation, length: 64)
        XCTAssertLessThan(Tiny.meanSquared(folded, reference), 1e-8)
        try w8a8(m)
        let eSmooth = Tiny.meanSquared(try Tiny.logits(m, evaluation, length: 64), reference)
        print("W8A8 logit mean squared error: plain \(ePlain), SmoothQuant \(eSmooth)")
        XCTAssertLessThan(eSmooth, ePlain * 0.8)
    }

    /// On the model with outlier input channels (salient channels: what AWQ protects).
    func testAWQBeatsRoundToNearest() throws {
        let grid = try XCTUnwrap(IntegerGrid(weights: CTSchemePreset.W4A16.scheme().weights!, type: .f32))
        let calibration = Tiny.tokens(16 * 64, seed: 1), evaluation = Tiny.tokens(4 * 64, seed: 2)
        let reference = try Tiny.logits(try Tiny.outlierModel(), evaluation, length: 64)
        let rtn = try Tiny.outlierModel()
        try Tiny.roundToNearest(rtn, grid)
        let eR = Tiny.meanSquared(try Tiny.logits(rtn, evaluation, length: 64), reference)
        let m = try Tiny.outlierModel()
        let c = try Calibrator(model: m, tokens: calibration, settings: CalibrationSettings(sequenceLength: 64, sequences: 16))
        let out = try c.awq(grid: { _ in grid }, options: AWQOptions(searchSequences: 4, clipTokens: 256))
        XCTAssertEqual(out.norms.count, 2 * m.layerCount)
        // v → o is skipped (grouped-query attention: v has fewer rows than o has columns); up → down is a mapping
        XCTAssertNotNil(out.weights["model.layers.0.mlp.up_proj.weight"])
        try Tiny.roundToNearest(m, grid)
        let eA = Tiny.meanSquared(try Tiny.logits(m, evaluation, length: 64), reference)
        print("W4A16 logit mean squared error: AWQ \(eA), RTN \(eR)")
        XCTAssertLessThan(eA, eR * 0.8)
    }
}
