import Foundation
import XCTest
import SmeltFormats
import SmeltQuantize
import SmeltReport
import SmeltTestSupport
@testable import SmeltCompressedTensors

/// Writing compressed-tensors checkpoints from a small Llama checkpoint and reading them back.
final class CheckpointTests: XCTestCase {
    static let hidden = 128, ffn = 256, vocab = 64

    /// A one-block Llama checkpoint (bf16, tied embeddings) with deterministic weights, in `dir/name`.
    static func makeModel(in dir: URL, hidden: Int = hidden, ffn: Int = ffn, name: String = "hf") throws -> URL {
        let folder = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(hidden), "intermediate_size": \(ffn),
         "num_attention_heads": 4, "num_key_value_heads": 4, "num_hidden_layers": 1, "vocab_size": \(vocab),
         "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16"}
        """
        try config.write(to: folder.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try "{}".write(to: folder.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        let p = "model.layers.0."
        let shapes: [(String, [Int])] = [
            ("model.embed_tokens.weight", [vocab, hidden]),
            (p + "input_layernorm.weight", [hidden]),
            (p + "mlp.down_proj.weight", [hidden, ffn]),
            (p + "mlp.gate_proj.weight", [ffn, hidden]),
            (p + "mlp.up_proj.weight", [ffn, hidden]),
            (p + "post_attention_layernorm.weight", [hidden]),
            (p + "self_attn.k_proj.weight", [hidden, hidden]),
            (p + "self_attn.o_proj.weight", [hidden, hidden]),
            (p + "self_attn.q_proj.weight", [hidden, hidden]),
            (p + "self_attn.v_proj.weight", [hidden, hidden]),
            ("model.norm.weight", [hidden]),
        ]
        let w = try SafetensorsWriter(url: folder.appendingPathComponent("model.safetensors"),
                                      tensors: shapes.map { .init(name: $0.0, dtype: .BF16, shape: $0.1) })
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for (k, (_, shape)) in shapes.enumerated() {
            let n = shape.reduce(1, *)
            var bytes: [UInt8] = []
            for i in 0..<n {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                var v = Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 1000 * 0.05
                if k == 2 && i % 97 == 0 { v *= 40 }          // outliers in down_proj
                if k == 3 && i < hidden { v = 0 }               // an all-zero row (and group) in gate_proj
                let b = FloatFormats.floatToBF16(v)
                bytes.append(UInt8(b & 0xFF)); bytes.append(UInt8(b >> 8))
            }
            try w.write(bytes)
        }
        try w.finish()
        return folder
    }

    func testEverySchemeWritesAndReadsBack() throws {
        let dir = try Fixtures.tempDir(self)
        let model = try Self.makeModel(in: dir)
        let source = try SafetensorsCheckpoint(folder: model)
        for preset in CTSchemePreset.allCases {
            let out = dir.appendingPathComponent(preset.rawValue)
            var job = CompressedTensorsExport(input: model, output: out, scheme: preset)
            let modules = ["q_proj", "k_proj", "v_proj", "o_proj"].map { "model.layers.0.self_attn.\($0)" }
                + ["gate_proj", "up_proj", "down_proj"].map { "model.layers.0.mlp.\($0)" }
            for m in modules { job.inputAbsMax[m] = 3.5 }
            let (summary, choices) = try job.run()
            XCTAssertEqual(summary.quantized, 7)
            XCTAssertEqual(choices.map(\.module.name), modules, "modules in the model's order")

            let r = try CTCheckpointReader(folder: out)
            XCTAssertEqual(r.config.groups.count, 1)
            XCTAssertEqual(r.config.ignore, ["lm_head"], "the tied output head is listed as ignored")
            XCTAssertEqual(r.config.groups[0].scheme.targets, ["Linear"])
            let scheme = preset.scheme()
            XCTAssertEqual(r.config.groups[0].scheme.weights, scheme.weights)
            XCTAssertEqual(r.config.groups[0].scheme.inputActivations, scheme.inputActivations)
            XCTAssertEqual(Set(r.modules.keys), Set(modules))
            let names = Set(r.checkpoint.tensors.map(\.name))
            let args = try XCTUnwrap(scheme.weights)
            for m in modules {
                let t = try XCTUnwrap(source.tensor(named: m + ".weight"))
                let rows = t.shape[0], cols = t.shape[1]
                switch preset {
                case .W4A16, .W4A16_ASYM:
                    XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight_packed")?.dtype, .I32)
                    XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight_packed")?.shape, [rows, cols / 8])
                    XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight_shape")?.dtype, .I64)
                    XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight_scale")?.shape, [rows, cols / 128])
                    XCTAssertEqual(names.contains(m + ".weight_zero_point"), preset == .W4A16_ASYM)
                    if preset == .W4A16_ASYM {
                        XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight_zero_point")?.shape, [rows / 8, cols / 128])
                    }
                default:
                    XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight")?.dtype, args.type == .float ? .F8_E4M3 : .I8)
                    XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight_scale")?.shape, preset == .FP8 ? [1] : [rows, 1])
                }
                XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight_scale")?.dtype, .BF16)
                XCTAssertEqual(names.contains(m + ".input_scale"), preset == .FP8)
                if preset == .FP8 {
                    XCTAssertEqual(try r.inputScale(module: m), CTComputeType.bf16.round(3.5 / 448))
                }
                // read back = the source weight fake-quantized by the reference arithmetic
                var expect = t.floats()
                let p = try expect.withUnsafeBufferPointer { try CTQuantizer.weightParams($0, rows: rows, columns: cols, args: args, type: .bf16) }
                try expect.withUnsafeMutableBufferPointer { try CTQuantizer.fakeQuantize($0, rows: rows, columns: cols, params: p, args: args, type: .bf16) }
                let got = try r.floats(tensor: m + ".weight")
                XCTAssertEqual(got, expect, "\(preset) \(m)")
            }
            // unquantized tensors unchanged, tokenizer copied
            XCTAssertEqual(try r.floats(tensor: "model.norm.weight"), source.tensor(named: "model.norm.weight")?.floats())
            XCTAssertEqual(r.denseTensorNames.sorted(), source.tensors.map(\.name).sorted())
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("tokenizer.json").path))
            let cfg = try JSONValue.parse(contentsOf: out.appendingPathComponent("config.json"))
            XCTAssertEqual(cfg["quantization_config"]?["format"]?.stringValue, scheme.inferredFormat.rawValue)
            XCTAssertEqual(cfg["quantization_config"]?["quantization_status"]?.stringValue, "compressed")
            XCTAssertEqual(cfg["hidden_size"]?.intValue, Self.hidden)

            // the table the results store keeps (report BPW, scheme name): dense tensors, their bytes on disk
            XCTAssertEqual(r.schemeName, preset.rawValue)
            let table = try r.tensorTable()
            XCTAssertEqual(table.map(\.name).sorted(), source.tensors.map(\.name).sorted())
            XCTAssertEqual(table.reduce(0) { $0 + $1.bytes }, Int64(r.checkpoint.tensors.reduce(0) { $0 + $1.byteCount }),
                           "every stored byte is counted once")
            let down = try XCTUnwrap(table.first { $0.name == "model.layers.0.mlp.down_proj.weight" })
            XCTAssertEqual(down.shape, [Self.ffn, Self.hidden], "ggml order: columns first")
            let stored = r.checkpoint.tensors.filter { $0.name.hasPrefix("model.layers.0.mlp.down_proj.") }.reduce(0) { $0 + $1.byteCount }
            XCTAssertEqual(down.bytes, Int64(stored))
            let want = ["FP8": "fp8 tensor", "FP8_DYNAMIC": "fp8 channel", "W8A8": "int8 channel", "W4A16": "int4 g128",
                        "W4A16_ASYM": "int4 g128 asym"][preset.rawValue]
            XCTAssertEqual(down.type, want)
            XCTAssertEqual(table.first { $0.name == "model.norm.weight" }?.type, "bf16")
            let plan = try XCTUnwrap(try Recorder.plan(of: out, key: "k"))
            XCTAssertEqual(plan.fileTypeName, preset.rawValue)
            let bits = plan.bitsPerWeight
            // embeddings stay bf16 (tied head): between the weights' own bits and 16
            XCTAssertTrue(bits > Double(args.numBits) && bits < 16, "\(preset): \(bits) bits per weight")
        }
        XCTAssertNil(try Recorder.plan(of: model, key: "k"), "a plain checkpoint folder has no plan")
        // group size 64: named as llm-compressor's preset with the group
        let g64 = dir.appendingPathComponent("g64")
        var job = CompressedTensorsExport(input: model, output: g64, scheme: .W4A16)
        job.groupSize = 64
        _ = try job.run()
        XCTAssertEqual(try CTCheckpointReader(folder: g64).schemeName, "W4A16 g64")
        XCTAssertEqual(try CTCheckpointReader(folder: g64).tensorTable().first { $0.name.hasSuffix("q_proj.weight") }?.type, "int4 g64")
    }

    /// `groupSize` 64 on a model whose widths (192, 384) are not multiples of 128: the preset's 128 is
    /// refused, 64 quantizes every linear with one scale per 64 columns and says so in the config
    /// (`group_size: 64`, `strategy: group`, as compressed-tensors writes a QuantizationArgs with group_size 64).
    func testGroupSizeQuantizesWidthsThatAreNotMultiplesOf128() throws {
        let dir = try Fixtures.tempDir(self)
        let model = try Self.makeModel(in: dir, hidden: 192, ffn: 384, name: "hf192")
        let source = try SafetensorsCheckpoint(folder: model)
        XCTAssertThrowsError(try CompressedTensorsExport(input: model, output: dir.appendingPathComponent("g128"), scheme: .W4A16).run()) {
            XCTAssertTrue("\($0)".contains("not divisible by the group size 128") && "\($0)".contains("--group-size"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("g128").path))
        XCTAssertThrowsError(try CompressedTensorsExport(input: model, output: dir.appendingPathComponent("g48"), scheme: .W4A16, groupSize: 48).run())
        XCTAssertThrowsError(try CompressedTensorsExport(input: model, output: dir.appendingPathComponent("w8"), scheme: .W8A8, groupSize: 64).run())

        for preset in [CTSchemePreset.W4A16, .W4A16_ASYM] {
            let out = dir.appendingPathComponent("\(preset.rawValue)-g64")
            let (summary, _) = try CompressedTensorsExport(input: model, output: out, scheme: preset, groupSize: 64).run()
            XCTAssertEqual(summary.quantized, 7)
            let cfg = try JSONValue.parse(contentsOf: out.appendingPathComponent("config.json"))
            let w = try XCTUnwrap(cfg["quantization_config"]?["config_groups"]?["group_0"]?["weights"])
            XCTAssertEqual(w["group_size"]?.intValue, 64)
            XCTAssertEqual(w["strategy"]?.stringValue, "group")
            XCTAssertEqual(w["num_bits"]?.intValue, 4)
            XCTAssertEqual(w["symmetric"]?.boolValue, preset == .W4A16)
            let r = try CTCheckpointReader(folder: out)
            var args = try XCTUnwrap(preset.scheme().weights)
            args.groupSize = 64
            XCTAssertEqual(r.config.groups[0].scheme.weights, args)
            XCTAssertEqual(r.modules.count, 7)
            for m in r.modules.keys {
                let t = try XCTUnwrap(source.tensor(named: m + ".weight"))
                let rows = t.shape[0], cols = t.shape[1]
                XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight_scale")?.shape, [rows, cols / 64], m)
                if preset == .W4A16_ASYM {
                    XCTAssertEqual(r.checkpoint.tensor(named: m + ".weight_zero_point")?.shape, [rows / 8, cols / 64], m)
                }
                var expect = t.floats()
                let p = try expect.withUnsafeBufferPointer { try CTQuantizer.weightParams($0, rows: rows, columns: cols, args: args, type: .bf16) }
                try expect.withUnsafeMutableBufferPointer { try CTQuantizer.fakeQuantize($0, rows: rows, columns: cols, params: p, args: args, type: .bf16) }
                XCTAssertEqual(try r.floats(tensor: m + ".weight"), expect, "\(preset) \(m)")
            }
        }
    }

    func testFormatsPerScheme() {
        XCTAssertEqual(CTSchemePreset.FP8.scheme().inferredFormat, .floatQuantized)
        XCTAssertEqual(CTSchemePreset.FP8_DYNAMIC.scheme().inferredFormat, .floatQuantized)
        XCTAssertEqual(CTSchemePreset.W8A8.scheme().inferredFormat, .intQuantized)
        XCTAssertEqual(CTSchemePreset.W4A16.scheme().inferredFormat, .packQuantized)
        XCTAssertEqual(CTSchemePreset.W4A16_ASYM.scheme().inferredFormat, .packQuantized)
        XCTAssertEqual(CTSchemePreset(name: "int8"), .W8A8)
        XCTAssertNil(CTSchemePreset(name: "W3A5"))
    }

    func testRecipeAndRegexIgnoreMixSchemes() throws {
        let dir = try Fixtures.tempDir(self)
        let model = try Self.makeModel(in: dir)
        let recipe = try Recipe(yaml: """
        name: mixed
        format: compressed-tensors
        default: W4A16
        rules:
          - role: ffn_down
            scheme: W8A8
          - role: attn_v
            scheme: keep
        """, source: "mixed.yaml")
        let out = dir.appendingPathComponent("out")
        let job = CompressedTensorsExport(input: model, output: out, scheme: nil, recipe: recipe,
                                          ignore: ["lm_head", "re:.*k_pr"])
        let (_, choices) = try job.run()
        let byName = Dictionary(uniqueKeysWithValues: choices.map { ($0.module.name, $0) })
        XCTAssertEqual(byName["model.layers.0.mlp.down_proj"]?.scheme, .W8A8)
        XCTAssertEqual(byName["model.layers.0.mlp.down_proj"]?.reason, "mixed.yaml:5")
        XCTAssertNil(byName["model.layers.0.self_attn.v_proj"]?.scheme)
        XCTAssertNil(byName["model.layers.0.self_attn.k_proj"]?.scheme, "re: matches from the start of the name")
        XCTAssertEqual(byName["model.layers.0.self_attn.k_proj"]?.reason, "--ignore re:.*k_pr")
        XCTAssertEqual(byName["model.layers.0.self_attn.q_proj"]?.scheme, .W4A16)
        let r = try CTCheckpointReader(folder: out)
        XCTAssertEqual(r.config.format, "mixed-precision")
        XCTAssertEqual(r.config.groups.map(\.scheme.format), [.packQuantized, .intQuantized])
        XCTAssertEqual(r.config.groups[1].scheme.targets, ["model.layers.0.mlp.down_proj"])
        XCTAssertEqual(r.config.ignore, ["model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj", "lm_head"])
        XCTAssertEqual(r.scheme(module: "model.layers.0.mlp.down_proj")?.weights?.numBits, 8)
        XCTAssertEqual(r.scheme(module: "model.layers.0.mlp.up_proj")?.weights?.numBits, 4)
        XCTAssertNil(r.scheme(module: "model.layers.0.self_attn.v_proj"))
        XCTAssertEqual(r.checkpoint.tensor(named: "model.layers.0.self_attn.v_proj.weight")?.dtype, .BF16)

        XCTAssertThrowsError(try Recipe(yaml: "name: x\nformat: compressed-tensors\ndefault: W4A17\n", source: "x.yaml")) {
            XCTAssertTrue("\($0)".contains("x.yaml:3"), "\($0)")
        }
        XCTAssertThrowsError(try Recipe(yaml: "name: x\ndefault: q4_0\nrules:\n  - role: ffn_down\n    scheme: W8A8\n", source: "y.yaml"))
    }

    func testFailuresLeaveNothingBehind() throws {
        let dir = try Fixtures.tempDir(self)
        let model = try Self.makeModel(in: dir)
        let out = dir.appendingPathComponent("fp8")
        let before = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        // FP8 needs calibrated input scales
        XCTAssertThrowsError(try CompressedTensorsExport(input: model, output: out, scheme: .FP8).run()) {
            XCTAssertTrue("\($0)".contains("input scale"), "\($0)")
        }
        // a group size that does not divide the columns names the tensor
        let cfg = model.appendingPathComponent("config.json")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), before)
        var plan = try CompressedTensorsExport(input: model, output: out, scheme: .W8A8).plan().plan
        var g = plan.config.groups[0].scheme
        g.weights = try CTQuantizationArgs(numBits: 4, type: .int, groupSize: 96, strategy: .group)
        g.format = .packQuantized
        plan.config.groups[0].scheme = g
        XCTAssertThrowsError(try CTCheckpointWriter.write(source: model, to: out, plan: plan)) {
            XCTAssertTrue("\($0)".contains("mlp.down_proj.weight"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), before)
        // an existing non-empty output is not overwritten
        let busy = dir.appendingPathComponent("busy")
        try FileManager.default.createDirectory(at: busy, withIntermediateDirectories: true)
        try "x".write(to: busy.appendingPathComponent("keep.txt"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CompressedTensorsExport(input: model, output: busy, scheme: .W8A8).run())
        XCTAssertEqual(try String(contentsOf: busy.appendingPathComponent("keep.txt"), encoding: .utf8), "x")
        _ = cfg
    }
}

/// `smelt quantize --format compressed-tensors` through the binary.
final class CompressedTensorsCommandTests: XCTestCase {
    func testCommandWritesAndRefuses() throws {
        let dir = try Fixtures.tempDir(self)
        let model = try CheckpointTests.makeModel(in: dir)
        let out = dir.appendingPathComponent("w8")
        let ok = try SmeltCommand.run(["quantize", model.path, "-o", out.path, "--format", "compressed-tensors", "--scheme", "w8a8",
                                       "--ignore", "lm_head", "--ignore", "re:.*o_proj"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let r = try CTCheckpointReader(folder: out)
        XCTAssertEqual(r.modules.count, 6)
        XCTAssertEqual(r.config.ignore, ["model.layers.0.self_attn.o_proj", "lm_head"])

        let dry = try SmeltCommand.run(["quantize", model.path, "-o", dir.appendingPathComponent("dry").path,
                                        "--format", "compressed-tensors", "--scheme", "W4A16", "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertTrue(dry.stdout.contains("model.layers.0.mlp.down_proj\tW4A16\t--scheme W4A16"), dry.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("dry").path))

        let bad = try SmeltCommand.run(["quantize", model.path, "-o", dir.appendingPathComponent("x").path,
                                        "--format", "compressed-tensors", "--scheme", "W4A61"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("W4A16"), "did you mean: \(bad.stderr)")
        // --group-size: W4A16 schemes only, vLLM's sizes only
        let g64 = try SmeltCommand.run(["quantize", model.path, "-o", dir.appendingPathComponent("g64").path,
                                        "--format", "compressed-tensors", "--scheme", "W4A16", "--group-size", "64"])
        XCTAssertEqual(g64.status, 0, g64.stderr)
        XCTAssertEqual(try CTCheckpointReader(folder: dir.appendingPathComponent("g64")).config.groups[0].scheme.weights?.groupSize, 64)
        for (scheme, size) in [("W4A16", "48"), ("W8A8", "64")] {
            let e = try SmeltCommand.run(["quantize", model.path, "-o", dir.appendingPathComponent("gx").path,
                                          "--format", "compressed-tensors", "--scheme", scheme, "--group-size", size])
            XCTAssertEqual(e.status, 2, e.stderr)
            XCTAssertTrue(e.stderr.contains("--group-size"), e.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("gx").path))
        let fp8 = try SmeltCommand.run(["quantize", model.path, "-o", dir.appendingPathComponent("y").path,
                                        "--format", "gguf-ish", "--scheme", "FP8"])
        XCTAssertEqual(fp8.status, 2, fp8.stderr)
        let noOut = try SmeltCommand.run(["quantize", model.path, "--format", "compressed-tensors", "--scheme", "FP8"])
        XCTAssertEqual(noOut.status, 2, noOut.stderr)
        // the existing output is left alone
        let again = try SmeltCommand.run(["quantize", model.path, "-o", out.path, "--format", "compressed-tensors", "--scheme", "W8A8"])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.hasPrefix("error: "), again.stderr)
        XCTAssertEqual(try CTCheckpointReader(folder: out).modules.count, 6)
    }
}
