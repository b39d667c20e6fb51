import Foundation
import XCTest
import SmeltFormats
import SmeltQuantize
import SmeltTestSupport

/// Every llama.cpp preset recipe (recipes/*.yaml, embedded in the binary) gives the same
/// plan as `LlamaPresets.plan`, the executable transcription of llama-quantize.
final class RecipePresetTests: XCTestCase {
    struct Shape {
        var name: String, arch = "llama", hidden: Int, layers: Int, heads: Int, kvHeads: Int, ffn: Int, vocab = 1024
        var tied = false, experts = 0, sharedExpert = false, fusedQKV = false
    }

    static func tensors(_ s: Shape) -> [PlanInput] {
        let hd = s.hidden / s.heads
        var t: [PlanInput] = [PlanInput(name: "token_embd.weight", shape: [s.hidden, s.vocab], type: .f16),
                              PlanInput(name: "output_norm.weight", shape: [s.hidden], type: .f32)]
        if !s.tied { t.append(PlanInput(name: "output.weight", shape: [s.hidden, s.vocab], type: .f16)) }
        for l in 0..<s.layers {
            let p = "blk.\(l)."
            t.append(PlanInput(name: p + "attn_norm.weight", shape: [s.hidden], type: .f32))
            if s.fusedQKV {
                t.append(PlanInput(name: p + "attn_qkv.weight", shape: [s.hidden, s.hidden + 2 * s.kvHeads * hd], type: .f16))
            } else {
                t += [PlanInput(name: p + "attn_q.weight", shape: [s.hidden, s.hidden], type: .f16),
                      PlanInput(name: p + "attn_k.weight", shape: [s.hidden, s.kvHeads * hd], type: .f16),
                      PlanInput(name: p + "attn_v.weight", shape: [s.hidden, s.kvHeads * hd], type: .f16)]
            }
            t += [PlanInput(name: p + "attn_output.weight", shape: [s.hidden, s.hidden], type: .f16),
                  PlanInput(name: p + "ffn_norm.weight", shape: [s.hidden], type: .f32)]
            if s.experts > 0 {
                t += [PlanInput(name: p + "ffn_gate_inp.weight", shape: [s.hidden, s.experts], type: .f32),
                      PlanInput(name: p + "ffn_gate_exps.weight", shape: [s.hidden, s.ffn, s.experts], type: .f16),
                      PlanInput(name: p + "ffn_up_exps.weight", shape: [s.hidden, s.ffn, s.experts], type: .f16),
                      PlanInput(name: p + "ffn_down_exps.weight", shape: [s.ffn, s.hidden, s.experts], type: .f16)]
                if s.sharedExpert {
                    t += [PlanInput(name: p + "ffn_gate_shexp.weight", shape: [s.hidden, s.ffn], type: .f16),
                          PlanInput(name: p + "ffn_up_shexp.weight", shape: [s.hidden, s.ffn], type: .f16),
                          PlanInput(name: p + "ffn_down_shexp.weight", shape: [s.ffn, s.hidden], type: .f16)]
                }
            } else {
                t += [PlanInput(name: p + "ffn_gate.weight", shape: [s.hidden, s.ffn], type: .f16),
                      PlanInput(name: p + "ffn_up.weight", shape: [s.hidden, s.ffn], type: .f16),
                      PlanInput(name: p + "ffn_down.weight", shape: [s.ffn, s.hidden], type: .f16)]
            }
        }
        return t
    }

    static let shapes: [Shape] = [
        Shape(name: "llama-256 gqa1 32L", hidden: 512, layers: 32, heads: 8, kvHeads: 8, ffn: 1024),
        Shape(name: "llama-256 gqa4 32L tied", hidden: 512, layers: 32, heads: 8, kvHeads: 2, ffn: 1024, tied: true),
        Shape(name: "llama-256 gqa8 80L (70B)", hidden: 512, layers: 80, heads: 16, kvHeads: 2, ffn: 768),
        Shape(name: "qwen2 80L gqa1", arch: "qwen2", hidden: 256, layers: 80, heads: 4, kvHeads: 4, ffn: 512),
        Shape(name: "smollm2 576 tied", hidden: 576, layers: 30, heads: 9, kvHeads: 3, ffn: 1536, tied: true),
        Shape(name: "576 untied gqa1", hidden: 576, layers: 7, heads: 9, kvHeads: 9, ffn: 1536),
        Shape(name: "moe 8 experts", hidden: 256, layers: 12, heads: 4, kvHeads: 1, ffn: 512, experts: 8),
        Shape(name: "moe 4 experts shexp", hidden: 256, layers: 9, heads: 4, kvHeads: 4, ffn: 512, experts: 4, sharedExpert: true),
        Shape(name: "moe 64 experts", arch: "qwen3moe", hidden: 512, layers: 16, heads: 8, kvHeads: 2, ffn: 256, experts: 64),
        Shape(name: "falcon fused qkv", arch: "falcon", hidden: 512, layers: 24, heads: 8, kvHeads: 1, ffn: 2048, fusedQKV: true),
        Shape(name: "bailingmoe3", arch: "bailingmoe3", hidden: 256, layers: 4, heads: 4, kvHeads: 4, ffn: 256, experts: 8),
        Shape(name: "odd 96-wide", hidden: 96, layers: 5, heads: 3, kvHeads: 1, ffn: 160, tied: true),
    ]

    func facts(_ s: Shape) -> ModelFacts {
        ModelFacts(arch: s.arch, nLayer: s.layers, nHead: s.heads, nHeadKV: s.kvHeads, nExpert: s.experts)
    }

    func compare(_ p: LlamaPreset, _ s: Shape, _ options: QuantizeOptions, _ label: String) throws {
        guard let recipe = try BuiltinRecipes.recipe(named: p.rawValue) else { return XCTFail("no recipe \(p.rawValue)") }
        let t = Self.tensors(s)
        var ref: Result<QuantPlan, Error>
        do { ref = .success(try LlamaPresets.plan(tensors: t, model: facts(s), preset: p, options: options)) } catch { ref = .failure(error) }
        var got: Result<QuantPlan, Error>
        do { got = .success(try recipe.plan(tensors: t, model: facts(s), options: options)) } catch { got = .failure(error) }
        switch (ref, got) {
        case (.success(let a), .success(let b)):
            XCTAssertEqual(a.fileType, b.fileType, "\(p) \(label)")
            XCTAssertEqual(a.fallbackCount, b.fallbackCount, "\(p) \(s.name) \(label) fallbacks")
            XCTAssertEqual(a.willRequireImatrix, b.willRequireImatrix, "\(p) \(s.name) \(label)")
            XCTAssertEqual(a.tensors.count, b.tensors.count)
            var bad = 0
            for (x, y) in zip(a.tensors, b.tensors) where x.name != y.name || x.type != y.type
                || x.allowsQuantization != y.allowsQuantization || x.requiresImatrix != y.requiresImatrix {
                if bad < 3 { XCTFail("\(p) \(s.name) \(label): \(x.name) \(x.type.name) (\(x.reason)) vs \(y.name) \(y.type.name) (\(y.reason))") }
                bad += 1
            }
        case (.failure(let a), .failure(let b)):
            XCTAssertEqual("\(a)", "\(b)", "\(p) \(s.name) \(label)")
        case (.success, .failure(let e)): XCTFail("\(p) \(s.name) \(label): recipe failed: \(e)")
        case (.failure(let e), .success): XCTFail("\(p) \(s.name) \(label): reference failed (\(e)), recipe did not")
        }
    }

    func testEveryPresetRecipeMatchesLlamaPresets() throws {
        for p in LlamaPreset.allCases {
            for s in Self.shapes {
                for im in [false, true] {
                    var o = QuantizeOptions(); o.hasImatrix = im; o.dryRun = true
                    try compare(p, s, o, "imatrix=\(im)")
                }
            }
        }
    }

    func testOptionsGoThroughTheSameWalk() throws {
        var variants: [(String, QuantizeOptions)] = []
        var o = QuantizeOptions(); o.dryRun = true; o.pure = true; variants.append(("pure", o))
        o = QuantizeOptions(); o.dryRun = true; o.quantizeOutputTensor = false; variants.append(("leave output", o))
        o = QuantizeOptions(); o.dryRun = true; o.outputTensorType = .q5_0; variants.append(("output type", o))
        o = QuantizeOptions(); o.dryRun = true; o.tokenEmbeddingType = .q4_0; variants.append(("embd type", o))
        o = QuantizeOptions(); o.dryRun = true; o.tensorTypes = [("attn_v", .q8_0), ("blk\\.1\\.", .q4_1)]; variants.append(("tensor-type", o))
        o = QuantizeOptions(); o.dryRun = false; variants.append(("no dry run, no imatrix", o))
        for p in LlamaPreset.allCases {
            for s in [Self.shapes[1], Self.shapes[4], Self.shapes[6]] {
                for (label, v) in variants { try compare(p, s, v, label) }
            }
        }
    }

    /// The copies embedded in the binary are the files in recipes/.
    func testEmbeddedRecipesEqualFiles() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("recipes")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertEqual(Set(files.map { String($0.dropLast(5)) }), Set(BuiltinRecipes.texts.keys))
        for f in files {
            let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
            XCTAssertTrue(BuiltinRecipes.texts[String(f.dropLast(5))] == text, "\(f): run scripts/gen-preset-recipes.py --embed-only")
            let r = try Recipe(yaml: text, source: f)
            XCTAssertEqual(r.name, String(f.dropLast(5)), f)
        }
        for p in LlamaPreset.allCases { XCTAssertNotNil(BuiltinRecipes.texts[p.rawValue], p.rawValue) }
    }
}
