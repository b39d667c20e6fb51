import Foundation
import XCTest
import SmeltTestSupport
import SmeltFormats
import SmeltQuant
@testable import SmeltGPU

/// The streaming path: chunks of whole rows through two buffer sets, importance per matrix of a
/// 3-D tensor, rows the CPU must take, errors.
final class GPUQuantizerTests: XCTestCase {
    func cpu(_ type: GGMLType, _ x: [Float], rows: Int, n: Int, _ w: [Float]?, ne1: Int, ne2: Int) -> [UInt8] {
        let kernel = QuantRegistry.kernel(for: type)!
        let rb = type.rowBytes(n)!
        var out = [UInt8](repeating: 0, count: rows * rb)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBytes { op in
                for r in 0..<rows {
                    if let w {
                        w.withUnsafeBufferPointer { wp in
                            kernel.quantizeRow(xp.baseAddress! + r * n, op.baseAddress! + r * rb, count: n,
                                               importance: wp.baseAddress! + ((r / ne1) % ne2) * n)
                        }
                    } else {
                        kernel.quantizeRow(xp.baseAddress! + r * n, op.baseAddress! + r * rb, count: n, importance: nil)
                    }
                }
            }
        }
        return out
    }

    func gpu(_ q: GPUQuantizer, _ type: GGMLType, _ x: [Float], rows: Int, n: Int, _ w: [Float]?, ne1: Int, ne2: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0x55, count: rows * type.rowBytes(n)!)
        try x.withUnsafeBufferPointer { xp in
            try out.withUnsafeMutableBytes { op in
                if let w {
                    try w.withUnsafeBufferPointer { wp in
                        try q.quantize(type: type, src: xp.baseAddress!, rows: rows, n: n, importance: wp.baseAddress!,
                                       ne1: ne1, ne2: ne2, dst: op.baseAddress!)
                    }
                } else {
                    try q.quantize(type: type, src: xp.baseAddress!, rows: rows, n: n, importance: nil, dst: op.baseAddress!)
                }
            }
        }
        return out
    }

    func randomRows(_ count: Int, seed: UInt64) -> [Float] {
        var g = SplitMix(seed: seed)
        return (0..<count).map { i in
            let u = Float(g.next() >> 40) / Float(1 << 24) - 0.5
            return i % 97 == 0 ? u * 40 : u * 0.1   // outlier columns
        }
    }

    func testChunkedPathMatchesTheCPU() throws {
        let device = try GPUTestDevice.device()
        // 4 KiB chunks: two 512-value rows per chunk, 12 chunks through the two buffer sets.
        let q = try GPUQuantizer(device: device, chunkBytes: 4096)
        XCTAssertEqual(q.chunkBytes, 4096)
        let rows = 24, n = 512, ne1 = 8, ne2 = 3
        let x = randomRows(rows * n, seed: 7)
        var g = SplitMix(seed: 99)
        let w = (0..<(n * ne2)).map { i in i % 13 == 0 ? 0 : Float(g.next() >> 40) / Float(1 << 20) }
        for type in GPUQuantizer.supportedTypes {
            XCTAssertEqual(try gpu(q, type, x, rows: rows, n: n, nil, ne1: ne1, ne2: ne2),
                           cpu(type, x, rows: rows, n: n, nil, ne1: ne1, ne2: ne2), "\(type.name) plain")
            XCTAssertEqual(try gpu(q, type, x, rows: rows, n: n, w, ne1: ne1, ne2: ne2),
                           cpu(type, x, rows: rows, n: n, w, ne1: ne1, ne2: ne2), "\(type.name) imatrix")
        }
        XCTAssertEqual(q.cpuFallbackRows, 0)
        GPUTestDevice.checkValidation()
    }

    func testRowsWithNaNInfinityOrSubnormalsAreQuantizedOnTheCPU() throws {
        let q = try GPUQuantizer(device: try GPUTestDevice.device(), chunkBytes: 8192)
        let rows = 8, n = 256
        var x = randomRows(rows * n, seed: 3)
        x[1 * n + 5] = .nan
        x[3 * n + 100] = .infinity
        x[6 * n + 7] = Float(bitPattern: 0x0000_0123)   // subnormal
        let w = (0..<n).map { Float($0 % 7) + 0.5 }
        for type in GPUQuantizer.supportedTypes {
            XCTAssertEqual(try gpu(q, type, x, rows: rows, n: n, w, ne1: 1, ne2: 1), cpu(type, x, rows: rows, n: n, w, ne1: 1, ne2: 1),
                           type.name)
        }
        XCTAssertEqual(q.cpuFallbackRows, 3 * GPUQuantizer.supportedTypes.count)
    }

    /// lavapipe stops every loop of an invocation after 65,535 iterations in all (shaders/exact.glsl):
    /// burning them before the work must make the shaders flag their rows, which the CPU then
    /// quantizes, so the bytes stay the CPU's. Without the flag they would be partial.
    func testExhaustedLoopBudgetSendsTheRowsToTheCPU() throws {
        let device = try GPUTestDevice.device()
        let q = try GPUQuantizer(device: device, chunkBytes: 8192)
        q.debugBurnLoopIterations = 70_000
        let rows = 6, n = 256
        let x = randomRows(rows * n, seed: 11)
        let w = (0..<n).map { Float($0 % 5) + 0.25 }
        let lavapipe = device.info.name.contains("llvmpipe")
        for type in GPUQuantizer.supportedTypes {
            let before = q.cpuFallbackRows
            XCTAssertEqual(try gpu(q, type, x, rows: rows, n: n, w, ne1: 1, ne2: 1), cpu(type, x, rows: rows, n: n, w, ne1: 1, ne2: 1),
                           type.name)
            if lavapipe { XCTAssertEqual(q.cpuFallbackRows - before, rows, "\(type.name): rows not flagged") }
        }
        q.debugBurnLoopIterations = 0
        let before = q.cpuFallbackRows
        for type in GPUQuantizer.supportedTypes {
            XCTAssertEqual(try gpu(q, type, x, rows: rows, n: n, w, ne1: 1, ne2: 1), cpu(type, x, rows: rows, n: n, w, ne1: 1, ne2: 1),
                           type.name)
        }
        XCTAssertEqual(q.cpuFallbackRows, before, "rows flagged without an exhausted budget")
    }

    func testErrorsAreOneLine() throws {
        let q = try GPUQuantizer(device: try GPUTestDevice.device())
        let x = [Float](repeating: 1, count: 64)
        var out = [UInt8](repeating: 0, count: 256)
        for (type, n) in [(GGMLType.iq2_xxs, 256), (.q8_0, 48)] {
            XCTAssertThrowsError(try x.withUnsafeBufferPointer { xp in
                try out.withUnsafeMutableBytes { op in
                    try q.quantize(type: type, src: xp.baseAddress!, rows: 1, n: n, importance: nil, dst: op.baseAddress!)
                }
            }) { e in
                XCTAssertTrue(e is SmeltError)
                XCTAssertFalse("\(e)".contains("\n"))
            }
        }
    }

    func testDevicesAreListed() throws {
        let device = try GPUTestDevice.device()
        let list = try device.instance.devices()
        XCTAssertFalse(list.isEmpty)
        let info = list[device.info.index]
        XCTAssertEqual(info, device.info)
        XCTAssertFalse(info.name.isEmpty)
        XCTAssertGreaterThan(info.maxStorageBufferRange, 0)
        XCTAssertGreaterThan(info.subgroupSize, 0)
        XCTAssertThrowsError(try device.instance.open(index: list.count)) { e in
            XCTAssertTrue("\(e)".contains("no Vulkan device \(list.count)"), "\(e)")
        }
    }
}

/// With SMELT_VULKAN_VALIDATION=1 the Khronos validation layer is on and its errors are caught
/// (the other GPU tests then assert there were none).
final class ValidationLayerTests: XCTestCase {
    func testValidationLayerCatchesInvalidUsage() throws {
        guard ProcessInfo.processInfo.environment["SMELT_VULKAN_VALIDATION"] == "1" else {
            throw XCTSkip("run with SMELT_VULKAN_VALIDATION=1 (Debian: vulkan-validationlayers) to check the validation layer")
        }
        // A separate instance, so that the deliberate error does not fail the other tests.
        let device = try GPUInstance(validation: true).open(index: nil)
        XCTAssertTrue(device.instance.validating)
        XCTAssertTrue(device.instance.validationErrors.isEmpty)
        _ = try? GPUBuffer(device: device, bytes: 0)   // size 0 is invalid (VUID-VkBufferCreateInfo-size-00912)
        XCTAssertFalse(device.instance.validationErrors.isEmpty, "the validation layer did not report a zero-sized buffer")
    }
}
