import ArgumentParser
import Foundation
import SmeltFormats
import SmeltQuantize

/// `smelt plan IN --recipe R [--imatrix F]`: the dry run of a recipe.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what a recipe does to a model: per tensor the type, size and the rule (file:line) that chose it.",
        discussion: "R is a recipe file or a built-in recipe (Q4_K_M, Q4_K_XL, …). Nothing is written.")

    @Argument(help: "Input GGUF (a split model by its first shard) or Hugging Face checkpoint folder, as smelt quantize takes.")
    var input: String
    @Option(help: "Checkpoint input: the intermediate type, as smelt quantize --outtype (f32, f16, bf16, auto).")
    var outtype: String = "auto"
    @Option(help: "Recipe file or built-in recipe name.")
    var recipe: String
    @Option(help: "Importance matrix (only whether it exists changes the plan: has_imatrix).")
    var imatrix: String?
    @Flag(help: "Print the plan as JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let r = try BuiltinRecipes.load(recipe)
            let source = try QuantizeCommand.source(input, outtype: outtype, pre: nil)
            var options = QuantizeOptions()
            options.dryRun = true
            if let im = imatrix {
                options.hasImatrix = !(try PreparedImatrix(url: URL(fileURLWithPath: im), include: [], exclude: []).weights.isEmpty)
            }
            let plan = try r.plan(tensors: source.tensors.map { PlanInput(name: $0.name, shape: $0.shape, type: $0.type) },
                                  model: ModelFacts(metadata: source.metadata), options: options)
            if json { print(plan.json().serialized(pretty: true)); return }
            print(Self.render(plan, recipe: r))
        }
    }

    static func render(_ plan: QuantPlan, recipe r: Recipe) -> String {
        func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
            s.count >= n ? s : left ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count)
        }
        let nw = min(40, plan.tensors.map { $0.name.count }.max() ?? 4)
        var out = "recipe \(r.name) (\(r.source)), file type \(plan.preset.rawValue)\n"
        out += "\(pad("name", nw))  \(pad("shape", 18))  \(pad("type", 8))  \(pad("bpw", 6, left: true))  \(pad("bytes", 11, left: true))  rule\n"
        var byType: [String: (Int, Int, Int)] = [:]
        for t in plan.tensors {
            let shape = t.shape.map(String.init).joined(separator: "x")
            let bpw = Double(t.outputBytes * 8) / Double(max(1, t.elementCount))
            out += "\(pad(t.name, nw))  \(pad(shape, 18))  \(pad(t.type.name, 8))  \(pad(String(format: "%.2f", bpw), 6, left: true))  \(pad(String(t.outputBytes), 11, left: true))  \(t.reason)\n"
            let c = byType[t.type.name] ?? (0, 0, 0)
            byType[t.type.name] = (c.0 + 1, c.1 + t.outputBytes, c.2 + t.elementCount)
        }
        out += "\nby type:\n"
        for (k, v) in byType.sorted(by: { $0.value.1 > $1.value.1 }) {
            out += String(format: "  %@ %4d tensors %10.2f MiB %6.2f BPW\n", pad(k, 8), v.0, Double(v.1) / 1048576, Double(v.1 * 8) / Double(max(1, v.2)))
        }
        out += String(format: "total: %d tensors, %.2f MiB (%.2f BPW); input %.2f MiB; %d fallback(s)%@\n",
                      plan.tensors.count, Double(plan.outputBytes) / 1048576,
                      Double(plan.outputBytes) * 8 / Double(max(1, plan.elementCount)), Double(plan.inputBytes) / 1048576,
                      plan.fallbackCount, plan.willRequireImatrix ? "; needs an imatrix" : "")
        return out
    }
}
