import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Nothing lost (docs/RELIABILITY.md): outputs that would destroy an input are refused before
/// anything is written, interrupted runs remove their temporary files, stale temporary files of
/// dead processes are swept, failures leave existing outputs alone; non-finite weights are
/// refused naming the file, tensor and row.
final class NothingLostTests: CLITestCase {
    /// Every file's bytes under the work folder (following links), to show inputs are unchanged.
    func contents() -> [String: Data] {
        var out: [String: Data] = [:]
        for p in SmeltCommand.listing(work) {
            let u = work.appendingPathComponent(p)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir), !isDir.boolValue {
                out[p] = FileManager.default.contents(atPath: u.path)
            }
        }
        return out
    }

    func testOutputOntoAnInputIsRefused() throws {
        let m = try gguf("m.gguf", [])
        let ck = try checkpoint("ck")
        _ = try write("im.recipe.yaml", "not an imatrix")
        let before = contents()
        let cases: [([String], String)] = [
            (["convert", "ck", "-o", "ck/model.safetensors"], "ck"),
            (["convert", "ck", "-o", "ck/new.gguf"], "ck"),
            (["export", "m.gguf", "-o", "m.gguf"], "m.gguf"),
            (["quantize", "m.gguf", "m.gguf", "Q4_0"], "m.gguf"),
            (["quantize", "m.gguf", "./m.gguf", "Q8_0"], "m.gguf"),
            (["quantize", "m.gguf", "im.gguf", "--target-bpw", "5", "--imatrix", "im.recipe.yaml"], "im.recipe.yaml"),
            (["imatrix", "m.gguf", "-f", "text.txt", "-o", "m.gguf"], "m.gguf"),
            (["imatrix", "m.gguf", "-f", "text.txt", "-o", "text.txt"], "text.txt"),
            (["perplexity", "m.gguf", "-f", "text.txt", "--save-logits", "text.txt"], "text.txt"),
            (["perplexity", "m.gguf", "-f", "text.txt", "--save-logits", "m.gguf"], "m.gguf"),
        ]
        for (args, input) in cases {
            try expectCleanFailure(args, naming: input, "output onto \(input)")
            let r = try SmeltCommand.run(args, in: work)
            XCTAssertTrue(r.stderr.contains("refusing to write"), "\(args): \(r.stderr)")
        }
        XCTAssertEqual(contents(), before, "an input changed")
        _ = (m, ck)
    }

    /// Every command that writes refuses an output that is one of its inputs — the same path, a
    /// symbolic or hard link to it, a shard of a split input, a shard name a split output would
    /// take — with exit status 1 and one `error:` line naming the input, before anything is written.
    func testEveryWritingCommandRefusesItsInputs() throws {
        let m = try gguf("m.gguf", [])
        let ck = try checkpoint("ck")
        // a split copy of the model: sh-00001-of-00003.gguf …
        let sp = try SmeltCommand.run(["split", "m.gguf", "sh", "--split-max-tensors", "8"], in: work)
        XCTAssertEqual(sp.status, 0, sp.stderr)
        let shards = SmeltCommand.listing(work).filter { $0.hasPrefix("sh-") }
        XCTAssertGreaterThanOrEqual(shards.count, 2, "\(shards)")
        let n = String(format: "%05d", shards.count)
        let first = "sh-00001-of-\(n).gguf", second = "sh-00002-of-\(n).gguf", last = "sh-\(n)-of-\(n).gguf"
        try FileManager.default.createSymbolicLink(atPath: work.appendingPathComponent("sym.gguf").path, withDestinationPath: "m.gguf")
        try FileManager.default.linkItem(at: m, to: work.appendingPathComponent("hard.gguf"))
        try FileManager.default.createSymbolicLink(atPath: work.appendingPathComponent("cklink").path, withDestinationPath: "ck")
        let quants = work.appendingPathComponent("quants")
        try FileManager.default.createDirectory(at: quants, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: m, to: quants.appendingPathComponent("q.gguf"))
        _ = try write("store.sqlite", "a results store")
        try FileManager.default.createSymbolicLink(atPath: work.appendingPathComponent("r.html").path, withDestinationPath: "store.sqlite")
        try FileManager.default.linkItem(at: work.appendingPathComponent("store.sqlite"), to: work.appendingPathComponent("r.md"))
        _ = try SmeltCommand.run(["imatrix", "m.gguf", "-f", "text.txt", "-c", "64", "--chunks", "1", "-o", "im.gguf"], in: work)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work.appendingPathComponent("im.gguf").path))
        let before = contents()

        let cases: [([String], String)] = [
            // quantize: the input itself, through links, a shard, the shards --keep-split / --split-max-* would write
            (["quantize", "m.gguf", "m.gguf", "Q8_0"], "m.gguf"),
            (["quantize", "m.gguf", "sym.gguf", "Q8_0"], "m.gguf"),
            (["quantize", "m.gguf", "hard.gguf", "Q8_0"], "m.gguf"),
            (["quantize", "sym.gguf", "m.gguf", "Q8_0"], "sym.gguf"),
            (["quantize", first, second, "Q8_0"], second),
            (["quantize", first, "sh.gguf", "Q8_0", "--keep-split"], first),
            (["quantize", first, "sh.gguf", "Q8_0", "--split-max-tensors", "8"], first),
            (["quantize", "m.gguf", "im.gguf", "Q4_K_M", "--imatrix", "im.gguf"], "im.gguf"),
            // convert: into the checkpoint folder, also through a link to it
            (["convert", "ck", "-o", "ck/model.safetensors"], "ck"),
            (["convert", "ck", "-o", "cklink/new.gguf"], "ck"),
            (["convert", "cklink", "-o", "ck/new.gguf", "--split-max-tensors", "5"], "cklink"),
            // split and merge
            (["split", first, "sh", "--split-max-tensors", "8"], first),
            (["merge", first, last], last),
            // export
            (["export", "m.gguf", "-o", "hard.gguf"], "m.gguf"),
            (["export", first, "-o", second], second),
            // imatrix: the model (a shard of it), the text, an --in-file (also when only combining)
            (["imatrix", first, "-f", "text.txt", "-o", last], last),
            (["imatrix", "m.gguf", "-f", "text.txt", "-o", "text.txt"], "text.txt"),
            (["imatrix", "--in-file", "im.gguf", "-o", "im.gguf"], "im.gguf"),
            (["imatrix", "m.gguf", "-f", "text.txt", "--in-file", "im.gguf", "-o", "im.gguf"], "im.gguf"),
            // perplexity --save-logits onto a shard of the model
            (["perplexity", first, "-f", "text.txt", "--save-logits", second], second),
            // card: onto a quant it describes, into the source, onto the store
            (["card", "quants", "-o", "quants/q.gguf", "--store", "store.sqlite"], "quants/q.gguf"),
            (["card", "quants", "--source", "ck", "-o", "ck/README.md", "--store", "store.sqlite"], "ck"),
            (["card", "quants", "-o", "store.sqlite", "--store", "store.sqlite"], "store.sqlite"),
            // report -o onto the store, through a symbolic and a hard link
            (["report", "--store", "store.sqlite", "-o", "r.html"], "store.sqlite"),
            (["report", "--store", "store.sqlite", "-o", "r.md"], "store.sqlite"),
        ]
        for (args, input) in cases {
            let label = "smelt \(args.joined(separator: " "))"
            let listed = SmeltCommand.listing(work)
            let r = try SmeltCommand.run(args, in: work)
            XCTAssertEqual(r.status, 1, "\(label): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(label): \(r.stderr)")
            XCTAssertTrue(lines.first?.hasPrefix("error: refusing to write") ?? false, "\(label): \(r.stderr)")
            XCTAssertTrue(lines.first?.contains(input) ?? false, "\(label): does not name \(input): \(r.stderr)")
            XCTAssertEqual(SmeltCommand.listing(work), listed, "\(label): files created or removed")
        }
        XCTAssertEqual(contents(), before, "an input changed")
        _ = ck
    }

    /// A failing run leaves an existing output as it was.
    func testFailureKeepsExistingOutput() throws {
        let bad = try gguf("bad.gguf", [("llama.attention.head_count", .uint32(0))])
        let out = try write("out.gguf", "previous output")
        try expectCleanFailure(["quantize", bad.lastPathComponent, "out.gguf", "Q4_0"], naming: bad.lastPathComponent, "failing quantize")
        XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), "previous output")
    }

    /// SIGINT and SIGTERM during a quantization: exit 130 / 143, one error line, no temporary file.
    func testInterruptionRemovesTemporaryFiles() throws {
        let m = try gguf("m.gguf", [])
        var interrupted = 0
        defer { XCTAssertGreaterThan(interrupted, 0, "no run was interrupted") }
        for (sig, status) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let before = SmeltCommand.listing(work)
            // f32 → Q4_K_M of the tiny model takes seconds in a debug build: interrupt it once it is writing
            let writing = { SmeltCommand.listing(self.work).contains { $0.hasPrefix(".q.gguf.smelt-") } }
            let r = try SmeltCommand.run(["quantize", m.lastPathComponent, "q.gguf", "Q4_K_M", "1"], in: work, timeout: 120,
                                         signal: sig, signalAfter: 0.2, signalWhen: writing)
            if r.status == 0 { continue }  // finished before the signal (fast machine): nothing to check
            interrupted += 1
            XCTAssertLessThan(r.seconds, 30, "the signal did not stop the run promptly")
            XCTAssertFalse(r.signalled, "killed by the signal instead of handling it")
            XCTAssertEqual(r.status, status, r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("error: interrupted") }.count, 1, r.stderr)
            XCTAssertEqual(SmeltCommand.listing(work), before, "temporary files left after signal \(sig)")
        }
    }

    /// Temporary files of a process that is gone are removed at the next write into their folder;
    /// those of a live process are kept.
    func testStaleTemporaryFilesAreSwept() throws {
        let ck = try checkpoint("ck")
        var dead: pid_t = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let stale = try write(".out.gguf.smelt-\(dead)-12345.tmp", "stale")
        let staleDir = work.appendingPathComponent(".old-hf.smelt-\(dead).tmp")
        try FileManager.default.createDirectory(at: staleDir, withIntermediateDirectories: true)
        let live = try write(".out.gguf.smelt-\(getpid())-1.tmp", "a live process's file")
        let other = try write(".notes.smelt-backup.tmp", "not ours")
        let r = try SmeltCommand.run(["convert", ck.lastPathComponent, "-o", "out.gguf"], in: work)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path), "stale temporary file kept")
        XCTAssertFalse(FileManager.default.fileExists(atPath: staleDir.path), "stale temporary folder kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: live.path), "a live process's temporary file was removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: other.path))
    }

    // MARK: - numbers where they flow

    /// `--device vulkan` refuses non-finite weights exactly as the CPU path does: the same error
    /// line, the same exit status, nothing left behind; `--allow-nonfinite` writes the same bytes.
    func testNonFiniteWeightsOnTheGPU() throws {
        let devices = try SmeltCommand.run(["devices"], in: work)
        guard devices.status == 0, devices.stdout.contains("vulkan:0") else {
            throw XCTSkip("no Vulkan device: \(devices.stderr)")
        }
        let src = try GGUFFile(url: llamaGGUF)
        guard let t = src.tensor(named: "blk.1.attn_q.weight") else { return XCTFail("fixture changed") }
        var bytes = [UInt8](try Data(contentsOf: llamaGGUF))
        let at = src.fileOffset(of: t) + 4 * (5 * t.rowLength + 3)
        bytes.replaceSubrange(at..<(at + 4), with: withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian) { Array($0) })
        _ = try write("inf.gguf", bytes: bytes)
        for type in ["Q8_0", "Q4_K_M"] {
            try expectCleanFailure(["quantize", "inf.gguf", "q.gguf", type, "--device", "vulkan"], naming: "inf.gguf",
                                   "infinite weight (quantize \(type) on the GPU)")
            let cpu = try SmeltCommand.run(["quantize", "inf.gguf", "q.gguf", type, "--device", "cpu"], in: work)
            let gpu = try SmeltCommand.run(["quantize", "inf.gguf", "q.gguf", type, "--device", "vulkan"], in: work)
            XCTAssertEqual(gpu.status, cpu.status)
            let line = { (s: String) in s.split(separator: "\n").first { $0.hasPrefix("error:") }.map(String.init) }
            XCTAssertNotNil(line(cpu.stderr), cpu.stderr)
            XCTAssertEqual(line(gpu.stderr), line(cpu.stderr))
            XCTAssertTrue(gpu.stderr.contains("blk.1.attn_q.weight row 5 holds inf (column 3)"), gpu.stderr)
        }
        let c = try SmeltCommand.run(["quantize", "inf.gguf", "c.gguf", "Q8_0", "--allow-nonfinite", "--device", "cpu"], in: work)
        let g = try SmeltCommand.run(["quantize", "inf.gguf", "g.gguf", "Q8_0", "--allow-nonfinite", "--device", "vulkan"], in: work)
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertEqual(g.status, 0, g.stderr)
        XCTAssertEqual(try Data(contentsOf: work.appendingPathComponent("g.gguf")),
                       try Data(contentsOf: work.appendingPathComponent("c.gguf")))
    }


    func testNonFiniteWeights() throws {
        // a NaN in blk.1.attn_q.weight row 5 of the GGUF
        let src = try GGUFFile(url: llamaGGUF)
        guard let t = src.tensor(named: "blk.1.attn_q.weight") else { return XCTFail("fixture changed") }
        var bytes = [UInt8](try Data(contentsOf: llamaGGUF))
        let at = src.fileOffset(of: t) + 4 * (5 * t.rowLength + 3)
        bytes.replaceSubrange(at..<(at + 4), with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Array($0) })
        let nan = try write("nan.gguf", bytes: bytes)
        try expectCleanFailure(["quantize", "nan.gguf", "q.gguf", "Q4_K_M"], naming: "nan.gguf", "NaN weight (quantize)")
        let r = try SmeltCommand.run(["quantize", "nan.gguf", "q.gguf", "Q8_0"], in: work)
        XCTAssertTrue(r.stderr.contains("blk.1.attn_q.weight row 5"), r.stderr)
        try expectCleanFailure(["perplexity", "nan.gguf", "-f", "text.txt", "-c", "64", "--chunks", "1", "-t", "2"],
                               naming: "nan.gguf", "NaN weight (perplexity)")
        let p = try SmeltCommand.run(["perplexity", "nan.gguf", "-f", "text.txt", "-c", "64", "--chunks", "1", "-t", "2"], in: work)
        XCTAssertTrue(p.stderr.contains("blk.1") && p.stderr.contains("chunk 1"), p.stderr)
        // --allow-nonfinite writes it anyway
        let ok = try SmeltCommand.run(["quantize", "nan.gguf", "q.gguf", "Q8_0", "--allow-nonfinite"], in: work)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        _ = nan

        // an infinity in a checkpoint's safetensors: convert names the file, tensor and row
        let st = try SafetensorsFile(url: llamaHF.appendingPathComponent("model.safetensors"))
        guard let q = st.tensor(named: "model.layers.0.mlp.down_proj.weight"), q.dtype == .F32 else { return XCTFail("fixture changed") }
        var sb = [UInt8](try Data(contentsOf: llamaHF.appendingPathComponent("model.safetensors")))
        let off = q.range.lowerBound + 4 * (7 * q.shape[1])
        sb.replaceSubrange(off..<(off + 4), with: withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian) { Array($0) })
        _ = try checkpoint("inf", replacing: ["model.safetensors": Data(sb)])
        try expectCleanFailure(["convert", "inf", "-o", "inf.gguf"], naming: "inf/model.safetensors", "infinite weight (convert)")
        let c = try SmeltCommand.run(["convert", "inf", "-o", "inf.gguf", "--outtype", "f32"], in: work)
        XCTAssertTrue(c.stderr.contains("model.layers.0.mlp.down_proj.weight row 7"), c.stderr)
    }

    func testImatrixValues() throws {
        let m = try gguf("m.gguf", [])
        // legacy .dat: one entry with a negative value, one with NaN
        func dat(_ v: Float) -> [UInt8] {
            let name = Array("blk.0.attn_q.weight".utf8)
            return le(Int32(1)) + le(Int32(name.count)) + name + le(Int32(1)) + le(Int32(256))
                + (0..<256).flatMap { i in withUnsafeBytes(of: (i == 9 ? v : 1).bitPattern.littleEndian) { Array($0) } }
        }
        for (name, v) in [("negative", Float(-1)), ("nan", Float.nan)] {
            let u = try write("\(name).dat", bytes: dat(v))
            try expectCleanFailure(["quantize", m.lastPathComponent, "q.gguf", "Q4_K_M", "--imatrix", u.lastPathComponent],
                                   naming: u.lastPathComponent, "imatrix \(name) value")
        }
    }
}
