// libFuzzer targets over the readers that need Yams or zstd (`make fuzz`, docs/RELIABILITY.md): compiled
// with FuzzMain.swift and linked to the modules SwiftPM built with coverage and ASan in .build/fuzz/pm.
//   recipe  the YAML recipe (`Recipe(yaml:)`: SafeYAML, rules, regexes, conditions), then its plan
//           for a small two-layer llama tensor list (every `when:` condition evaluated)
//   card    what `smelt license` and `smelt card --source` read of a model: the first byte picks the
//           file — README.md front matter (also read as convert reads it, `ModelCard.load`),
//           mergekit_config.yml, or a GGUF header's `general.*` keys — then the lineage and the report
//   kld     a KL-divergence base file (`--kl-divergence-base`, plain or zstd): header, tokens, and every
//           chunk's rows, each row scored against flat logits as the evaluator scores it
import Foundation
import SmeltFormats
import SmeltModel
import SmeltQuantize
import SmeltLicense
@testable import SmeltEval

/// A scratch folder per process (in memory), emptied after each input.
private let folder = URL(fileURLWithPath: "/dev/shm/smelt-fuzz-dir-\(getpid())")

private func withFolder(_ files: [(String, Data)], _ body: (URL) throws -> Void) {
    try? FileManager.default.removeItem(at: folder)
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    for (name, data) in files { _ = FileManager.default.createFile(atPath: folder.appendingPathComponent(name).path, contents: data) }
    do { try body(folder) } catch is SmeltError {} catch { fatalError("not a SmeltError: \(error)") }
}

/// A llama model of two layers, as `smelt plan` lists it (ggml order shapes).
private let planTensors: [PlanInput] = {
    var t = [PlanInput(name: "token_embd.weight", shape: [256, 512], type: .f16),
             PlanInput(name: "output_norm.weight", shape: [256], type: .f32),
             PlanInput(name: "output.weight", shape: [256, 512], type: .f16)]
    for i in 0..<2 {
        for (n, s) in [("attn_norm", [256]), ("ffn_norm", [256])] { t.append(PlanInput(name: "blk.\(i).\(n).weight", shape: s, type: .f32)) }
        for (n, s) in [("attn_q", [256, 256]), ("attn_k", [256, 128]), ("attn_v", [256, 128]), ("attn_output", [256, 256]),
                       ("ffn_gate", [256, 704]), ("ffn_up", [256, 704]), ("ffn_down", [704, 256])] {
            t.append(PlanInput(name: "blk.\(i).\(n).weight", shape: s, type: .f16))
        }
    }
    return t
}()

/// Runs a pipeline target; false when `target` is not one of them.
func fuzzPipeline(_ target: String, _ data: Data) -> Bool {
    switch target {
    case "recipe":
        guard let text = String(data: data, encoding: .utf8) else { return true }
        withFolder([]) { _ in
            let r = try Recipe(yaml: text, source: "fuzz.yaml")
            var o = QuantizeOptions()
            o.hasImatrix = true
            _ = try r.plan(tensors: planTensors, model: ModelFacts(arch: "llama", nLayer: 2, nHead: 4, nHeadKV: 2), options: o)
            _ = RecipeProvenance.metadata(r)
        }
    case "card":
        guard let kind = data.first else { return true }
        let body = data.dropFirst()
        let name = ["README.md", "mergekit_config.yml", "model.gguf"][Int(kind) % 3]
        withFolder([(name, Data(body))]) { dir in
            if name == "README.md" {
                let card = try ModelCard.load(folder: dir, config: nil, totalParams: 1 << 20)
                _ = card.ggufKeys()
            }
            let target = name == "model.gguf" ? dir.appendingPathComponent(name) : dir
            let report = try LicenseResolver().report(for: target)
            _ = report.text()
            _ = try report.json()
        }
    case "kld":
        withFolder([("base.kld", data)]) { dir in
            let r = try KLDBaseReader(url: dir.appendingPathComponent("base.kld"))
            let scored = KLDBaseFile.scoredPerChunk(context: r.context), stride = KLDBaseFile.rowStride(vocabulary: r.vocabulary)
            guard scored * stride <= 1 << 22 else { return }  // the reader allows more; the fuzzer's inputs are 64 KiB
            var rows = [UInt16](repeating: 0, count: scored * stride)
            let logits = [Float](repeating: 0, count: r.vocabulary)
            var acc = KLDAccumulator()
            for chunk in 0..<r.chunks {
                try rows.withUnsafeMutableBufferPointer { try r.readChunk(into: $0, index: chunk) }
                let first = r.context / 2
                rows.withUnsafeBufferPointer { bp in
                    logits.withUnsafeBufferPointer { lp in
                        for i in 0..<scored {
                            _ = acc.add(logits: lp.baseAddress!, count: r.vocabulary, base: bp.baseAddress! + i * stride,
                                        token: Int(r.tokens[chunk * r.context + first + i + 1]))
                        }
                    }
                }
            }
        }
    default:
        return false
    }
    return true
}
