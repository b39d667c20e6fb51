import Foundation
import XCTest
import SmeltFormats
import SmeltQuantize
import SmeltTestSupport
@testable import SmeltCompressedTensors

/// Smelt's compressed-tensors checkpoints read by the independent readers: compressed-tensors'
/// `QuantizationConfig` and `CompressedTensorsDequantizer`, and transformers (scripts/ct-read-back.py in
/// the opt-in venv `make venv-ct`). Every dequantized tensor must equal Smelt's reader's value exactly.
final class ReadBackTests: XCTestCase {
    func testCompressedTensorsAndTransformersReadSmeltCheckpoints() throws {
        // SMELT_VENV_CT names another venv with the same packages
        let venv = ProcessInfo.processInfo.environment["SMELT_VENV_CT"].map { URL(fileURLWithPath: $0) }
            ?? Fixtures.repoRoot.appendingPathComponent(".venv-ct")
        let py = venv.appendingPathComponent("bin/python")
        guard FileManager.default.isExecutableFile(atPath: py.path) else {
            if ProcessInfo.processInfo.environment["SMELT_REQUIRE_VENV_CT"] == "1" { XCTFail("no .venv-ct (make venv-ct)") }
            throw XCTSkip("no .venv-ct: run make venv-ct")
        }
        let dir = try Fixtures.tempDir(self)
        let model = try CheckpointTests.makeModel(in: dir)
        // and one with widths that are not multiples of 128 in groups of 64 (`--group-size 64`, SmolLM2's case)
        let narrow = try CheckpointTests.makeModel(in: dir, hidden: 192, ffn: 384, name: "hf192")
        let cases = CTSchemePreset.allCases.map { (name: $0.rawValue, preset: $0, model: model, groupSize: Int?.none) }
            + [(name: "W4A16_ASYM-g64", preset: CTSchemePreset.W4A16_ASYM, model: narrow, groupSize: 64)]
        for (name, preset, model, groupSize) in cases {
            let out = dir.appendingPathComponent(name)
            var job = CompressedTensorsExport(input: model, output: out, scheme: preset, groupSize: groupSize)
            for m in ["q_proj", "k_proj", "v_proj", "o_proj"] { job.inputAbsMax["model.layers.0.self_attn.\(m)"] = 2.25 }
            for m in ["gate_proj", "up_proj", "down_proj"] { job.inputAbsMax["model.layers.0.mlp.\(m)"] = 7 }
            _ = try job.run()
            let result = dir.appendingPathComponent("\(name)-read.safetensors")
            let p = Process()
            p.executableURL = py
            p.arguments = [Fixtures.repoRoot.appendingPathComponent("scripts/ct-read-back.py").path, out.path, result.path, "--transformers"]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "\(name): \(errText.suffix(2000))")
            guard p.terminationStatus == 0 else { continue }

            let ref = try SafetensorsFile(url: result)
            let r = try CTCheckpointReader(folder: out)
            let dense = r.denseTensorNames
            XCTAssertEqual(Set(ref.tensors.map(\.name).filter { !$0.hasPrefix("transformers.") && !$0.hasSuffix(".input_scale") }),
                           Set(dense), name)
            for t in ref.tensors where t.name.hasSuffix(".input_scale") {
                XCTAssertEqual(t.floats(), [try XCTUnwrap(try r.inputScale(module: String(t.name.dropLast(".input_scale".count))))])
            }
            for tensor in dense {
                XCTAssertEqual(ref.tensor(named: tensor)?.floats(), try r.floats(tensor: tensor), "\(name) \(tensor) (compressed-tensors)")
            }
            XCTAssertEqual(r.modules.count, 7)
            for m in r.modules.keys {
                XCTAssertEqual(ref.tensor(named: "transformers." + m + ".weight")?.floats(), try r.dequantizedWeight(module: m),
                               "\(name) \(m) (transformers)")
            }
        }
    }
}
