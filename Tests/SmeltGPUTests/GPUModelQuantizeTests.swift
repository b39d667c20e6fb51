import Foundation
import XCTest
import SmeltFormats
import SmeltQuantize
import SmeltTestSupport
@testable import SmeltGPU

/// Whole models quantized with the GPU as accelerator (64 KiB chunks, so every tensor streams
/// through several chunks) are byte-identical to the CPU path and to llama-quantize's files
/// (Q4_0, Q4_K_M, Q6_K of tiny-llama); Q2_K and Q3_K_M (q2_K, q3_K) equal the CPU's.
final class GPUModelQuantizeTests: XCTestCase {
    func quantize(_ source: TensorSource, preset: String, imatrix: URL? = nil, requantize: Bool = false,
                  gpu: GPUQuantizer?, to url: URL) throws -> Data {
        var req = QuantizeRequest(preset: try XCTUnwrap(LlamaPreset(parsing: preset)))
        req.recipe = try BuiltinRecipes.recipe(named: req.preset.rawValue)
        req.imatrixURL = imatrix
        req.imatrixArgument = imatrix?.lastPathComponent
        req.threads = 2
        req.accelerator = gpu
        req.allowRequantize = requantize
        try Quantizer.run(source: source, output: url, request: req)
        return try Data(contentsOf: url)
    }

    func testTinyLlamaOnTheGPUIsByteIdenticalToTheCPUAndToLlamaQuantize() throws {
        let gpu = try GPUQuantizer(device: try GPUTestDevice.device(), chunkBytes: 65536)
        let golden = try Fixtures.sharedFile("models/tiny/tiny-llama.golden")
        let f32 = golden.appendingPathComponent("tiny-llama-f32.gguf")
        let dir = try Fixtures.tempDir(self)
        for preset in ["Q4_0", "Q8_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K_M"] {
            let onGPU = try quantize(try GGUFTensorSource(url: f32), preset: preset, gpu: gpu,
                                     to: dir.appendingPathComponent("gpu-\(preset).gguf"))
            let onCPU = try quantize(try GGUFTensorSource(url: f32), preset: preset, gpu: nil,
                                     to: dir.appendingPathComponent("cpu-\(preset).gguf"))
            XCTAssertTrue(onGPU == onCPU, "\(preset): the GPU file differs from the CPU file")
        }
        XCTAssertTrue(try Data(contentsOf: dir.appendingPathComponent("gpu-Q4_0.gguf"))
                      == Data(contentsOf: golden.appendingPathComponent("tiny-llama-Q4_0.gguf")),
                      "Q4_0 on the GPU differs from llama-quantize's file")
        // k-quant mixtures: straight against llama-quantize's files.
        for preset in ["Q4_K_M", "Q6_K"] {
            let onGPU = try quantize(try GGUFTensorSource(url: f32), preset: preset, gpu: gpu,
                                     to: dir.appendingPathComponent("gpu-\(preset).gguf"))
            XCTAssertTrue(onGPU == (try Data(contentsOf: golden.appendingPathComponent("tiny-llama-\(preset).gguf"))),
                          "\(preset) on the GPU differs from llama-quantize's file")
        }
        GPUTestDevice.checkValidation()
    }

    /// Tensors without a GPU kernel (tq1_0, tq2_0) are quantized on the CPU while the GPU has a
    /// tensor: the file is still the CPU path's, byte for byte.
    func testCPUAndGPUTensorsAtTheSameTime() throws {
        let gpu = try GPUQuantizer(device: try GPUTestDevice.device(), chunkBytes: 65536)
        let f32 = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let dir = try Fixtures.tempDir(self)
        func run(_ acc: GPUQuantizer?, _ name: String) throws -> (Data, QuantizeResult) {
            var req = QuantizeRequest(preset: try XCTUnwrap(LlamaPreset(parsing: "Q4_K_M")))
            req.options.tensorTypes = [("ffn_up", .tq2_0), ("ffn_gate", .tq1_0)]
            req.threads = 2
            req.accelerator = acc
            let url = dir.appendingPathComponent(name)
            let r = try Quantizer.run(source: try GGUFTensorSource(url: f32), output: url, request: req)
            return (try Data(contentsOf: url), r)
        }
        let (onGPU, r) = try run(gpu, "gpu.gguf")
        let (onCPU, _) = try run(nil, "cpu.gguf")
        XCTAssertTrue(r.plan.tensors.contains { $0.type == .tq2_0 } && r.plan.tensors.contains { $0.type == .tq1_0 })
        XCTAssertGreaterThan(r.cpuTensorsBesideDevice, 0, "no tensor was quantized on the CPU while the GPU had one")
        XCTAssertTrue(onGPU == onCPU, "the mixed CPU+GPU file differs from the CPU file")
        GPUTestDevice.checkValidation()
    }

    func testExpertTensorsWithAnImatrixOnTheGPU() throws {
        // 3-D expert tensors (one imatrix slice per expert), requantized from llama.cpp's q8_0 file.
        let gpu = try GPUQuantizer(device: try GPUTestDevice.device(), chunkBytes: 65536)
        let q8 = try Fixtures.sharedFile("models/tiny/tiny-mixtral.golden/tiny-mixtral-q8_0.gguf")
        let imatrix = try Fixtures.sharedFile("models/tiny/tiny-mixtral.golden/tiny-mixtral.imatrix.gguf")
        let dir = try Fixtures.tempDir(self)
        for preset in ["Q4_0"] {   // (the CPU reference of a debug build is slow: one preset; q2_K/q3_K: GPUSensitivityTests)
            let t0 = Date()
            let onGPU = try quantize(try GGUFTensorSource(url: q8), preset: preset, imatrix: imatrix, requantize: true,
                                     gpu: gpu, to: dir.appendingPathComponent("gpu-\(preset).gguf"))
            print("tiny-mixtral \(preset) imatrix on the GPU: \(Date().timeIntervalSince(t0)) s")
            let onCPU = try quantize(try GGUFTensorSource(url: q8), preset: preset, imatrix: imatrix, requantize: true,
                                     gpu: nil, to: dir.appendingPathComponent("cpu-\(preset).gguf"))
            XCTAssertTrue(onGPU == onCPU, "\(preset) with imatrix: the GPU file differs from the CPU file")
        }
        XCTAssertEqual(gpu.cpuFallbackRows, 0)
        GPUTestDevice.checkValidation()
    }
}
