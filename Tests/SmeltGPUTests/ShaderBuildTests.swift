import Foundation
import XCTest
import SmeltTestSupport
@testable import SmeltGPU

/// The committed SPIR-V (Sources/SmeltGPU/Generated/SPIRV.swift) is what glslc makes of the
/// GLSL sources, and every float add, subtract, multiply and divide in it is NoContraction.
final class ShaderBuildTests: XCTestCase {
    func testGeneratedSPIRVMatchesTheSources() throws {
        guard let glslc = ["/usr/bin/glslc", "/usr/local/bin/glslc"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("glslc is not installed (Debian: glslc); cannot rebuild the shaders")
        }
        let version = Process()
        version.executableURL = URL(fileURLWithPath: glslc)
        version.arguments = ["--version"]
        let pipe = Pipe()
        version.standardOutput = pipe
        try version.run()
        version.waitUntilExit()
        let first = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").first.map(String.init) ?? ""
        guard first == GeneratedSPIRV.compiler else {
            throw XCTSkip("glslc here is '\(first)', the committed SPIR-V was built with '\(GeneratedSPIRV.compiler)'")
        }
        let dir = try Fixtures.tempDir(self)
        let out = dir.appendingPathComponent("SPIRV.swift")
        let p = Process()
        p.executableURL = Fixtures.repoRoot.appendingPathComponent("scripts/build-shaders.sh")
        p.arguments = [out.path]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let rebuilt = try String(contentsOf: out, encoding: .utf8)
        let committed = try String(contentsOf: Fixtures.repoRoot.appendingPathComponent("Sources/SmeltGPU/Generated/SPIRV.swift"),
                                   encoding: .utf8)
        XCTAssertTrue(rebuilt == committed, "Sources/SmeltGPU/Generated/SPIRV.swift is stale: run make shaders")
    }

    func testEveryFloatArithmeticResultIsNoContraction() throws {
        XCTAssertFalse(GeneratedSPIRV.base64.isEmpty)
        for name in GeneratedSPIRV.base64.keys.sorted() {
            let bytes = try Shaders.spirv(name)
            let words = bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
            XCTAssertEqual(words.first, 0x0723_0203, name)
            var noContraction = Set<UInt32>()
            var arithmetic: [UInt32: UInt32] = [:]   // result id → opcode
            var i = 5
            while i < words.count {
                let count = Int(words[i] >> 16), op = words[i] & 0xffff
                guard count > 0, i + count <= words.count else { XCTFail("\(name): malformed SPIR-V"); break }
                if op == 71, count >= 3, words[i + 2] == 42 { noContraction.insert(words[i + 1]) }   // OpDecorate NoContraction
                if [129, 131, 133, 136].contains(op), count >= 3 { arithmetic[words[i + 2]] = op }     // OpFAdd/FSub/FMul/FDiv
                i += count
            }
            let bare = arithmetic.keys.filter { !noContraction.contains($0) }
            XCTAssertTrue(bare.isEmpty, "\(name): \(bare.count) of \(arithmetic.count) float operations lack NoContraction")
            XCTAssertFalse(arithmetic.isEmpty, name)
        }
    }
}
