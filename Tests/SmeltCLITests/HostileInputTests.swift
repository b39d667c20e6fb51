import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Shared by the command-line tests: a work folder, the tiny llama fixture, input builders and
/// the check that a run failed cleanly.
class CLITestCase: XCTestCase {
    var work: URL!
    var llamaGGUF: URL!
    var llamaHF: URL!
    var text: URL!

    override func setUpWithError() throws {
        work = try Fixtures.tempDir(self)
        llamaGGUF = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        llamaHF = try Fixtures.sharedFile("models/tiny/tiny-llama")
        let sample = try String(contentsOf: try Fixtures.sharedFile("models/tiny/tiny-llama.golden/eval-sample.txt"), encoding: .utf8)
        text = work.appendingPathComponent("text.txt")
        try String(sample.prefix(3000)).write(to: text, atomically: true, encoding: .utf8)
    }

    // MARK: - checking one case

    /// Runs `args` in the work folder and checks that it fails cleanly, naming `file`.
    func expectCleanFailure(_ args: [String], naming file: String, _ what: String,
                            timeout: Double = 60, line: UInt = #line) throws {
        let before = SmeltCommand.listing(work)
        let r = try SmeltCommand.run(args, in: work, timeout: timeout)
        let label = "\(what) (smelt \(args.joined(separator: " ")))"
        XCTAssertFalse(r.timedOut, "\(label): still running after \(timeout) s", line: line)
        XCTAssertFalse(r.signalled, "\(label): killed by signal \(r.status)\n\(r.stderr.prefix(2000))", line: line)
        XCTAssertNotEqual(r.status, 0, "\(label): accepted", line: line)
        let errors = r.stderr.split(separator: "\n").filter { $0.contains("error:") || $0.contains("Fatal") || $0.contains("crashed") }
        XCTAssertEqual(errors.count, 1, "\(label): expected one error line, got:\n\(r.stderr.prefix(2000))", line: line)
        if let e = errors.first {
            XCTAssertTrue(e.hasPrefix("error: "), "\(label): \(e)", line: line)
            XCTAssertTrue(e.contains(file), "\(label): the error does not name \(file): \(e)", line: line)
            XCTAssertLessThan(e.count, 600, "\(label): error line too long", line: line)
        }
        XCTAssertEqual(SmeltCommand.listing(work), before, "\(label): files left behind or removed", line: line)
    }

    // MARK: - building inputs

    /// A copy of the tiny llama GGUF with metadata changed (nil removes the key).
    func gguf(_ name: String, _ edits: [(String, GGUFValue?)]) throws -> URL {
        let src = try GGUFFile(url: llamaGGUF)
        var md = src.metadata
        for (k, v) in edits { md[k] = v }
        let url = work.appendingPathComponent(name)
        let w = try GGUFWriter(url: url, metadata: md,
                               tensors: src.tensors.map { GGUFTensorDescriptor(name: $0.name, shape: $0.shape, type: $0.type) })
        for t in src.tensors { try w.write(src.data(for: t)) }
        try w.finish()
        return url
    }

    /// A checkpoint folder linking the tiny llama's files, with files replaced or added.
    func checkpoint(_ name: String, replacing files: [String: Data] = [:]) throws -> URL {
        let dir = work.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: llamaHF.path) where files[f] == nil {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(f), withDestinationURL: llamaHF.appendingPathComponent(f))
        }
        for (f, d) in files { try d.write(to: dir.appendingPathComponent(f)) }
        return dir
    }

    /// The tiny llama's config.json with `old` replaced by `new` (exact text, so that huge
    /// integers stay exact).
    func config(replacing old: String, with new: String) throws -> Data {
        let t = try String(contentsOf: llamaHF.appendingPathComponent("config.json"), encoding: .utf8)
        XCTAssertTrue(t.contains(old), "config.json has no \(old)")
        return Data(t.replacingOccurrences(of: old, with: new).utf8)
    }

    func write(_ name: String, _ text: String) throws -> URL {
        let u = work.appendingPathComponent(name)
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    func write(_ name: String, bytes: [UInt8]) throws -> URL {
        let u = work.appendingPathComponent(name)
        try Data(bytes).write(to: u)
        return u
    }

    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// A safetensors file from a header (JSON text) and a data section.
    func safetensors(_ name: String, header: String, data: [UInt8]) throws -> URL {
        let h = Array(header.utf8)
        return try write(name, bytes: le(UInt64(h.count)) + h + data)
    }

}

/// The regression corpus of hostile and broken inputs (docs/RELIABILITY.md), run through the
/// real `smelt` binary: every case must end with a non-zero exit status (no signal, no time-out),
/// exactly one `error:` line that names the input file, and no file left behind or changed.
/// Inputs are generated from the tiny llama fixture (`../shared/models/tiny`) or written here.
final class HostileInputTests: CLITestCase {
    // MARK: - GGUF metadata the pipelines divide by, allocate with or loop over

    func testGGUFHyperparameters() throws {
        let cases: [(String, [(String, GGUFValue?)])] = [
            ("heads0", [("llama.attention.head_count", .uint32(0))]),
            ("kvheads0", [("llama.attention.head_count_kv", .uint32(0))]),
            ("headsHuge", [("llama.attention.head_count", .uint64(UInt64(Int64.max)))]),
            ("blocksNegative", [("llama.block_count", .int32(-1))]),
            ("blocksHuge", [("llama.block_count", .uint64(1 << 40))]),
            ("keyLength0", [("llama.attention.key_length", .uint32(0))]),
            ("epsInfinite", [("llama.attention.layer_norm_rms_epsilon", .float32(.infinity))]),
            ("ropeBaseNaN", [("llama.rope.freq_base", .float32(.nan))]),
            ("kvNotDividing", [("llama.attention.head_count_kv", .uint32(3))]),
        ]
        for (name, edits) in cases {
            let g = try gguf("\(name).gguf", edits)
            try expectCleanFailure(["perplexity", g.lastPathComponent, "-f", "text.txt", "-c", "64", "--chunks", "1", "-t", "2"],
                                   naming: g.lastPathComponent, "\(name): perplexity")
            try expectCleanFailure(["export", g.lastPathComponent, "-o", "\(name)-hf"], naming: g.lastPathComponent, "\(name): export")
            try expectCleanFailure(["quantize", g.lastPathComponent, "\(name)-q.gguf", "Q4_K_M"],
                                   naming: g.lastPathComponent, "\(name): quantize")
        }
        // rotary dimensions beyond the head (heap corruption before): the evaluator refuses
        let rope = try gguf("rope1000.gguf", [("llama.rope.dimension_count", .uint32(1000))])
        try expectCleanFailure(["perplexity", rope.lastPathComponent, "-f", "text.txt", "-c", "64", "--chunks", "1"],
                               naming: rope.lastPathComponent, "rope.dimension_count = 1000")
    }

    func testGGUFStructure() throws {
        // a tensor without elements whose other dimension asks for 2^41 rows
        var b: [UInt8] = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(1)) + le(UInt64(0))
        b += le(UInt64(1)) + Array("t".utf8) + le(UInt32(2)) + le(UInt64(0)) + le(UInt64(1) << 41) + le(UInt32(0)) + le(UInt64(0))
        b += [UInt8](repeating: 0, count: 64)
        let empty = try write("empty-huge.gguf", bytes: b)
        try expectCleanFailure(["inspect", empty.lastPathComponent], naming: empty.lastPathComponent, "zero-size tensor with 2^41 rows")
        // a tensor name of 100,000 bytes
        var n: [UInt8] = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(1)) + le(UInt64(0))
        n += le(UInt64(100_000)) + [UInt8](repeating: 0x61, count: 100_000) + le(UInt32(1)) + le(UInt64(32)) + le(UInt32(0)) + le(UInt64(0))
        n += [UInt8](repeating: 0, count: 256)
        let long = try write("long-name.gguf", bytes: n)
        try expectCleanFailure(["quantize", long.lastPathComponent, "long-q.gguf", "Q8_0"], naming: long.lastPathComponent, "huge tensor name")
    }

    // MARK: - config.json

    func testConfigValues() throws {
        let cases: [(String, String, String)] = [
            ("headsHuge", "\"num_attention_heads\": 4", "\"num_attention_heads\": 9223372036854775807"),
            ("heads0", "\"num_attention_heads\": 4", "\"num_attention_heads\": 0"),
            ("headDim0", "\"head_dim\": 64", "\"head_dim\": 0"),
            ("layersNegative", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": -1"),
            ("epsInfinite", "\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 1e999"),
            ("hiddenString", "\"hidden_size\": 256", "\"hidden_size\": \"256\""),
            ("noHiddenSize", "\"hidden_size\": 256,", ""),
            ("kvNotDividing", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"),
        ]
        for (name, old, new) in cases {
            let dir = try checkpoint(name, replacing: ["config.json": try config(replacing: old, with: new)])
            try expectCleanFailure(["convert", name, "-o", "\(name).gguf"], naming: "\(name)/config.json", "\(name): convert")
            try expectCleanFailure(["perplexity", dir.lastPathComponent, "-f", "text.txt", "-c", "64", "--chunks", "1", "-t", "2"],
                                   naming: "\(name)/config.json", "\(name): perplexity")
        }
    }

    // MARK: - tokenizer files

    func testTokenizerFiles() throws {
        // a SentencePiece piece whose length field points past the end
        var spm = [UInt8](try Data(contentsOf: llamaHF.appendingPathComponent("tokenizer.model")))
        var j = 1
        while spm[j] & 0x80 != 0 { j += 1 }
        j += 1  // first piece message: 0x0a (piece string) then its length
        XCTAssertEqual(spm[j], 0x0A)
        spm.replaceSubrange((j + 1)...(j + 1), with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        _ = try checkpoint("spm", replacing: ["tokenizer.model": Data(spm)])
        try expectCleanFailure(["convert", "spm", "-o", "spm.gguf"], naming: "spm/tokenizer.model", "SentencePiece piece length")

        // a negative added-token id in tokenizer.json
        let tj = try String(contentsOf: llamaHF.appendingPathComponent("tokenizer.json"), encoding: .utf8)
        guard let r = tj.range(of: "\"id\": 0,") else { return XCTFail("fixture tokenizer.json changed") }
        _ = try checkpoint("tj", replacing: ["tokenizer.json": Data(tj.replacingCharacters(in: r, with: "\"id\": -5,").utf8)])
        try expectCleanFailure(["convert", "tj", "-o", "tj.gguf"], naming: "tj", "negative added-token id")
    }

    // MARK: - safetensors

    func testSafetensors() throws {
        let cases: [(String, String, [UInt8])] = [
            ("empty-huge", #"{"t":{"dtype":"F32","shape":[0,2199023255552],"data_offsets":[0,0]}}"#, []),
            ("dtype-mismatch", #"{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 8)),
            ("hidden-bytes", #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 4096)),
            ("gap", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
             [UInt8](repeating: 0, count: 12)),
            ("overflow", #"{"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#, [UInt8](repeating: 0, count: 16)),
        ]
        for (name, header, data) in cases {
            let u = try safetensors("\(name).safetensors", header: header, data: data)
            try expectCleanFailure(["inspect", u.lastPathComponent], naming: u.lastPathComponent, "safetensors \(name)")
        }
    }

    // MARK: - recipes

    func testRecipes() throws {
        let head = "name: hostile\ndefault: q4_0\nrules:\n"
        let deep = String(repeating: "(", count: 2000) + "i == 1" + String(repeating: ")", count: 2000)
        var bomb = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
        for (p, c) in zip("abcdefgh", "bcdefghi") { bomb += "\(c): &\(c) [" + Array(repeating: "*\(p)", count: 9).joined(separator: ",") + "]\n" }
        let cases: [(String, String)] = [
            ("int-min-div", head + "  - when: \"(0 - 9223372036854775807 - 1) / (0 - 1) == i\"\n    type: q8_0\n"),
            ("int-min-rem", head + "  - when: \"(0 - 9223372036854775807 - 1) % (i - 1) == 0\"\n    type: q8_0\n"),
            ("negate-min", head + "  - when: \"-(0 - 9223372036854775807 - 1) == i\"\n    type: q8_0\n"),
            ("mul-overflow", head + "  - when: \"i * 9223372036854775807 * 9223372036854775807 == 1\"\n    type: q8_0\n"),
            ("deep-parens", head + "  - when: \"\(deep)\"\n    type: q8_0\n"),
            ("deep-not", head + "  - when: \"" + String(repeating: "!", count: 100) + "(i == 1)\"\n    type: q8_0\n"),
            ("regex-nested", head + "  - name: \"(a+)+$\"\n    type: q8_0\n"),
            ("regex-alternation", head + "  - name: \"^(blk|b|bl|l|k)*\\\\.x$\"\n    type: q8_0\n"),
            ("layers-overflow", head + "  - layers: \"first 9223372036854775807/9223372036854775807\"\n    type: q8_0\n"),
            ("use-more-bits", head + "  - when: \"use_more_bits(i, 9223372036854775807)\"\n    type: q8_0\n"),
            ("yaml-deep", "name: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n"),
            ("alias-bomb", bomb + "name: a\ndefault: q4_0\n"),
        ]
        let g = try gguf("model.gguf", [])
        for (name, recipe) in cases {
            let r = try write("\(name).yaml", recipe)
            try expectCleanFailure(["plan", g.lastPathComponent, "--recipe", r.lastPathComponent], naming: r.lastPathComponent, "recipe \(name)")
        }
        let r = try write("int-min-quantize.yaml", cases[0].1)
        try expectCleanFailure(["quantize", g.lastPathComponent, "out.gguf", "--recipe", r.lastPathComponent],
                               naming: r.lastPathComponent, "recipe through quantize")
    }

    // MARK: - model cards

    func testModelCardAliasBomb() throws {
        var bomb = "---\na: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
        for (p, c) in zip("abcdefgh", "bcdefghi") { bomb += "\(c): &\(c) [" + Array(repeating: "*\(p)", count: 9).joined(separator: ",") + "]\n" }
        bomb += "license: mit\n---\n# card\n"
        _ = try checkpoint("bomb", replacing: ["README.md": Data(bomb.utf8)])
        try expectCleanFailure(["convert", "bomb", "-o", "bomb.gguf"], naming: "bomb/README.md", "model card alias bomb (convert)", timeout: 30)
        try expectCleanFailure(["license", "bomb"], naming: "bomb/README.md", "model card alias bomb (license)", timeout: 30)
        // the same in a mergekit config (read through SafeYAML like the card)
        let merge = String(bomb.dropFirst(4).prefix(while: { $0 != "-" })) + "base_model: org/model\n"
        _ = try checkpoint("mbomb", replacing: ["mergekit_config.yml": Data(merge.utf8)])
        try expectCleanFailure(["license", "mbomb"], naming: "mbomb/mergekit_config.yml", "mergekit config alias bomb (license)", timeout: 30)
    }

    // MARK: - what smelt license reads

    func testLicenseInputs() throws {
        let list = (0..<40_000).map { "  - org\($0)/model\($0)" }.joined(separator: "\n")
        _ = try checkpoint("many", replacing: ["README.md": Data("---\nlicense: mit\nbase_model:\n\(list)\n---\n".utf8)])
        try expectCleanFailure(["license", "many"], naming: "many/README.md", "40,000 base models", timeout: 30)

        let negative = try gguf("negative-count.gguf", [("general.base_model.count", .int32(-1))])
        try expectCleanFailure(["license", negative.lastPathComponent], naming: negative.lastPathComponent, "general.base_model.count = -1")

        func header(_ kv: [UInt8], count: UInt64 = 1) -> [UInt8] {
            Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(count) + kv
        }
        let key = Array("general.x".utf8)
        let cases: [(String, [UInt8])] = [
            ("huge-string", header(le(UInt64(key.count)) + key + le(UInt32(8)) + le(UInt64(1) << 40) + Array("abc".utf8))),
            ("wrapping-skip", header(le(UInt64(5)) + Array("other".utf8) + le(UInt32(9)) + le(UInt32(0)) + le(UInt64.max / 2)
                                     + [UInt8](repeating: 0, count: 16))),
            ("huge-key", header(le(UInt64(1) << 62) + key)),
            ("many-keys", header([], count: UInt64.max)),
        ]
        for (name, bytes) in cases {
            let u = try write("\(name).gguf", bytes: bytes)
            try expectCleanFailure(["license", u.lastPathComponent], naming: u.lastPathComponent, "license reads \(name)", timeout: 30)
        }
    }

    // MARK: - argument extremes

    func testArgumentExtremes() throws {
        let g = try gguf("model.gguf", [])
        try expectCleanFailure(["perplexity", g.lastPathComponent, "-f", "text.txt", "-c", "9223372036854775807"],
                               naming: "context size", "context of 2^63-1")
        try expectCleanFailure(["imatrix", g.lastPathComponent, "-f", "text.txt", "-c", "9223372036854775807", "-o", "im.gguf"],
                               naming: "context size", "imatrix context of 2^63-1")
    }

    // MARK: - KL-divergence base files

    func testKLDBaseFiles() throws {
        let g = try gguf("model.gguf", [])
        let magic = Array("_logits_".utf8)
        let cases: [(String, [UInt8])] = [
            ("huge", magic + le(Int32(1 << 20)) + le(Int32(1000)) + le(Int32(16000))),
            ("negative", magic + le(Int32(-64)) + le(Int32(1000)) + le(Int32(1))),
            ("vocab-huge", magic + le(Int32(64)) + le(Int32.max) + le(Int32(1))),
            ("bad-token", magic + le(Int32(2)) + le(Int32(1000)) + le(Int32(1)) + le(Int32(5)) + le(Int32(-7))
                + [UInt8](repeating: 0, count: 2 * 1004)),
        ]
        for (name, bytes) in cases {
            let u = try write("\(name).kld", bytes: bytes)
            try expectCleanFailure(["perplexity", g.lastPathComponent, "--kl-divergence", u.lastPathComponent, "-t", "2"],
                                   naming: u.lastPathComponent, "KLD base \(name)")
        }
    }
}
