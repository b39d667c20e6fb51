import Foundation
import XCTest
import SmeltFormats
import SmeltQuantize
import SmeltTestSupport
@testable import SmeltGPU

/// `sensitivity` and budget mode with the GPU: the measured errors, the chosen recipe and the
/// written model are the CPU path's, number for number and byte for byte.
final class GPUSensitivityTests: XCTestCase {
    static let candidates: [GGMLType] = [.q2_K, .q3_K, .q4_0, .q4_K, .q5_K, .q6_K, .iq4_xs, .q8_0, .iq2_xs]

    func testErrorTableOnTheGPUEqualsTheCPU() throws {
        // 3-D expert tensors with one imatrix slice per expert: sampled rows keep their slices.
        let gpu = try GPUQuantizer(device: try GPUTestDevice.device(), chunkBytes: 16384)
        let q8 = try Fixtures.sharedFile("models/tiny/tiny-mixtral.golden/tiny-mixtral-q8_0.gguf")
        let imatrix = try PreparedImatrix(url: try Fixtures.sharedFile("models/tiny/tiny-mixtral.golden/tiny-mixtral.imatrix.gguf"),
                                          include: [], exclude: [])
        let source = try GGUFTensorSource(url: q8)
        let tensors = source.tensors.indices.filter { source.tensors[$0].shape.count >= 2 }
        var onCPU = SensitivityTable(), onGPU = SensitivityTable()
        try Sensitivity.measureErrors(source: source, tensors: tensors, types: Self.candidates, importance: imatrix.weights,
                                      table: &onCPU, maxRows: 64, threads: 2)
        try Sensitivity.measureErrors(source: source, tensors: tensors, types: Self.candidates, importance: imatrix.weights,
                                      table: &onGPU, maxRows: 64, threads: 2, accelerator: gpu)
        XCTAssertGreaterThan(onCPU.entries.values.reduce(0) { $0 + $1.count }, tensors.count * 4)
        XCTAssertEqual(onGPU.entries.keys.sorted(), onCPU.entries.keys.sorted())
        for (name, row) in onCPU.entries {
            for (type, e) in row {
                XCTAssertEqual(onGPU[name, type], e, "\(name) \(type.name)")
            }
        }
        GPUTestDevice.checkValidation()
    }

    /// Through the binary: `smelt sensitivity --device vulkan` writes the CPU's cache, and budget
    /// mode with `--device vulkan` the CPU's recipe and model.
    func testSensitivityAndBudgetModeThroughTheBinary() throws {
        _ = try GPUTestDevice.device()
        let f32 = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf").path
        let dir = try Fixtures.tempDir(self)
        let cands = "q2_K,q3_K,q4_0,q4_K,q6_K,q8_0"
        var caches: [String: Data] = [:]
        for device in ["cpu", "vulkan"] {
            let cache = dir.appendingPathComponent("sens-\(device)")
            let r = try SmeltBinary.run(["sensitivity", f32, "--candidates", cands, "-t", "2", "--cache", cache.path,
                                         "--device", device])
            XCTAssertEqual(r.status, 0, r.stderr)
            let files = try FileManager.default.contentsOfDirectory(at: cache, includingPropertiesForKeys: nil)
            XCTAssertEqual(files.count, 1)
            caches[device] = try Data(contentsOf: try XCTUnwrap(files.first))
        }
        XCTAssertNotNil(caches["cpu"])
        XCTAssertEqual(caches["vulkan"], caches["cpu"], "the sensitivity caches differ")
        var outputs: [String: (Data, String)] = [:]
        for device in ["cpu", "vulkan"] {
            // the same file name in two folders: the recipe's name (and so the metadata) is the output's
            let folder = dir.appendingPathComponent(device)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let out = folder.appendingPathComponent("budget.gguf")
            let r = try SmeltBinary.run(["quantize", f32, out.path, "--target-bpw", "4.2", "--candidates", cands,
                                         "--cache", folder.appendingPathComponent("cache").path, "--device", device, "2"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let recipe = try String(contentsOf: folder.appendingPathComponent("budget.recipe.yaml"), encoding: .utf8)
            outputs[device] = (try Data(contentsOf: out), recipe)
        }
        let cpu = try XCTUnwrap(outputs["cpu"]), gpu = try XCTUnwrap(outputs["vulkan"])
        XCTAssertEqual(gpu.1, cpu.1, "the budget recipes differ")
        XCTAssertTrue(cpu.1.contains("q2_K") || cpu.1.contains("q3_K"), "the budget did not use q2_K/q3_K:\n\(cpu.1)")
        XCTAssertTrue(gpu.0 == cpu.0, "the budget models differ")
    }
}
