import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// A split model (3 shards, made by `smelt split` and by gguf-py) through the real
/// binary: quantize, perplexity, imatrix, export and convert behave exactly as on the
/// unsplit file; a missing shard is one `error:` line.
final class SplitModelTests: XCTestCase {
    static let golden = "models/tiny/tiny-llama.golden"

    struct Setup {
        let dir: URL, golden: URL, f32: URL
        /// First shards: made by `smelt split` and by gguf-py's GGUFWriter.
        let smeltShards: URL, pyShards: URL
    }

    func setUp3Shards() throws -> Setup {
        let golden = try Fixtures.sharedFile(Self.golden)
        let f32 = golden.appendingPathComponent("tiny-llama-f32.gguf")
        let dir = try Fixtures.tempDir(self)
        let r = try SmeltBinary.run(["split", f32.path, dir.appendingPathComponent("s").path, "--split-max-tensors", "8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("n_split: 3"), r.stdout)
        guard let py = Fixtures.venvPython else { throw XCTSkip("no .venv (make venv)") }
        let p = try SmeltBinary.run(executable: py, [Fixtures.repoRoot.appendingPathComponent("scripts/gguf-py-split.py").path,
                                                     f32.path, dir.appendingPathComponent("p.gguf").path, "--split-max-size", "3000000"])
        XCTAssertEqual(p.status, 0, p.stderr)
        let s = Setup(dir: dir, golden: golden, f32: f32, smeltShards: dir.appendingPathComponent("s-00001-of-00003.gguf"),
                      pyShards: dir.appendingPathComponent("p-00001-of-00003.gguf"))
        XCTAssertEqual(try GGUFFile(url: s.smeltShards).shards.count, 3)
        XCTAssertEqual(try GGUFFile(url: s.pyShards).shards.count, 3)
        return s
    }

    func smelt(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> SmeltBinary.Run {
        let r = try SmeltBinary.run(args)
        XCTAssertEqual(r.status, 0, "smelt \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return r
    }

    /// Quantizing either split gives llama-quantize's Q4_K_M file of the unsplit model, byte for byte;
    /// --keep-split and --split-max-tensors give shards whose tensors are those bytes.
    func testQuantizeSplitModel() throws {
        let s = try setUp3Shards()
        let expected = try Data(contentsOf: s.golden.appendingPathComponent("tiny-llama-Q4_K_M.gguf"))
        for first in [s.smeltShards, s.pyShards] {
            let out = s.dir.appendingPathComponent("q-\(first.lastPathComponent)")
            _ = try smelt(["quantize", first.path, out.path, "Q4_K_M", "2"])
            XCTAssertEqual(try Data(contentsOf: out), expected, "quantized \(first.lastPathComponent) = llama-quantize's file")
        }
        let ref = try GGUFFile(url: s.golden.appendingPathComponent("tiny-llama-Q4_K_M.gguf"))

        // --keep-split (llama-quantize's): one output shard per input shard, same tensors in each.
        _ = try smelt(["quantize", s.smeltShards.path, s.dir.appendingPathComponent("k.gguf").path, "Q4_K_M", "2", "--keep-split"])
        let kept = try GGUFFile(url: s.dir.appendingPathComponent("k-00001-of-00003.gguf"))
        let input = try GGUFFile(url: s.smeltShards)
        XCTAssertEqual(kept.shards.map { $0.tensors.map(\.name) }, input.shards.map { $0.tensors.map(\.name) })
        var md = ref.metadata
        md["split.no"] = .uint16(0); md["split.count"] = .uint16(3); md["split.tensors.count"] = .int32(21)
        XCTAssertEqual(kept.metadata, md, "llama-quantize's keys, then split.no, split.count, split.tensors.count")
        try assertTensorsEqual(kept, ref)

        // --split-max-tensors: cut like llama-gguf-split; merged back it is the unsplit file plus split keys.
        _ = try smelt(["quantize", s.smeltShards.path, s.dir.appendingPathComponent("m.gguf").path, "Q4_K_M", "2", "--split-max-tensors", "10"])
        let cut = try GGUFFile(url: s.dir.appendingPathComponent("m-00001-of-00003.gguf"))
        XCTAssertEqual(cut.shards.map { $0.tensors.count }, [10, 10, 1])
        try assertTensorsEqual(cut, ref)
        XCTAssertEqual(cut.tensors.map(\.name), ref.tensors.map(\.name))
        let merged = s.dir.appendingPathComponent("merged.gguf")
        _ = try smelt(["merge", cut.url.path, merged.path])
        let mg = try GGUFFile(url: merged)
        XCTAssertEqual(try Data(contentsOf: merged)[mg.dataOffset...], expected[ref.dataOffset...])
        // merge refuses to overwrite
        let again = try SmeltBinary.run(["merge", cut.url.path, merged.path])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.hasPrefix("error: ") && again.stderr.contains("already exists"), again.stderr)
    }

    func assertTensorsEqual(_ a: GGUFFile, _ b: GGUFFile, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.tensors.count, b.tensors.count, file: file, line: line)
        for t in a.tensors {
            let u = try XCTUnwrap(b.tensor(named: t.name), file: file, line: line)
            XCTAssertEqual(t.type, u.type, t.name, file: file, line: line)
            XCTAssertTrue(a.data(for: t).elementsEqual(b.data(for: u)), "\(t.name) differs", file: file, line: line)
        }
    }

    /// Perplexity, imatrix and export of a split model equal the unsplit file's.
    func testEvaluateAndExportSplitModel() throws {
        let s = try setUp3Shards()
        let text = s.golden.appendingPathComponent("eval-sample.txt").path
        func ppl(_ m: URL) throws -> String {
            let r = try smelt(["perplexity", m.path, "-f", text, "-c", "128", "--chunks", "6", "-t", "2"])
            return r.stdout.split(separator: "\n").filter { $0.hasPrefix("Final estimate") }.joined()
        }
        let whole = try ppl(s.f32)
        XCTAssertTrue(whole.contains("PPL = "), whole)
        XCTAssertEqual(try ppl(s.smeltShards), whole)
        XCTAssertEqual(try ppl(s.pyShards), whole)

        for (name, m) in [("whole", s.f32), ("split", s.smeltShards)] {
            _ = try smelt(["imatrix", m.path, "-f", text, "-c", "128", "--chunks", "3", "-t", "2",
                           "-o", s.dir.appendingPathComponent("im-\(name).gguf").path])
            _ = try smelt(["export", m.path, "-o", s.dir.appendingPathComponent("hf-\(name)").path])
        }
        XCTAssertEqual(try Data(contentsOf: s.dir.appendingPathComponent("im-whole.gguf")),
                       try Data(contentsOf: s.dir.appendingPathComponent("im-split.gguf")))
        XCTAssertEqual(try Data(contentsOf: s.dir.appendingPathComponent("hf-whole/model.safetensors")),
                       try Data(contentsOf: s.dir.appendingPathComponent("hf-split/model.safetensors")))
        XCTAssertEqual(try Data(contentsOf: s.dir.appendingPathComponent("hf-whole/config.json")),
                       try Data(contentsOf: s.dir.appendingPathComponent("hf-split/config.json")))

        // inspect shows the whole model with each tensor's shard
        let ins = try smelt(["inspect", s.smeltShards.path, "--json"])
        let j = try JSONValue.parse(Data(ins.stdout.utf8))
        XCTAssertEqual(j["tensors"]?.arrayValue?.count, 21)
        XCTAssertEqual(j["tensors"]?.arrayValue?.last?["file"]?.stringValue, "s-00003-of-00003.gguf")

        // a missing shard: one error line naming it, exit 1, nothing written
        try FileManager.default.removeItem(at: s.dir.appendingPathComponent("s-00003-of-00003.gguf"))
        for args in [["quantize", s.smeltShards.path, s.dir.appendingPathComponent("x.gguf").path, "Q4_K_M"],
                     ["perplexity", s.smeltShards.path, "-f", text], ["inspect", s.smeltShards.path],
                     ["plan", s.smeltShards.path, "--recipe", "Q4_K_M"]] {
            let r = try SmeltBinary.run(args)
            XCTAssertEqual(r.status, 1, args.joined(separator: " "))
            XCTAssertEqual(r.stderr, "error: \(s.dir.appendingPathComponent("s-00003-of-00003.gguf").path): missing shard 3 of 3 of the split model s-00001-of-00003.gguf\n")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir.appendingPathComponent("x.gguf").path))
    }

    /// `smelt convert --split-max-tensors / --split-max-size` writes what convert_hf_to_gguf.py
    /// writes (gguf-py's split writer): compared with gguf-py splitting llama.cpp's own conversion.
    func testConvertSplitMatchesGGUFPy() throws {
        let golden = try Fixtures.sharedFile(Self.golden)
        let folder = try Fixtures.sharedFile("models/tiny/tiny-llama")
        guard let py = Fixtures.venvPython else { throw XCTSkip("no .venv (make venv)") }
        let dir = try Fixtures.tempDir(self)
        for (flag, value, n) in [("--split-max-tensors", "8", 3), ("--split-max-size", "3000000", 3), ("--split-max-size", "1G", 1)] {
            let tag = "\(flag.count)\(value)"
            _ = try smelt(["convert", folder.path, "--outtype", "f32", "-o", dir.appendingPathComponent("c\(tag).gguf").path,
                           flag, value.replacingOccurrences(of: "3000000", with: "3M")])
            let p = try SmeltBinary.run(executable: py, [Fixtures.repoRoot.appendingPathComponent("scripts/gguf-py-split.py").path,
                                                         golden.appendingPathComponent("tiny-llama-f32.gguf").path,
                                                         dir.appendingPathComponent("p\(tag).gguf").path, flag,
                                                         value == "1G" ? "1000000000" : value])
            XCTAssertEqual(p.status, 0, p.stderr)
            let names = n == 1 ? [".gguf"] : (1...n).map { String(format: "-%05d-of-%05d.gguf", $0, n) }
            for suffix in names {
                XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("c\(tag)\(suffix)")),
                               try Data(contentsOf: dir.appendingPathComponent("p\(tag)\(suffix)")), "\(flag) \(value) \(suffix)")
            }
        }
        let both = try SmeltBinary.run(["convert", folder.path, "-o", dir.appendingPathComponent("z.gguf").path,
                                        "--split-max-tensors", "8", "--split-max-size", "1G"])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.stderr.contains("not both"), both.stderr)
    }
}
