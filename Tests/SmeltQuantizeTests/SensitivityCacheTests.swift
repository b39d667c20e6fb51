import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Budget mode without hidden state: the sensitivity cache is keyed by everything that changes a
/// measurement. Through the binary: an identical rerun hits the cache; changing the model's
/// sampled values, the imatrix, the candidates, a checkpoint's outtype, the evaluation text,
/// `-c` or `--chunks` measures again.
final class SensitivityCacheTests: XCTestCase {
    static let golden = "models/tiny/tiny-llama.golden"

    /// (measured, cached) from `weighted errors: N measured, M cached` or budget mode's `sensitivity: N measured, M from`.
    func counts(_ stderr: String, file: StaticString = #filePath, line: UInt = #line) -> (Int, Int) {
        for l in stderr.split(separator: "\n") {
            let w = l.split(separator: " ")
            if l.hasPrefix("weighted errors: "), w.count >= 5, let m = Int(w[2]), let c = Int(w[4]) { return (m, c) }
            if l.hasPrefix("weighted errors: "), w.count >= 4, let m = Int(w[2]), w[3] == "measured" { return (m, 0) }  // cache off
            if l.hasPrefix("sensitivity: "), w.count >= 4, let m = Int(w[1]), let c = Int(w[3]) { return (m, c) }
        }
        XCTFail("no measurement count in: \(stderr)", file: file, line: line)
        return (-1, -1)
    }

    /// (probes measured, probes cached) from `KLD: N group probes to measure, M cached`.
    func probes(_ stderr: String, file: StaticString = #filePath, line: UInt = #line) -> (Int, Int) {
        for l in stderr.split(separator: "\n") where l.hasPrefix("KLD: ") {
            let w = l.split(separator: " ")
            if w.count >= 7, let a = Int(w[1]), let b = Int(w[6]) { return (a, b) }
        }
        XCTFail("no probe count in: \(stderr)", file: file, line: line)
        return (-1, -1)
    }

    func testCacheMissesOnEveryMeasuredInputAndHitsOnRerun() throws {
        let f32 = try Fixtures.sharedFile(Self.golden + "/tiny-llama-f32.gguf")
        let text = try Fixtures.sharedFile(Self.golden + "/eval-sample.txt")
        let dir = try Fixtures.tempDir(self)
        let cache = dir.appendingPathComponent("cache").path
        func sens(_ model: String, _ extra: [String] = [], line: UInt = #line) throws -> String {
            let r = try SmeltBinary.run(["sensitivity", model, "--candidates", "q4_0,q8_0", "-t", "2", "--cache", cache] + extra)
            XCTAssertEqual(r.status, 0, r.stderr, line: line)
            return r.stderr
        }
        // identical rerun: everything from the cache
        let first = counts(try sens(f32.path))
        XCTAssertGreaterThan(first.0, 0); XCTAssertEqual(first.1, 0)
        XCTAssertTrue(counts(try sens(f32.path)) == (0, first.0))
        // one more candidate: only its pairs are measured
        let more = counts(try sens(f32.path, ["--candidates", "q4_0,q5_0,q8_0"]))
        XCTAssertTrue(more == (first.0 / 2, first.0), "\(more)")  // q5_0 fits every tensor q4_0 and q8_0 fit

        // one float of a sampled row changed: measured again
        var bytes = try Data(contentsOf: f32)
        let g = try GGUFFile(url: f32)
        let v = try XCTUnwrap(g.tensors.first { $0.name == "blk.0.attn_v.weight" })
        bytes[g.fileOffset(of: v) + 4 * 7] ^= 0x01
        let changed = dir.appendingPathComponent("changed.gguf")
        try bytes.write(to: changed)
        XCTAssertTrue(counts(try sens(changed.path)) == (first.0, 0))

        // an imatrix, then another imatrix: each measured once
        func imatrix(_ name: String, chunks: Int) throws -> String {
            let out = dir.appendingPathComponent(name).path
            let r = try SmeltBinary.run(["imatrix", f32.path, "-f", text.path, "-c", "64", "--chunks", "\(chunks)", "-t", "2", "-o", out])
            XCTAssertEqual(r.status, 0, r.stderr)
            return out
        }
        let im1 = try imatrix("im1.gguf", chunks: 2), im2 = try imatrix("im2.gguf", chunks: 3)
        XCTAssertEqual(counts(try sens(f32.path, ["--imatrix", im1])).1, 0)
        XCTAssertEqual(counts(try sens(f32.path, ["--imatrix", im1])).0, 0)
        XCTAssertEqual(counts(try sens(f32.path, ["--imatrix", im2])).1, 0)

        // KLD: identical rerun hits; another text, -c or --chunks measures again
        let kld = ["-f", text.path, "-c", "64", "--chunks", "2", "--groups", "attn_v"]
        let p1 = probes(try sens(f32.path, kld))
        XCTAssertTrue(p1.0 > 0 && p1.1 == 0, "\(p1)")
        XCTAssertTrue(probes(try sens(f32.path, kld)) == (0, p1.0))
        XCTAssertTrue(probes(try sens(f32.path, ["-f", text.path, "-c", "32", "--chunks", "2", "--groups", "attn_v"])) == (p1.0, 0))
        XCTAssertTrue(probes(try sens(f32.path, ["-f", text.path, "-c", "64", "--chunks", "3", "--groups", "attn_v"])) == (p1.0, 0))
        let text2 = dir.appendingPathComponent("text2.txt")
        try (String(contentsOf: text, encoding: .utf8) + "\nOne more line.\n").write(to: text2, atomically: true, encoding: .utf8)
        XCTAssertTrue(probes(try sens(f32.path, ["-f", text2.path, "-c", "64", "--chunks", "2", "--groups", "attn_v"])) == (p1.0, 0))
        XCTAssertTrue(probes(try sens(f32.path, kld)) == (0, p1.0), "earlier sets are kept")

        // budget mode reads the same error cache; --loss kld refuses to pick one of several KLD sets
        let out = dir.appendingPathComponent("q.gguf").path
        let budget = ["quantize", f32.path, out, "--target-bpw", "6", "--candidates", "q4_0,q8_0", "--cache", cache, "2"]
        let b = try SmeltBinary.run(budget)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertTrue(counts(b.stderr) == (0, first.0 + more.0), b.stderr)
        let several = try SmeltBinary.run(budget + ["--loss", "kld"])
        XCTAssertEqual(several.status, 1)
        XCTAssertTrue(several.stderr.contains("sets of KLD measurements for this model and imatrix"), several.stderr)
        XCTAssertTrue(several.stderr.contains("text text2.txt, -c 64, 2 chunks"), several.stderr)
        // one set (in a fresh cache): used, and named
        let solo = dir.appendingPathComponent("solo").path
        XCTAssertEqual(try SmeltBinary.run(["sensitivity", f32.path, "--candidates", "q4_0,q8_0", "-t", "2", "--cache", solo] + kld).status, 0)
        let one = try SmeltBinary.run(["quantize", f32.path, out, "--target-bpw", "6", "--candidates", "q4_0,q8_0", "--cache", solo,
                                       "--loss", "kld", "2"])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(one.stderr.contains("KLD measurements: text eval-sample.txt, -c 64, 2 chunks"), one.stderr)
        // the KLD set belongs to the model's content: the changed model has none
        let other = try SmeltBinary.run(["quantize", changed.path, out, "--target-bpw", "6", "--candidates", "q4_0,q8_0", "--cache", solo,
                                         "--loss", "kld", "2"])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("--loss kld: no KLD measurements"), other.stderr)
        // --no-cache neither reads nor writes
        let before = try FileManager.default.contentsOfDirectory(atPath: cache).sorted()
        XCTAssertTrue(counts(try sens(f32.path, ["--no-cache"])) == (first.0, 0))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache).sorted(), before)
    }

    /// A checkpoint folder is measured as converted: another --outtype is another measurement.
    func testCheckpointOuttypeIsPartOfTheKey() throws {
        let folder = try Fixtures.sharedFile("models/tiny/tiny-llama").path
        let dir = try Fixtures.tempDir(self)
        let cache = dir.appendingPathComponent("cache").path
        func budget(_ extra: [String]) throws -> (Int, Int) {
            let r = try SmeltBinary.run(["quantize", folder, dir.appendingPathComponent("q.gguf").path, "--target-bpw", "6",
                                         "--candidates", "q4_0,q8_0", "--cache", cache, "2"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            return counts(r.stderr)
        }
        let a = try budget([])
        XCTAssertTrue(a.0 > 0 && a.1 == 0, "\(a)")
        XCTAssertTrue(try budget([]) == (0, a.0))
        XCTAssertTrue(try budget(["--outtype", "f32"]) == (a.0, 0))
    }
}
