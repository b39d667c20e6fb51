import Foundation
import XCTest
import SmeltFormats
import SmeltModel
import SmeltTestSupport

final class ArchitectureTableTests: XCTestCase {
    func testMapAndUnmapAreInverse() throws {
        for arch in Architecture.all {
            for rule in arch.tensors {
                for suffix in [".weight", ".bias"] {
                    if rule.stacksExperts {
                        // per-expert tensors: stacked by the converter, no inverse
                        let hf = rule.hf.replacingOccurrences(of: "{bid}", with: "17").replacingOccurrences(of: "{xid}", with: "5") + suffix
                        let m = try XCTUnwrap(arch.mapExpert(hf), "\(arch.name) \(hf)")
                        XCTAssertEqual(m.name, rule.gguf.replacingOccurrences(of: "{bid}", with: "17") + suffix)
                        XCTAssertEqual(m.expert, 5); XCTAssertEqual(m.block, 17)
                        XCTAssertNil(arch.map(hf)); XCTAssertNil(arch.unmap(m.name))
                        continue
                    }
                    let hf = rule.hf.replacingOccurrences(of: "{bid}", with: "17") + suffix
                    let (g, t) = try XCTUnwrap(arch.map(hf), "\(arch.name) \(hf)")
                    XCTAssertEqual(g, rule.gguf.replacingOccurrences(of: "{bid}", with: "17") + suffix)
                    XCTAssertEqual(t, rule.transforms)
                    // several HF names may map to one GGUF tensor (Mixtral's router under transformers 5's
                    // `mlp.gate`): unmap gives the first rule's
                    let first = try XCTUnwrap(arch.tensors.first { !$0.stacksExperts && $0.gguf == rule.gguf })
                    XCTAssertEqual(arch.unmap(g)?.name, first.hf.replacingOccurrences(of: "{bid}", with: "17") + suffix, "\(arch.name) \(g)")
                }
            }
        }
    }

    func testLlamaPermutesQAndKOnly() throws {
        let llama = try Architecture.find(hfClass: "MistralForCausalLM")
        XCTAssertEqual(llama.name, "llama")
        XCTAssertEqual(llama.map("model.layers.3.self_attn.q_proj.weight")?.transforms, [.permuteQ])
        XCTAssertEqual(llama.map("model.layers.3.self_attn.k_proj.weight")?.transforms, [.permuteK])
        XCTAssertEqual(llama.map("model.layers.3.self_attn.v_proj.weight")?.transforms, [])
        XCTAssertNil(llama.map("model.layers.3.self_attn.rotary.weight"))
        let gemma = try Architecture.find(hfClass: "Gemma3ForCausalLM")
        XCTAssertEqual(gemma.map("model.layers.0.self_attn.q_norm.weight")?.transforms, [.addOne])
        XCTAssertEqual(gemma.map("model.embed_tokens.weight")?.transforms, [.truncateToVocab])
    }

    func testUnknownArchitectureListsSupported() {
        XCTAssertThrowsError(try Architecture.find(hfClass: "GPT2LMHeadModel")) { e in
            XCTAssertTrue("\(e)".contains("Qwen3ForCausalLM"), "\(e)")
            XCTAssertTrue("\(e)".contains("Phi3ForCausalLM"), "\(e)")
        }
    }
}

/// gguf-py's naming heuristics, checked against values llama.cpp's converter wrote.
final class ModelCardTests: XCTestCase {
    func testDemoModelNameComponentsAsLlamaCppWroteThem() throws {
        // the demo GGUF was converted by llama.cpp from "smollm2-135M-8k-lc100k-mix1-ep2"
        let c = ModelCard.idComponents("HuggingFaceTB/smollm2-135M-8k-lc100k-mix1-ep2", totalParams: 134_515_008)
        let g = try GGUFFile(url: try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"))
        XCTAssertEqual(ModelCard.idToTitle(c.name!), g.metadata["general.name"]?.stringValue)
        XCTAssertEqual(c.basename, g.metadata["general.basename"]?.stringValue)
        XCTAssertEqual(c.finetune, g.metadata["general.finetune"]?.stringValue)
        XCTAssertEqual(c.sizeLabel, g.metadata["general.size_label"]?.stringValue)
        XCTAssertEqual(c.org.map(ModelCard.idToTitle), g.metadata["general.organization"]?.stringValue)
    }

    func testSizeLabels() {
        XCTAssertEqual(ModelCard.sizeLabel(totalParams: 1_692_928), "1.7M")  // tiny-llama, as in its golden GGUF
        XCTAssertEqual(ModelCard.sizeLabel(totalParams: 134_515_008), "135M")
        XCTAssertEqual(ModelCard.sizeLabel(totalParams: 7_241_732_096), "7.2B")
        XCTAssertEqual(ModelCard.sizeLabel(totalParams: 70_553_706_496), "71B")
    }

    func testFrontMatter() throws {
        let dir = try Fixtures.tempDir(self)
        try """
        ---
        license: llama3.1
        base_model:
        - meta-llama/Llama-3.1-8B-Instruct
        language:
        - en
        - no
        tags: [merge, mergekit]
        ---
        # A model
        """.write(to: dir.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let card = try ModelCard.load(folder: dir, config: nil, totalParams: 8_000_000_000)
        XCTAssertEqual(card.license, "llama3.1")
        XCTAssertEqual(card.languages, ["en", "no"])  // the "Norway problem" is avoided as llama.cpp does
        XCTAssertEqual(card.tags, ["merge", "mergekit"])
        XCTAssertEqual(card.baseModels?.first?["name"], "Llama 3.1 8B Instruct")
        XCTAssertEqual(card.baseModels?.first?["organization"], "Meta Llama")
        XCTAssertEqual(card.baseModels?.first?["repo_url"], "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct")
        let keys = card.ggufKeys().map(\.0)
        XCTAssertEqual(keys.first, "general.name")
        XCTAssertTrue(keys.contains("general.base_model.0.repo_url"))
    }
}
