import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Split GGUF models: reading all shards from the first, llama-gguf-split's layout
/// (split / merge), gguf-py's split writer as a second writer, and the errors.
final class GGUFSplitTests: XCTestCase {
    static let tinyF32 = "models/tiny/tiny-llama.golden/tiny-llama-f32.gguf"

    func bytes(_ g: GGUFFile, _ name: String) throws -> [UInt8] {
        let t = try XCTUnwrap(g.tensor(named: name), name)
        return Array(g.data(for: t))
    }

    /// The tensors of `a` and `b`: same names in the same order, types, shapes and bytes.
    func assertSameTensors(_ a: GGUFFile, _ b: GGUFFile, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name), file: file, line: line)
        for t in a.tensors {
            let u = try XCTUnwrap(b.tensor(named: t.name))
            XCTAssertEqual(t.type, u.type, file: file, line: line)
            XCTAssertEqual(t.shape, u.shape, file: file, line: line)
            XCTAssertTrue(a.data(for: t).elementsEqual(b.data(for: u)), "\(t.name) data differs", file: file, line: line)
        }
    }

    /// `smelt split` / `smelt merge` as llama-gguf-split (tools/gguf-split/gguf-split.cpp) lays them
    /// out: first shard = all keys then split.no, split.tensors.count, split.count (ggml's
    /// gguf_set_val removes and appends); later shards only those three; merge sets split.count 0.
    func testSplitAndMergeLayout() throws {
        let src = try Fixtures.sharedFile(Self.tinyF32)
        let dir = try Fixtures.tempDir(self)
        let model = try GGUFFile(url: src)
        XCTAssertFalse(model.isSplit)
        let files = try GGUFSplit.splitPlan(model, prefix: dir.appendingPathComponent("t").path, limit: .tensors(8))
        XCTAssertEqual(files.map { $0.url.lastPathComponent },
                       ["t-00001-of-00003.gguf", "t-00002-of-00003.gguf", "t-00003-of-00003.gguf"])
        XCTAssertEqual(files.map { $0.tensors.count }, [8, 8, 5])
        try GGUFSplit.write(files, from: model)

        let s0 = try GGUFFile(url: files[0].url, followSplits: false)
        XCTAssertEqual(s0.metadata.keys, model.metadata.keys + ["split.no", "split.tensors.count", "split.count"])
        XCTAssertEqual(s0.metadata["split.no"], .uint16(0))
        XCTAssertEqual(s0.metadata["split.tensors.count"], .int32(21))
        XCTAssertEqual(s0.metadata["split.count"], .uint16(3))
        for (i, f) in files.enumerated().dropFirst() {
            let s = try GGUFFile(url: f.url, followSplits: false)
            XCTAssertEqual(s.metadata, GGUFMetadata([("split.no", .uint16(UInt16(i))), ("split.tensors.count", .int32(21)),
                                                     ("split.count", .uint16(3))]))
        }
        // The three shards read as one model: every tensor, in order, same bytes.
        let whole = try GGUFFile(url: files[0].url)
        XCTAssertTrue(whole.isSplit)
        XCTAssertEqual(whole.shards.count, 3)
        try assertSameTensors(model, whole)
        // Each shard's data section is the original's tensors, back to back, each padded to 32.
        var expected: [UInt8] = []
        for t in model.tensors.prefix(8) {
            expected += Array(model.data(for: t)) + [UInt8](repeating: 0, count: (32 - t.byteCount % 32) % 32)
        }
        let raw0 = try Data(contentsOf: files[0].url)
        XCTAssertEqual(Array(raw0[whole.shards[0].dataOffset...]), expected)

        // Merge: the original header plus split.no 0, split.tensors.count 21, split.count 0; same data section.
        let mergedURL = dir.appendingPathComponent("merged.gguf")
        try GGUFSplit.write([GGUFSplit.mergePlan(whole, output: mergedURL)], from: whole)
        let merged = try GGUFFile(url: mergedURL)
        XCTAssertFalse(merged.isSplit)
        var md = model.metadata
        md["split.no"] = .uint16(0); md["split.tensors.count"] = .int32(21); md["split.count"] = .uint16(0)
        XCTAssertEqual(merged.metadata, md)
        try assertSameTensors(model, merged)
        let orig = try Data(contentsOf: src), m = try Data(contentsOf: mergedURL)
        XCTAssertEqual(m[merged.dataOffset...], orig[model.dataOffset...], "merged data section = the original's")

        // Splitting the merged file again gives the same shards, byte for byte (keys moved, not duplicated).
        let again = try GGUFSplit.splitPlan(merged, prefix: dir.appendingPathComponent("again").path, limit: .tensors(8))
        try GGUFSplit.write(again, from: merged)
        for (a, b) in zip(files, again) { XCTAssertEqual(try Data(contentsOf: a.url), try Data(contentsOf: b.url)) }
        // Existing outputs are never overwritten.
        XCTAssertThrowsError(try GGUFSplit.write(files, from: model)) { e in
            XCTAssertTrue("\(e)".contains("already exists"), "\(e)")
        }
    }

    /// How each layout cuts: gguf-split counts padded sizes and refuses an empty first shard;
    /// gguf-py counts raw sizes and always puts at least one tensor in a shard.
    func testCutRules() throws {
        XCTAssertEqual(try GGUFSplit.cut(sizes: [10, 40, 30], limit: .bytes(64), layout: .ggufSplit), [1, 1, 1])
        XCTAssertEqual(try GGUFSplit.cut(sizes: [10, 40, 30], limit: .bytes(64), layout: .ggufPy), [2, 1])
        XCTAssertEqual(try GGUFSplit.cut(sizes: [32, 32, 32], limit: .bytes(64), layout: .ggufSplit), [2, 1])
        XCTAssertEqual(try GGUFSplit.cut(sizes: [1, 2, 3, 4, 5], limit: .tensors(2), layout: .ggufSplit), [2, 2, 1])
        XCTAssertEqual(try GGUFSplit.cut(sizes: [1, 2, 3, 4, 5], limit: .tensors(2), layout: .ggufPy), [2, 2, 1])
        XCTAssertEqual(try GGUFSplit.cut(sizes: [100, 10], limit: .bytes(64), layout: .ggufPy), [1, 1])
        XCTAssertThrowsError(try GGUFSplit.cut(sizes: [100, 10], limit: .bytes(64), layout: .ggufSplit))
        XCTAssertEqual(try GGUFSplit.Limit.size(parsing: "2G"), .bytes(2_000_000_000))
        XCTAssertEqual(try GGUFSplit.Limit.size(parsing: "500M"), .bytes(500_000_000))
        XCTAssertEqual(try GGUFSplit.Limit.size(parsing: "1GiB"), .bytes(1 << 30))
        XCTAssertEqual(try GGUFSplit.Limit.size(parsing: "12345"), .bytes(12345))
        for bad in ["", "0", "-1G", "2X", "G"] { XCTAssertThrowsError(try GGUFSplit.Limit.size(parsing: bad), bad) }
        XCTAssertEqual(GGUFSplit.shardURL(prefix: "/a/m", index: 1, count: 3).path, "/a/m-00002-of-00003.gguf")
        XCTAssertEqual(GGUFSplit.prefix(ofShard: URL(fileURLWithPath: "/a/m-00001-of-00003.gguf"), index: 0, count: 3), "/a/m")
        XCTAssertNil(GGUFSplit.prefix(ofShard: URL(fileURLWithPath: "/a/m.gguf"), index: 0, count: 3))
    }

    /// gguf-py's GGUFWriter (what convert_hf_to_gguf.py --split-max-tensors uses) as a
    /// second writer: its shards read as the unsplit model.
    func testGGUFPyShards() throws {
        let src = try Fixtures.sharedFile(Self.tinyF32)
        guard let py = Fixtures.venvPython else { throw XCTSkip("no .venv (make venv)") }
        let dir = try Fixtures.tempDir(self)
        let r = try SmeltBinary.run(executable: py, [Fixtures.repoRoot.appendingPathComponent("scripts/gguf-py-split.py").path,
                                                     src.path, dir.appendingPathComponent("py.gguf").path, "--split-max-tensors", "8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let g = try GGUFFile(url: dir.appendingPathComponent("py-00001-of-00003.gguf"))
        XCTAssertEqual(g.shards.count, 3)
        XCTAssertEqual(Array(g.metadata.keys.suffix(3)), ["split.no", "split.count", "split.tensors.count"])
        try assertSameTensors(try GGUFFile(url: src), g)
        // Our gguf-py layout writes the same files from the same metadata and tensors.
        let model = try GGUFFile(url: src)
        let plans = try GGUFSplit.plan(url: dir.appendingPathComponent("sm.gguf"), metadata: model.metadata,
                                       tensors: model.tensors.map { GGUFTensorDescriptor(name: $0.name, shape: $0.shape, type: $0.type) },
                                       limit: .tensors(8), layout: .ggufPy)
        try GGUFSplit.write(plans, from: model)
        for i in 1...3 {
            let n = String(format: "-%05d-of-00003.gguf", i)
            XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("sm" + n)), try Data(contentsOf: dir.appendingPathComponent("py" + n)))
        }
    }

    /// A missing shard, one of another model, a later shard given first, a renamed first shard:
    /// each an error naming the file.
    func testShardErrors() throws {
        let src = try Fixtures.sharedFile(Self.tinyF32)
        let dir = try Fixtures.tempDir(self)
        let model = try GGUFFile(url: src)
        let files = try GGUFSplit.splitPlan(model, prefix: dir.appendingPathComponent("t").path, limit: .tensors(8))
        try GGUFSplit.write(files, from: model)
        let first = files[0].url, second = files[1].url
        func message(_ url: URL) -> String {
            do { _ = try GGUFFile(url: url); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(second).contains("shard 2 of 3") && message(second).contains("t-00001-of-00003.gguf"), message(second))

        let moved = dir.appendingPathComponent("moved.gguf")
        try FileManager.default.moveItem(at: second, to: moved)
        XCTAssertTrue(message(first).contains("\(second.path): missing shard 2 of 3"), message(first))

        // A shard of another model: same position, different split.tensors.count.
        let foreign = try GGUFWriter(url: second, metadata: GGUFMetadata([("split.no", .uint16(1)), ("split.tensors.count", .int32(99)),
                                                                          ("split.count", .uint16(3))]), tensors: [])
        try foreign.finish()
        XCTAssertTrue(message(first).contains("\(second.path): shard of another model"), message(first))
        try FileManager.default.removeItem(at: second)

        // The same model cut differently: tensors in two shards.
        let other = try GGUFSplit.splitPlan(model, prefix: dir.appendingPathComponent("o").path, limit: .tensors(7))
        try GGUFSplit.write(other, from: model)
        try FileManager.default.copyItem(at: other[1].url, to: second)
        XCTAssertTrue(message(first).contains("is also in"), message(first))

        // A first shard renamed: the others cannot be found.
        let renamed = dir.appendingPathComponent("renamed.gguf")
        try FileManager.default.copyItem(at: first, to: renamed)
        XCTAssertTrue(message(renamed).contains("does not end in -00001-of-00003.gguf"), message(renamed))
        // Read alone, a shard is still a valid GGUF file.
        XCTAssertEqual(try GGUFFile(url: renamed, followSplits: false).tensors.count, 8)
    }

    /// A split write that fails leaves no file at all; `finish` commits every shard.
    func testSplitWriterLeavesNothing() throws {
        let dir = try Fixtures.tempDir(self)
        let descs = (0..<3).map { GGUFTensorDescriptor(name: "t\($0)", shape: [32], type: .f32) }
        let plans = GGUFSplit.files(prefix: dir.appendingPathComponent("x").path, metadata: GGUFMetadata(), tensors: descs,
                                    counts: [1, 1, 1], layout: .ggufSplit)
        let w = try GGUFWriter(files: plans)
        try w.write([UInt8](repeating: 1, count: 128))
        try w.write([UInt8](repeating: 2, count: 128))
        XCTAssertThrowsError(try w.finish())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        let w2 = try GGUFWriter(files: plans)
        for k in 0..<3 { try w2.write([UInt8](repeating: UInt8(k), count: 128)) }
        try w2.finish()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(),
                       ["x-00001-of-00003.gguf", "x-00002-of-00003.gguf", "x-00003-of-00003.gguf"])
        let g = try GGUFFile(url: plans[0].url)
        XCTAssertEqual(g.tensors.map(\.shard), [0, 1, 2])
        XCTAssertEqual(Array(g.data(for: g.tensors[2])), [UInt8](repeating: 2, count: 128))
    }
}
