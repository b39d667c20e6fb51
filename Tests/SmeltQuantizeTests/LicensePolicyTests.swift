import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Licenses travel with the weights: `convert` writes the lineage's license when the card
/// declares none, quantized files keep it, and `--license-policy refuse` stops before
/// anything is written when publishing cannot be confirmed (exit 3).
final class LicensePolicyTests: XCTestCase {
    /// tiny-llama with a model card naming a Llama 3.1 base model and no license of its own.
    func derivedFolder() throws -> URL {
        let src = try Fixtures.sharedFile("models/tiny/tiny-llama")
        let dir = try Fixtures.tempDir(self).appendingPathComponent("tiny-llama-ft")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: src.path) where f != "README.md" {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(f), withDestinationURL: src.appendingPathComponent(f))
        }
        try Data("---\nbase_model: meta-llama/Llama-3.1-8B-Instruct\n---\n# A fine-tune\n".utf8).write(to: dir.appendingPathComponent("README.md"))
        return dir
    }

    func testLicenseWrittenKeptAndRefused() throws {
        let ft = try derivedFolder()
        let dir = ft.deletingLastPathComponent()
        let gguf = dir.appendingPathComponent("ft.gguf"), q = dir.appendingPathComponent("ft-q8.gguf")
        let c = try SmeltBinary.run(["convert", ft.path, "-o", gguf.path, "--outtype", "f16"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let md = try GGUFFile(url: gguf).metadata
        XCTAssertEqual(md["general.license"], .string("llama3.1"))
        XCTAssertNotNil(md["general.license.name"])
        XCTAssertEqual(md["general.license.link"], .string("https://www.llama.com/llama3_1/license/"))
        // in gguf-py's place: after the size label, before the base models
        let keys = md.keys
        XCTAssertLessThan(try XCTUnwrap(keys.firstIndex(of: "general.size_label")), try XCTUnwrap(keys.firstIndex(of: "general.license")))
        let qr = try SmeltBinary.run(["quantize", gguf.path, q.path, "Q8_0"])
        XCTAssertEqual(qr.status, 0, qr.stderr)
        let qmd = try GGUFFile(url: q).metadata
        for k in ["general.license", "general.license.name", "general.license.link"] { XCTAssertEqual(qmd[k], md[k], k) }
        // one pass from the folder: the same keys
        let q2 = dir.appendingPathComponent("ft-q8b.gguf")
        XCTAssertEqual(try SmeltBinary.run(["quantize", ft.path, q2.path, "Q8_0", "--outtype", "f16"]).status, 0)
        XCTAssertEqual(try GGUFFile(url: q2).metadata["general.license"], .string("llama3.1"))

        // the unmodified fixture declares no license: llama.cpp's bytes (no license key), and refuse stops everything
        let tiny = try Fixtures.sharedFile("models/tiny/tiny-llama")
        let golden = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f16.gguf")
        let plain = dir.appendingPathComponent("plain.gguf")
        XCTAssertEqual(try SmeltBinary.run(["convert", tiny.path, "-o", plain.path, "--outtype", "f16"]).status, 0)
        XCTAssertEqual(try Data(contentsOf: plain), try Data(contentsOf: golden))
        for args in [["convert", tiny.path, "-o", dir.appendingPathComponent("r1.gguf").path, "--license-policy", "refuse"],
                     ["quantize", golden.path, dir.appendingPathComponent("r2.gguf").path, "Q4_0", "--license-policy", "refuse"],
                     ["quantize", golden.path, dir.appendingPathComponent("r3.gguf").path, "Q4_0", "--license-policy", "refuse", "--dry-run"]] {
            let r = try SmeltBinary.run(args)
            XCTAssertEqual(r.status, 3, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.hasPrefix("error: refused by --license-policy refuse: cannot confirm that quantized copies"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        for n in ["r1.gguf", "r2.gguf", "r3.gguf"] { XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent(n).path)) }
        let bad = try SmeltBinary.run(["quantize", golden.path, dir.appendingPathComponent("r4.gguf").path, "Q4_0", "--license-policy", "refuze"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("did you mean 'refuse'?"), bad.stderr)
    }
}
