import Foundation
import XCTest
import SmeltFormats
@testable import SmeltGPU

/// `--device` / SMELT_DEVICE parsing and what each choice does without a usable device.
final class DeviceChoiceTests: XCTestCase {
    func testParsing() throws {
        XCTAssertEqual(try DeviceChoice(parsing: "cpu"), .cpu)
        XCTAssertEqual(try DeviceChoice(parsing: "AUTO"), .auto)
        XCTAssertEqual(try DeviceChoice(parsing: "vulkan"), .vulkan(nil))
        XCTAssertEqual(try DeviceChoice(parsing: "vulkan:2"), .vulkan(2))
        for bad in ["", "cuda", "vulkan:", "vulkan:-1", "vulkan:x"] {
            XCTAssertThrowsError(try DeviceChoice(parsing: bad)) { XCTAssertTrue($0 is SmeltError, bad) }
        }
        XCTAssertEqual(try DeviceChoice.resolve(option: nil, environment: [:]), .cpu)
        XCTAssertEqual(try DeviceChoice.resolve(option: nil, environment: ["SMELT_DEVICE": "vulkan:1"]), .vulkan(1))
        XCTAssertEqual(try DeviceChoice.resolve(option: "cpu", environment: ["SMELT_DEVICE": "vulkan"]), .cpu)
        XCTAssertThrowsError(try DeviceChoice.resolve(option: nil, environment: ["SMELT_DEVICE": "tpu"])) {
            XCTAssertTrue("\($0)".hasPrefix("SMELT_DEVICE: invalid device 'tpu'"), "\($0)")
        }
        XCTAssertNil(try DeviceChoice.cpu.open().quantizer)
    }

    func testNoDriverIsAnErrorForVulkanAndACPUNoteForAuto() throws {
        // The loader reads VK_ICD_FILENAMES when an instance is created: point it at nothing.
        guard (try? GPUInstance()) != nil else { throw XCTSkip("no Vulkan loader or driver here") }
        let old = ProcessInfo.processInfo.environment["VK_ICD_FILENAMES"]
        setenv("VK_ICD_FILENAMES", "/nonexistent/icd.json", 1)
        defer { if let old { setenv("VK_ICD_FILENAMES", old, 1) } else { unsetenv("VK_ICD_FILENAMES") } }
        XCTAssertThrowsError(try DeviceChoice.vulkan(nil).open()) { e in
            XCTAssertTrue(e is SmeltError)
            XCTAssertTrue("\(e)".contains("VK_ERROR_INCOMPATIBLE_DRIVER"), "\(e)")
        }
        let (q, note) = try DeviceChoice.auto.open()
        XCTAssertNil(q)
        XCTAssertTrue(note?.hasPrefix("note: --device auto: no usable Vulkan device") ?? false, note ?? "nil")
    }
}
