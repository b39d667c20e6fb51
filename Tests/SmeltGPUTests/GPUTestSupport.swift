import Foundation
import XCTest
import SmeltFormats
@testable import SmeltGPU

/// One Vulkan device for all GPU tests (lavapipe in CI), or XCTSkip saying why there is none.
enum GPUTestDevice {
    nonisolated(unsafe) private static var cached: Result<GPUDevice, Error>? = nil

    static func device() throws -> GPUDevice {
        if cached == nil {
            cached = Result {
                let instance = try GPUInstance()
                let index = ProcessInfo.processInfo.environment["SMELT_TEST_GPU"].flatMap { Int($0) }
                return try instance.open(index: index)
            }
        }
        switch cached! {
        case .success(let d): return d
        case .failure(let e): throw XCTSkip("no Vulkan device: \(e)")
        }
    }

    /// Fails the test when the validation layer (SMELT_VULKAN_VALIDATION=1) reported errors.
    static func checkValidation(file: StaticString = #filePath, line: UInt = #line) {
        guard case .success(let d)? = cached, d.instance.validating else { return }
        let errors = d.instance.validationErrors
        XCTAssertTrue(errors.isEmpty, "Vulkan validation: \(errors.prefix(5).joined(separator: "\n"))", file: file, line: line)
    }
}
