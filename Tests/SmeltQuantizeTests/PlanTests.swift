import Foundation
import XCTest
import SmeltFormats
import SmeltQuantize
import SmeltTestSupport

/// The planner (llama.cpp's per-tensor type choice) on synthetic tensor lists.
final class PlanTests: XCTestCase {
    /// A llama-shaped tensor list as convert_hf_to_gguf writes it (bf16 matrices, f32 norms).
    static func llamaTensors(hidden: Int, layers: Int, heads: Int, kvHeads: Int, ffn: Int, vocab: Int,
                             tied: Bool, type: GGMLType = .bf16) -> [PlanInput] {
        let hd = hidden / heads
        var t: [PlanInput] = [PlanInput(name: "token_embd.weight", shape: [hidden, vocab], type: type),
                              PlanInput(name: "output_norm.weight", shape: [hidden], type: .f32)]
        if !tied { t.append(PlanInput(name: "output.weight", shape: [hidden, vocab], type: type)) }
        for l in 0..<layers {
            let p = "blk.\(l)."
            t += [PlanInput(name: p + "attn_norm.weight", shape: [hidden], type: .f32),
                  PlanInput(name: p + "attn_q.weight", shape: [hidden, hidden], type: type),
                  PlanInput(name: p + "attn_k.weight", shape: [hidden, kvHeads * hd], type: type),
                  PlanInput(name: p + "attn_v.weight", shape: [hidden, kvHeads * hd], type: type),
                  PlanInput(name: p + "attn_output.weight", shape: [hidden, hidden], type: type),
                  PlanInput(name: p + "ffn_norm.weight", shape: [hidden], type: .f32),
                  PlanInput(name: p + "ffn_gate.weight", shape: [hidden, ffn], type: type),
                  PlanInput(name: p + "ffn_up.weight", shape: [hidden, ffn], type: type),
                  PlanInput(name: p + "ffn_down.weight", shape: [ffn, hidden], type: type)]
        }
        return t
    }

    static let smolTensors = llamaTensors(hidden: 576, layers: 30, heads: 9, kvHeads: 3, ffn: 1536, vocab: 49152, tied: true)
    static let smolFacts = ModelFacts(arch: "llama", nLayer: 30, nHead: 9, nHeadKV: 3)

    func plan(_ preset: LlamaPreset, _ tensors: [PlanInput] = smolTensors, facts: ModelFacts = smolFacts,
              options: QuantizeOptions = QuantizeOptions()) throws -> QuantPlan {
        try LlamaPresets.plan(tensors: tensors, model: facts, preset: preset, options: options)
    }

    func type(_ p: QuantPlan, _ name: String) -> GGMLType? { p.tensors.first { $0.name == name }?.type }

    func bpw(_ p: QuantPlan) -> String { String(format: "%.2f", Double(p.outputBytes) * 8 / Double(p.elementCount)) }

    func testPresetParsing() {
        XCTAssertEqual(LlamaPreset(parsing: "q4_k_m"), .Q4_K_M)
        XCTAssertEqual(LlamaPreset(parsing: "Q4_K"), .Q4_K_M)
        XCTAssertEqual(LlamaPreset(parsing: "Q3_K"), .Q3_K_M)
        XCTAssertEqual(LlamaPreset(parsing: "15"), .Q4_K_M)
        XCTAssertEqual(LlamaPreset(parsing: "7"), .Q8_0)
        XCTAssertNil(LlamaPreset(parsing: "Q4_K_X"))
        XCTAssertEqual(LlamaPreset.IQ2_S.defaultType, .iq2_xs)
        XCTAssertEqual(LlamaPreset.IQ3_XS.defaultType, .iq3_s)
        XCTAssertEqual(LlamaPreset.MXFP4_MOE.fileType, 38)
        XCTAssertEqual(LlamaPreset.optionName(parsing: "q4_k"), "Q4_K")
        XCTAssertEqual(LlamaPreset.optionName(parsing: "15"), "Q4_K")
        XCTAssertEqual(LlamaPreset.optionName(parsing: "q4_k_m"), "Q4_K_M")
        XCTAssertEqual(LlamaPreset.optionName(parsing: "2"), "Q4_0")
    }

    func testLoaderOrder() throws {
        let p = try plan(.Q8_0)
        XCTAssertEqual(p.tensors.prefix(3).map(\.name), ["output_norm.weight", "token_embd.weight", "blk.0.attn_k.weight"])
        // blk.10 after blk.9 (numeric layer order), names sorted within a layer
        let names = p.tensors.map(\.name)
        XCTAssertLessThan(names.firstIndex(of: "blk.9.ffn_up.weight")!, names.firstIndex(of: "blk.10.attn_k.weight")!)
        XCTAssertLessThan(names.firstIndex(of: "blk.2.attn_v.weight")!, names.firstIndex(of: "blk.2.ffn_down.weight")!)
    }

    /// SmolLM2's 576-wide rows are not a multiple of 256: k-quants fall back (q4_K → q5_0),
    /// the tied embedding gets q8_0; the measured size is 6.17 BPW.
    func testSmolLM2Q4KMFallbacks() throws {
        let p = try plan(.Q4_K_M)
        XCTAssertEqual(type(p, "token_embd.weight"), .q8_0)
        XCTAssertEqual(type(p, "blk.5.attn_q.weight"), .q5_0)
        XCTAssertEqual(type(p, "blk.5.ffn_up.weight"), .q5_0)
        XCTAssertEqual(type(p, "blk.0.attn_norm.weight"), .f32)
        // attn_v: use_more_bits → q6_K → fallback q8_0; otherwise q4_K → q5_0
        XCTAssertEqual(type(p, "blk.0.attn_v.weight"), .q8_0)
        XCTAssertEqual(type(p, "blk.4.attn_v.weight"), .q5_0)
        XCTAssertEqual(type(p, "blk.5.attn_v.weight"), .q8_0)  // (5 - 3) % 3 == 2
        // ffn_down rows are 1536 wide: q4_K / q6_K without fallback
        XCTAssertEqual(type(p, "blk.0.ffn_down.weight"), .q6_K)
        XCTAssertEqual(type(p, "blk.4.ffn_down.weight"), .q4_K)
        XCTAssertEqual(type(p, "blk.29.ffn_down.weight"), .q6_K)
        XCTAssertEqual(p.fallbackCount, 30 * 6)
        XCTAssertTrue(p.tensors.first { $0.name == "blk.3.attn_q.weight" }!.reason.contains("fallback"))
        XCTAssertEqual(bpw(p), "6.17")
        XCTAssertEqual(String(format: "%.2f", Double(p.inputBytes) / 1048576), "256.63")
    }

    func testUseMoreBitsOnAttnV() throws {
        // 32 layers, 256-multiple rows: attn_v gets q6_K at i < 4, i >= 28, (i - 4) % 3 == 2
        let t = Self.llamaTensors(hidden: 512, layers: 32, heads: 8, kvHeads: 8, ffn: 1024, vocab: 1000, tied: false)
        let f = ModelFacts(arch: "llama", nLayer: 32, nHead: 8, nHeadKV: 8)
        let p = try plan(.Q4_K_M, t, facts: f)
        let six = (0..<32).filter { type(p, "blk.\($0).attn_v.weight") == .q6_K }
        XCTAssertEqual(six, [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31])
        XCTAssertEqual(type(p, "output.weight"), .q6_K)
        XCTAssertEqual(type(p, "token_embd.weight"), .q4_K)
        let q3 = try plan(.Q3_K_M, t, facts: f)
        XCTAssertEqual(type(q3, "blk.0.attn_v.weight"), .q5_K)
        XCTAssertEqual(type(q3, "blk.2.attn_v.weight"), .q4_K)
        XCTAssertEqual(type(q3, "blk.0.ffn_down.weight"), .q5_K)  // i < n/16
        XCTAssertEqual(type(q3, "blk.5.ffn_down.weight"), .q4_K)
        XCTAssertEqual(type(q3, "blk.5.attn_output.weight"), .q4_K)
        let q2 = try plan(.Q2_K, t, facts: f)
        XCTAssertEqual(type(q2, "blk.5.attn_v.weight"), .q3_K)
        XCTAssertEqual(type(q2, "blk.5.ffn_down.weight"), .q3_K)
        XCTAssertEqual(type(q2, "blk.5.attn_q.weight"), .q2_K)
    }

    func testIQ2WithoutImatrixFails() throws {
        XCTAssertThrowsError(try plan(.IQ2_XXS)) { e in
            XCTAssertTrue((e as? SmeltError)?.message.contains("importance matrix") ?? false, "\(e)")
        }
        var o = QuantizeOptions(); o.dryRun = true
        let p = try plan(.IQ2_XXS, options: o)
        XCTAssertTrue(p.willRequireImatrix)
        o = QuantizeOptions(); o.hasImatrix = true
        let q = try plan(.IQ2_XXS, options: o)
        XCTAssertEqual(type(q, "token_embd.weight"), .q8_0)  // tied output rule, 576 % 256 != 0
        XCTAssertEqual(type(q, "blk.3.attn_q.weight"), .iq4_nl)  // fallback
        XCTAssertFalse(q.willRequireImatrix)
        XCTAssertThrowsError(try plan(.Q2_K_S, Self.llamaTensors(hidden: 512, layers: 2, heads: 8, kvHeads: 8, ffn: 512, vocab: 100, tied: false),
                                      facts: ModelFacts(arch: "llama", nLayer: 2, nHead: 8, nHeadKV: 8)))
        XCTAssertNoThrow(try plan(.Q2_K, Self.llamaTensors(hidden: 512, layers: 2, heads: 8, kvHeads: 8, ffn: 512, vocab: 100, tied: false),
                                  facts: ModelFacts(arch: "llama", nLayer: 2, nHead: 8, nHeadKV: 8)))
    }

    func testOptions() throws {
        let t = Self.llamaTensors(hidden: 512, layers: 8, heads: 8, kvHeads: 2, ffn: 1024, vocab: 1000, tied: false)
        let f = ModelFacts(arch: "llama", nLayer: 8, nHead: 8, nHeadKV: 2)
        var o = QuantizeOptions()
        o.pure = true
        var p = try plan(.Q4_K_M, t, facts: f, options: o)
        XCTAssertEqual(type(p, "blk.0.attn_v.weight"), .q4_K)
        XCTAssertEqual(type(p, "output.weight"), .q4_K)
        o = QuantizeOptions()
        o.tensorTypes = [("attn_v", .q8_0), ("attn_.*", .q5_0), ("blk\\.1\\.", .q2_K)]
        p = try plan(.Q4_K_M, t, facts: f, options: o)
        XCTAssertEqual(type(p, "blk.1.attn_v.weight"), .q8_0)   // first match wins
        XCTAssertEqual(type(p, "blk.1.attn_q.weight"), .q5_0)
        XCTAssertEqual(type(p, "blk.1.ffn_up.weight"), .q2_K)
        XCTAssertEqual(type(p, "blk.1.attn_norm.weight"), .f32)  // never quantized
        o = QuantizeOptions()
        o.quantizeOutputTensor = false
        o.tokenEmbeddingType = .q8_0
        p = try plan(.Q4_0, t, facts: f, options: o)
        XCTAssertEqual(type(p, "output.weight"), .bf16)
        XCTAssertEqual(type(p, "token_embd.weight"), .q8_0)
        o = QuantizeOptions()
        o.outputTensorType = .q8_0
        p = try plan(.Q4_K_S, t, facts: f, options: o)
        XCTAssertEqual(type(p, "output.weight"), .q8_0)
        XCTAssertEqual(type(p, "blk.0.ffn_down.weight"), .q5_K)
        XCTAssertEqual(type(p, "blk.3.attn_v.weight"), .q5_K)
        XCTAssertEqual(type(p, "blk.4.attn_v.weight"), .q4_K)
        // F16/BF16 presets convert every quantizable matrix, keep 1-D tensors
        p = try plan(.F16, t, facts: f)
        XCTAssertEqual(type(p, "output.weight"), .f16)
        XCTAssertEqual(type(p, "output_norm.weight"), .f32)
        // gqa >= 4 upgrades
        p = try plan(.IQ4_XS, t, facts: f)
        XCTAssertEqual(type(p, "blk.2.attn_v.weight"), .q5_K)
        XCTAssertEqual(type(p, "blk.0.ffn_down.weight"), .q5_K)
        XCTAssertEqual(type(p, "blk.1.ffn_down.weight"), .iq4_xs)
    }

    func testMoEAndMXFP4() throws {
        var t = [PlanInput(name: "token_embd.weight", shape: [512, 100], type: .bf16),
                 PlanInput(name: "output.weight", shape: [512, 100], type: .bf16)]
        for l in 0..<2 {
            t += [PlanInput(name: "blk.\(l).ffn_down_exps.weight", shape: [256, 512, 8], type: .bf16),
                  PlanInput(name: "blk.\(l).ffn_gate_inp.weight", shape: [512, 8], type: .f32),
                  PlanInput(name: "blk.\(l).attn_v.weight", shape: [512, 128], type: .bf16),
                  PlanInput(name: "blk.\(l).attn_k.weight", shape: [512, 128], type: .bf16)]
        }
        let f = ModelFacts(arch: "llama", nLayer: 2, nHead: 8, nHeadKV: 2, nExpert: 8)
        let p = try plan(.MXFP4_MOE, t, facts: f)
        XCTAssertEqual(type(p, "blk.0.ffn_down_exps.weight"), .mxfp4)
        XCTAssertEqual(type(p, "blk.0.attn_v.weight"), .q8_0)
        XCTAssertEqual(type(p, "blk.0.ffn_gate_inp.weight"), .f32)
        XCTAssertEqual(type(p, "output.weight"), .q8_0)
        let q = try plan(.Q4_K_M, t, facts: f)
        XCTAssertEqual(type(q, "blk.0.attn_v.weight"), .q8_0)
        XCTAssertEqual(type(q, "blk.0.attn_k.weight"), .q8_0)
        XCTAssertEqual(type(q, "blk.1.ffn_down_exps.weight"), .q6_K)  // layer from the name: 1 >= 7*2/8
    }

    func testJSON() throws {
        let p = try plan(.Q4_K_M)
        let j = try JSONValue.parse(p.json().serialized())
        XCTAssertEqual(j["tensors"]?.arrayValue?.count, p.tensors.count)
        XCTAssertEqual(j["file_type"]?.intValue, 15)
        XCTAssertEqual(j["tensors"]?.arrayValue?[1]["type"]?.stringValue, "q8_0")
    }
}
