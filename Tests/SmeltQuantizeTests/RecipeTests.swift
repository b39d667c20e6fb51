import Foundation
import XCTest
import SmeltFormats
import SmeltQuantize
import SmeltTestSupport

/// Recipe format: parsing, errors with line numbers, matching, provenance, and the
/// fixture files written through recipes.
final class RecipeTests: XCTestCase {
    static var recipesDir: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("recipes")
    }

    /// `Q4_0`, `Q4_K_M`, `Q6_K` through the built-in recipe and through recipes/X.yaml:
    /// both byte-identical to llama-quantize's files (no provenance for unchanged presets).
    func testPresetRecipesReproduceLlamaQuantizeFiles() throws {
        let dir = try Fixtures.tempDir(self)
        for model in ["tiny-llama", "tiny-qwen3", "tiny-gemma3"] {
            let input = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-f32.gguf")
            for preset in [LlamaPreset.Q4_0, .Q4_K_M, .Q6_K] {
                let golden = try Data(contentsOf: try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-\(preset.rawValue).gguf"))
                for recipe in [try BuiltinRecipes.recipe(named: preset.rawValue)!,
                               try Recipe(contentsOf: Self.recipesDir.appendingPathComponent("\(preset.rawValue).yaml"))] {
                    XCTAssertTrue(recipe.isBuiltinPreset)
                    let out = dir.appendingPathComponent("\(model)-\(preset.rawValue).gguf")
                    var req = QuantizeRequest(preset: recipe.fileType)
                    req.recipe = recipe
                    req.threads = 2
                    try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: req)
                    XCTAssertTrue(try Data(contentsOf: out) == golden, "\(model) \(preset) via \(recipe.source)")
                }
            }
        }
    }

    /// A recipe that is not an unchanged preset writes its provenance; the tensors stay the same.
    func testProvenanceMetadata() throws {
        let dir = try Fixtures.tempDir(self)
        let input = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let text = BuiltinRecipes.texts["Q4_K_M"]!.replacingOccurrences(of: "name: Q4_K_M", with: "name: my-mix")
        let recipe = try Recipe(yaml: text, source: "my-mix.yaml")
        XCTAssertFalse(recipe.isBuiltinPreset)
        var req = QuantizeRequest(preset: recipe.fileType)
        req.recipe = recipe
        req.extraMetadata = RecipeProvenance.metadata(recipe)
        let out = dir.appendingPathComponent("mix.gguf")
        try Quantizer.run(source: try GGUFTensorSource(url: input), output: out, request: req)
        let g = try GGUFFile(url: out)
        XCTAssertEqual(g.metadata[RecipeProvenance.nameKey]?.stringValue, "my-mix")
        XCTAssertEqual(g.metadata[RecipeProvenance.textKey]?.stringValue, text)
        XCTAssertEqual(g.metadata[RecipeProvenance.sourceKey]?.stringValue, "my-mix.yaml")
        XCTAssertNotNil(g.metadata[RecipeProvenance.versionKey])
        let golden = try GGUFFile(url: try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-Q4_K_M.gguf"))
        XCTAssertEqual(g.tensors.map(\.type), golden.tensors.map(\.type))
        let report = try InspectReport(url: out).text()
        XCTAssertTrue(report.contains("recipe: my-mix"), report)
    }

    func err(_ yaml: String) -> String {
        do { _ = try Recipe(yaml: yaml, source: "r.yaml"); return "no error" } catch { return "\(error)" }
    }

    func testErrorsCarryLineNumbers() {
        XCTAssertTrue(err("name: x\ndefault: q4_0\nbogus: 1\n").hasPrefix("r.yaml:3: unknown key 'bogus'"), err("name: x\ndefault: q4_0\nbogus: 1\n"))
        XCTAssertTrue(err("name: x\ndefault: q4_9\n").hasPrefix("r.yaml:2: unknown type 'q4_9'"))
        let rules = "name: x\ndefault: q4_0\nrules:\n"
        XCTAssertTrue(err(rules + "  - role: attn_v\n    type: q9_K\n").hasPrefix("r.yaml:5: unknown type 'q9_K'"))
        XCTAssertTrue(err(rules + "  - name: 'attn_(v'\n    type: q8_0\n").hasPrefix("r.yaml:4: bad regular expression"))
        XCTAssertTrue(err(rules + "  - role: attn_x\n    type: q8_0\n").hasPrefix("r.yaml:4: unknown role 'attn_x'"))
        XCTAssertTrue(err(rules + "  - role: attn_v\n    colour: red\n    type: q8_0\n").hasPrefix("r.yaml:5: unknown key 'colour' in rule"))
        XCTAssertTrue(err(rules + "  - role: attn_v\n    when: 'i <'\n    type: q8_0\n").hasPrefix("r.yaml:5: bad condition"))
        XCTAssertTrue(err(rules + "  - role: attn_v\n    when: 'foo > 1'\n    type: q8_0\n").contains("unknown variable 'foo'"))
        XCTAssertTrue(err(rules + "  - role: attn_v\n    layers: 5-2\n    type: q8_0\n").hasPrefix("r.yaml:5:"))
        XCTAssertTrue(err(rules + "  - role: attn_v\n    when: '1 > 2'\n    type: q8_0\n").contains("never match"))
        XCTAssertTrue(err(rules + "  - role: [attn_v, attn_k]\n    type: q8_0\n  - role: attn_v\n    layers: first 2\n    type: q6_K\n")
            .hasPrefix("r.yaml:6: the rule can never match: the rule at line 4"))
        XCTAssertTrue(err(rules + "  - type: q8_0\n  - role: output\n    type: q6_K\n").hasPrefix("r.yaml:5: the rule can never match"))
        XCTAssertTrue(err(rules + "  - role: token_embd\n    experts: true\n    type: q8_0\n").contains("never match"))
        XCTAssertTrue(err(rules + "  - role: attn_v\n").hasPrefix("r.yaml:4: rule without 'type:'"))
        XCTAssertTrue(err("name: x\n").contains("missing 'default:'"))
        XCTAssertTrue(err("name: [x\n").hasPrefix("r.yaml:"))
        XCTAssertEqual(err(rules + "  - role: logits\n    type: q8_0\n  - role: token_embd\n    type: q6_K\n"), "no error")
    }

    func testMatchingAndLayers() throws {
        let yaml = """
        name: t
        default: q4_0
        fallbacks: {q4_K: q8_0}
        keep: ['attn_k']
        rules:
          - role: attn_v
            layers: first 2, last 1
            type: q8_0
            why: first and last attn_v
          - name: 'blk\\.3\\.ffn_(up|gate)'
            type: keep
          - role: ffn_down
            layers: 2-3
            when: 'ncols % 256 == 0 && has_imatrix'
            type: q5_1
          - role: ffn_down
            when: 'ncols % 256 != 0'
            type: q4_K
          - role: logits
            type: q6_K
        """
        let r = try Recipe(yaml: yaml, source: "t.yaml")
        let t = RecipePresetTests.tensors(.init(name: "x", hidden: 512, layers: 5, heads: 8, kvHeads: 2, ffn: 96, tied: true))
        var o = QuantizeOptions(); o.hasImatrix = true
        let p = try r.plan(tensors: t, model: ModelFacts(arch: "llama", nLayer: 5, nHead: 8, nHeadKV: 2), options: o)
        func ty(_ n: String) -> GGMLType? { p.tensors.first { $0.name == n }?.type }
        XCTAssertEqual(ty("blk.0.attn_v.weight"), .q8_0)
        XCTAssertEqual(ty("blk.1.attn_v.weight"), .q8_0)
        XCTAssertEqual(ty("blk.2.attn_v.weight"), .q4_0)
        XCTAssertEqual(ty("blk.4.attn_v.weight"), .q8_0)
        XCTAssertEqual(ty("blk.0.attn_k.weight"), .f16)          // keep: copied as is
        XCTAssertEqual(ty("blk.3.ffn_up.weight"), .f16)
        XCTAssertEqual(ty("blk.2.ffn_up.weight"), .q4_0)
        XCTAssertEqual(ty("blk.2.ffn_down.weight"), .q8_0)       // 96 cols: q4_K → fallbacks q8_0
        XCTAssertEqual(ty("token_embd.weight"), .q6_K)           // tied: the logits tensor
        let reason = p.tensors.first { $0.name == "blk.0.attn_v.weight" }!.reason
        XCTAssertTrue(reason.hasPrefix("t.yaml:6: first and last attn_v"), reason)
        XCTAssertTrue(p.tensors.first { $0.name == "blk.2.ffn_down.weight" }!.reason.hasPrefix("t.yaml:16:"))
    }

    func testExpressions() throws {
        func ev(_ s: String, _ vars: [String: RecipeValue] = [:]) throws -> RecipeValue {
            try RecipeExpr.parse(s).evaluate { vars[$0] ?? .int(0) }
        }
        XCTAssertEqual(try ev("1 + 2 * 3"), .int(7))
        XCTAssertEqual(try ev("7 / 2 == 3 && 7 % 2 == 1"), .bool(true))
        XCTAssertEqual(try ev("i < n / 8", ["i": .int(2), "n": .int(30)]), .bool(true))
        XCTAssertEqual(try ev("i < n / 8", ["i": .int(3), "n": .int(24)]), .bool(false))
        XCTAssertEqual(try ev("use_more_bits(i, n)", ["i": .int(5), "n": .int(24)]), .bool(true))
        XCTAssertEqual(try ev("!(arch == \"falcon\") || n_gqa >= 4", ["arch": .string("llama"), "n_gqa": .int(1)]), .bool(true))
        XCTAssertEqual(try ev("i != 2 ? 1 : 0", ["i": .int(2)]), .int(0))
        XCTAssertThrowsError(try RecipeExpr.parse("frob(1)"))
        XCTAssertThrowsError(try RecipeExpr.parse("(1"))
    }
}
