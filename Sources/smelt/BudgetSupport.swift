import Foundation
import SmeltFormats
import SmeltQuantize

/// Budget mode of `smelt quantize` (--target-bpw / --target-size): argument handling.
enum BudgetCommandSupport {
    static func candidateTypes(_ s: String?) throws -> [GGMLType] {
        guard let s else { return Sensitivity.defaultCandidates }
        return try s.split(separator: ",").map {
            let n = $0.trimmingCharacters(in: .whitespaces)
            guard let t = GGMLType(name: n) else { throw SmeltError("invalid candidate type '\(n)'") }
            return t
        }
    }

    /// The recipe file written next to the output: `OUT` without `.gguf`, plus `.recipe.yaml`.
    static func recipeURL(output: String) -> URL {
        var base = output
        if base.hasSuffix(".gguf") { base = String(base.dropLast(5)) }
        return URL(fileURLWithPath: base + ".recipe.yaml")
    }

    static func makeRecipe(source: TensorSource, input: String, output: String, request: QuantizeRequest,
                           targetBpw: Double?, targetSize: String?, candidates: String?, cache: String?,
                           dryRun: Bool, loss: String = "weighted", useCache: Bool = true) throws -> Budget.Outcome {
        guard let lossModel = LossModel(rawValue: loss.lowercased()) else {
            throw UsageError(Suggestions.unknown("--loss", loss, among: LossModel.allCases.map(\.rawValue)))
        }
        let url = recipeURL(output: output)
        let bar = ProgressBar("sensitivity", total: 1, unit: .items("measurements"))
        let name = url.deletingPathExtension().deletingPathExtension().lastPathComponent
        let o = try Budget.makeRecipe(source: source, request: request, targetBpw: targetBpw,
                                      targetFileSize: try targetSize.map(Budget.parseSize),
                                      candidates: try candidateTypes(candidates),
                                      cacheFolder: cache.map { URL(fileURLWithPath: $0) } ?? Sensitivity.defaultCacheFolder,
                                      recipeURL: url, name: name, writeRecipe: false, dryRun: dryRun,
                                      modelName: URL(fileURLWithPath: input).lastPathComponent, loss: lossModel, useCache: useCache,
                                      progress: { bar.set($0, of: $1) },
                                      log: { bar.finish(); FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        FileHandle.standardError.write(Data(String(format: "budget: predicted loss %.4g, %.2f MiB of tensors; %@\n",
                                                   o.predictedLoss, Double(o.tensorBytes) / 1048576,
                                                   dryRun ? "dry run: no recipe written" : "recipe \(o.recipeURL.path) written once the model is").utf8))
        return o
    }
}
