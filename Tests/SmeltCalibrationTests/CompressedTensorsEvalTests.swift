import Foundation
import XCTest
import SmeltCalibration
import SmeltCompressedTensors
import SmeltEval
import SmeltFormats
import SmeltQuantize
import SmeltTestSupport

/// compressed-tensors checkpoints evaluated as quantized: weights dequantized, input activations
/// fake-quantized as the scheme says (checked against Tests/scripts/fake_quant_reference.py, numpy).
final class CompressedTensorsEvalTests: XCTestCase {
    /// Runs the numpy reference of one linear layer with fake-quantized inputs.
    func reference(mode: String, x: [Float], w: [Float], tokens: Int, rows: Int, cols: Int, scale: Float = 0) throws -> [Float] {
        guard let py = Fixtures.venvPython else { throw XCTSkip("no .venv (make venv)") }
        let dir = try Fixtures.tempDir(self)
        let params: [String: Any] = ["mode": mode, "tokens": tokens, "rows": rows, "cols": cols, "scale": Double(scale)]
        try JSONSerialization.data(withJSONObject: params).write(to: dir.appendingPathComponent("params.json"))
        try x.withUnsafeBytes { Data($0) }.write(to: dir.appendingPathComponent("x.f32"))
        try w.withUnsafeBytes { Data($0) }.write(to: dir.appendingPathComponent("w.f32"))
        let p = Process()
        p.executableURL = py
        p.arguments = [Fixtures.repoRoot.appendingPathComponent("Tests/scripts/fake_quant_reference.py").path, dir.path]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return try Fixtures.readFloats(dir.appendingPathComponent("y.f32"))
    }

    /// Activations with a few outlier channels (what makes activation quantization visible).
    func activations(tokens: Int, cols: Int) -> [Float] {
        var g = SplitMix(state: 11)
        return (0..<(tokens * cols)).map { i in Float(g.normal()) * (i % cols == 7 ? 20 : 1) }
    }

    func write(_ scheme: CTSchemePreset, inputAbsMax: [String: Float] = [:]) throws -> URL {
        let out = try Fixtures.tempDir(self).appendingPathComponent("ckpt")
        var job = CompressedTensorsExport(input: try Tiny.tinyLlama(), output: out, scheme: scheme)
        job.inputAbsMax = inputAbsMax
        _ = try job.run()
        return out
    }

    func checkLayer(_ m: InferenceModel, _ reader: CTCheckpointReader, mode: String, scale: Float = 0) throws {
        let name = "blk.1.ffn_gate.weight", module = "model.layers.1.mlp.gate_proj"
        let w = try m.weightValues(name)
        XCTAssertEqual(w.values, try reader.dequantizedWeight(module: module), "weights not dequantized exactly")
        let tokens = 24
        let x = activations(tokens: tokens, cols: w.cols)
        let y = try m.applyLinear(name, input: x, rows: tokens)
        let ref = try reference(mode: mode, x: x, w: w.values, tokens: tokens, rows: w.rows, cols: w.cols, scale: scale)
        var plain = [Float](repeating: 0, count: tokens * w.rows)
        for t in 0..<tokens { for r in 0..<w.rows {
            var s: Float = 0
            for c in 0..<w.cols { s += x[t * w.cols + c] * w.values[r * w.cols + c] }
            plain[t * w.rows + r] = s
        } }
        var maxRef: Float = 0, maxPlain: Float = 0, mag: Float = 0
        for i in y.indices {
            maxRef = max(maxRef, abs(y[i] - ref[i])); maxPlain = max(maxPlain, abs(y[i] - plain[i])); mag = max(mag, abs(ref[i]))
        }
        XCTAssertLessThan(maxRef, 1e-4 * mag, "\(mode): Smelt's product differs from numpy's fake quantization by \(maxRef)")
        XCTAssertGreaterThan(maxPlain, 100 * maxRef, "\(mode): activations were not quantized")
    }

    func testW8A8QuantizesActivationsPerTokenInInt8() throws {
        let out = try write(.W8A8)
        let m = try InferenceModel(url: out, threads: 2)
        try checkLayer(m, try CTCheckpointReader(folder: out), mode: "int8_token")
    }

    func testFP8DynamicQuantizesActivationsPerTokenInE4M3() throws {
        let out = try write(.FP8_DYNAMIC)
        let m = try InferenceModel(url: out, threads: 2)
        try checkLayer(m, try CTCheckpointReader(folder: out), mode: "fp8_token")
    }

    func testFP8StaticInputScalesFromCalibration() throws {
        let model = try Tiny.load()
        let c = try Calibrator(model: model, tokens: Tiny.tokens(4 * 64), settings: CalibrationSettings(sequenceLength: 64, sequences: 4))
        let amax = try c.inputAbsMax()
        XCTAssertEqual(amax.count, 7 * 2)
        let out = try write(.FP8, inputAbsMax: amax)
        let reader = try CTCheckpointReader(folder: out)
        let module = "model.layers.1.mlp.gate_proj"
        let scale = try XCTUnwrap(try reader.inputScale(module: module))
        XCTAssertEqual(scale, try XCTUnwrap(amax[module]) / 448, accuracy: 1e-6 * scale)
        let m = try InferenceModel(url: out, threads: 2)
        try checkLayer(m, reader, mode: "fp8_tensor", scale: scale)
        // the whole model's logits move away from the float model's, by a little
        let toks = Tiny.tokens(2 * 64, seed: 5)
        let a = try Tiny.logits(m, toks, length: 64), b = try Tiny.logits(try Tiny.load(), toks, length: 64)
        let d = Tiny.meanSquared(a, b)
        XCTAssertGreaterThan(d, 0)
        XCTAssertLessThan(d, 0.5)
    }
}

/// The calibration options of `smelt quantize --format compressed-tensors`, through the binary.
final class CalibrationCommandTests: XCTestCase {
    func quantize(_ extra: [String], scheme: String, into dir: URL, name: String) throws -> URL {
        let out = dir.appendingPathComponent(name)
        let r = try SmeltBinary.run(["quantize", try Tiny.tinyLlama().path, "-o", out.path, "--format", "compressed-tensors",
                                     "--scheme", scheme, "--calibration-samples", "32", "--calibration-length", "64"] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    func testGPTQCheckpointHoldsGPTQsWeightsAndBeatsRoundToNearest() throws {
        let dir = try Fixtures.tempDir(self)
        let rtn = try quantize([], scheme: "W4A16", into: dir, name: "rtn")
        let gptq = try quantize(["--gptq"], scheme: "W4A16", into: dir, name: "gptq")
        // the same calibration in-process: the checkpoint holds exactly GPTQ's weights
        let model = try Tiny.load()
        let text = try model.makeTokenizer().encode(CalibrationText.text, addSpecial: true, parseSpecial: false)
        let grid = try XCTUnwrap(IntegerGrid(weights: CTSchemePreset.W4A16.scheme().weights!, type: .f32))
        let c = try Calibrator(model: model, tokens: text, settings: CalibrationSettings(sequenceLength: 64, sequences: 32))
        let outcome = try c.gptq(grid: { _ in grid })
        let reader = try CTCheckpointReader(folder: gptq)
        for module in ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"] {
            XCTAssertEqual(try reader.dequantizedWeight(module: module), outcome.quantized[module + ".weight"]?.values, module)
        }
        // on held-out text of the calibration's kind (the calibration text after the 32 sequences used):
        // closer to the float model than round-to-nearest
        let held = Array(text[(40 * 64)..<(48 * 64)])
        let reference = try Tiny.logits(try Tiny.load(), held, length: 64)
        let eR = Tiny.meanSquared(try Tiny.logits(try InferenceModel(url: rtn, threads: 2), held, length: 64), reference)
        let eG = Tiny.meanSquared(try Tiny.logits(try InferenceModel(url: gptq, threads: 2), held, length: 64), reference)
        print("held-out logit mean squared error: GPTQ \(eG), RTN \(eR)")
        XCTAssertLessThan(eG, eR, "GPTQ checkpoint's logit error \(eG) is not below RTN's \(eR)")
    }

    /// `--group-size`: GPTQ works on the groups the checkpoint stores (one scale per 32 columns here).
    func testGPTQFollowsTheGroupSize() throws {
        let dir = try Fixtures.tempDir(self)
        let out = dir.appendingPathComponent("g32")
        let r = try SmeltBinary.run(["quantize", try Tiny.tinyLlama().path, "-o", out.path, "--format", "compressed-tensors",
                                     "--scheme", "W4A16", "--group-size", "32", "--gptq", "--calibration-samples", "4", "--calibration-length", "64"])
        XCTAssertEqual(r.status, 0, r.stderr)
        var args = try XCTUnwrap(CTSchemePreset.W4A16.scheme().weights)
        args.groupSize = 32
        let model = try Tiny.load()
        let text = try model.makeTokenizer().encode(CalibrationText.text, addSpecial: true, parseSpecial: false)
        let grid = try XCTUnwrap(IntegerGrid(weights: args, type: .f32))
        let outcome = try Calibrator(model: model, tokens: text, settings: CalibrationSettings(sequenceLength: 64, sequences: 4)).gptq(grid: { _ in grid })
        let reader = try CTCheckpointReader(folder: out)
        XCTAssertEqual(reader.config.groups[0].scheme.weights, args)
        let m = "model.layers.1.mlp.down_proj"
        let shape = try XCTUnwrap(reader.checkpoint.tensor(named: m + ".weight_packed")?.shape)
        XCTAssertEqual(reader.checkpoint.tensor(named: m + ".weight_scale")?.shape, [shape[0], shape[1] * 8 / 32])
        XCTAssertEqual(try reader.dequantizedWeight(module: m), outcome.quantized[m + ".weight"]?.values)
    }

    func testSmoothQuantWritesFoldedNorms() throws {
        let dir = try Fixtures.tempDir(self)
        let plain = try quantize([], scheme: "W8A8", into: dir, name: "plain")
        let sq = try quantize(["--smoothquant", "0.8"], scheme: "W8A8", into: dir, name: "sq")
        let a = try CTCheckpointReader(folder: plain), b = try CTCheckpointReader(folder: sq)
        XCTAssertNotEqual(try a.floats(tensor: "model.layers.0.input_layernorm.weight"),
                          try b.floats(tensor: "model.layers.0.input_layernorm.weight"))
        XCTAssertEqual(try a.floats(tensor: "model.norm.weight"), try b.floats(tensor: "model.norm.weight"))
    }

    func testMisuseIsAUsageError() throws {
        let dir = try Fixtures.tempDir(self)
        for (args, message) in [(["--awq"], "--awq is for weight-only schemes"), (["--gptq", "--awq"], "alternatives"),
                                (["--smoothquant", "2"], "between 0 and 1"), (["--gptq-actorder", "dynamic", "--gptq"], "--gptq-actorder")] {
            let r = try SmeltBinary.run(["quantize", try Tiny.tinyLlama().path, "-o", dir.appendingPathComponent("x").path,
                                         "--format", "compressed-tensors", "--scheme", "W8A8"] + args)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x").path))
        }
    }
}
