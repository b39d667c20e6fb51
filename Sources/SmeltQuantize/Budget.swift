import Foundation
import SmeltFormats

/// How budget mode predicts the loss of a plan (`--loss`), chosen by the user, never by the cache's contents.
public enum LossModel: String, CaseIterable, Sendable {
    /// The relative importance-weighted quantization error per tensor (default).
    case weightedError = "weighted"
    /// That error scaled per tensor group by the KL-divergence `smelt sensitivity -f` measured.
    case kld
}

/// Budget mode: a type per tensor that minimises the predicted loss under a size budget
/// (a multiple-choice knapsack, docs/RECIPES.md "Budget mode").
public enum Budget {
    /// One tensor's options: (type, bytes, predicted loss).
    public struct Item: Sendable {
        public var name: String
        public var options: [(type: GGMLType, bytes: Int, loss: Double)]
        public init(name: String, options: [(type: GGMLType, bytes: Int, loss: Double)]) { self.name = name; self.options = options }
    }

    /// The sensitivity group of a tensor: its role and layer band (first eighth / middle /
    /// last eighth of the layers), e.g. `ffn_down.first`; `token_embd`, `output` alone.
    public static func group(of name: String, nLayer: Int) -> String {
        let role = RecipeRoles.role(of: name)
        guard let l = LlamaPresets.layerNumber(name), nLayer > 0 else { return role }
        let band = l < nLayer / 8 ? "first" : l >= 7 * nLayer / 8 ? "last" : "middle"
        return "\(role).\(band)"
    }

    /// The predicted loss of each (tensor, type): `rows · relErr` (the relative importance-weighted
    /// error summed over output rows, so it adds up when a tensor is split by rows), scaled per
    /// group by measured KLD when `groupKLD` has the group
    /// (loss = KLD_g(ref) · rows·relErr(t, type) / Σ_{t'∈g} rows·relErr(t', ref)).
    public static func items(table: SensitivityTable, tensors: [(name: String, shape: [Int])], candidates: [GGMLType],
                             nLayer: Int, groupKLD: [String: [GGMLType: Double]] = [:]) -> [Item] {
        var groupErr: [String: [GGMLType: Double]] = [:]
        for t in tensors {
            let g = group(of: t.name, nLayer: nLayer)
            let rows = Double(t.shape.dropFirst().reduce(1, *))
            for (ty, e) in table.entries[t.name] ?? [:] { groupErr[g, default: [:]][ty, default: 0] += rows * e.relativeError }
        }
        // Per-group scale from measured KLD; groups without a measurement get the median scale
        // of the measured ones (1 when none is measured).
        var scales: [String: Double] = [:]
        for (g, k) in groupKLD {
            if let (ref, kld) = k.min(by: { $0.key.rawValue < $1.key.rawValue }), let ge = groupErr[g]?[ref], ge > 0 {
                scales[g] = kld / ge
            }
        }
        let sorted = scales.values.sorted()
        let median = sorted.isEmpty ? 1.0 : sorted[sorted.count / 2]
        var out: [Item] = []
        for t in tensors {
            let g = group(of: t.name, nLayer: nLayer)
            let scale = scales[g] ?? median
            var opts: [(type: GGMLType, bytes: Int, loss: Double)] = []
            for ty in candidates {
                guard let e = table[t.name, ty] else { continue }
                opts.append((ty, e.bytes, scale * Double(t.shape.dropFirst().reduce(1, *)) * e.relativeError))
            }
            out.append(Item(name: t.name, options: opts))
        }
        return out
    }

    /// Chooses one option per item with Σ bytes ≤ `budget`, minimising Σ loss: every item
    /// starts at its smallest option; upgrades along each item's lower convex hull
    /// (loss against bytes) are taken greedily by loss saved per byte while they fit
    /// (the Lagrangian optimum at every hull breakpoint); a last pass spends what is left
    /// on the best single upgrades that still fit. Returns the option index per item.
    public static func solve(_ items: [Item], budget: Int) throws -> [Int] {
        var choice: [Int] = []
        var hulls: [[Int]] = []
        var used = 0
        for it in items {
            guard !it.options.isEmpty else { throw SmeltError("tensor \(it.name): no candidate type fits its row length") }
            let order = it.options.indices.sorted { (it.options[$0].bytes, it.options[$0].loss) < (it.options[$1].bytes, it.options[$1].loss) }
            // Pareto front: strictly decreasing loss as bytes grow.
            var front: [Int] = []
            for k in order where front.isEmpty || it.options[k].loss < it.options[front.last!].loss {
                if let l = front.last, it.options[l].bytes == it.options[k].bytes { front.removeLast() }
                front.append(k)
            }
            // Lower convex hull of the front.
            var hull: [Int] = []
            for k in front {
                while hull.count >= 2 {
                    let a = it.options[hull[hull.count - 2]], b = it.options[hull[hull.count - 1]], c = it.options[k]
                    let s1 = (a.loss - b.loss) / Double(b.bytes - a.bytes), s2 = (b.loss - c.loss) / Double(c.bytes - b.bytes)
                    if s2 >= s1 { hull.removeLast() } else { break }
                }
                hull.append(k)
            }
            hulls.append(hull)
            choice.append(hull[0])
            used += it.options[hull[0]].bytes
        }
        guard used <= budget else {
            throw SmeltError(String(format: "the budget (%.2f MiB) is below the smallest possible plan (%.2f MiB) with these candidates",
                                    Double(budget) / 1048576, Double(used) / 1048576))
        }
        var pos = [Int](repeating: 0, count: items.count)
        func gain(_ i: Int) -> Double? {
            let h = hulls[i]
            guard pos[i] + 1 < h.count else { return nil }
            let a = items[i].options[h[pos[i]]], b = items[i].options[h[pos[i] + 1]]
            return (a.loss - b.loss) / Double(max(1, b.bytes - a.bytes))
        }
        var active = Set(items.indices)
        while true {
            var best: (Int, Double)? = nil
            for i in active {
                guard let g = gain(i) else { continue }
                if best == nil || g > best!.1 || (g == best!.1 && i < best!.0) { best = (i, g) }
            }
            guard let (i, _) = best else { break }
            let h = hulls[i]
            let delta = items[i].options[h[pos[i] + 1]].bytes - items[i].options[h[pos[i]]].bytes
            if used + delta <= budget {
                used += delta; pos[i] += 1; choice[i] = h[pos[i]]
            } else {
                active.remove(i)
            }
        }
        // Spend the rest: best loss decrease among all single changes that fit.
        while true {
            var best: (Int, Int, Double)? = nil
            for (i, it) in items.enumerated() {
                let cur = it.options[choice[i]]
                for (k, o) in it.options.enumerated() where o.loss < cur.loss && used - cur.bytes + o.bytes <= budget {
                    let d = cur.loss - o.loss
                    if best == nil || d > best!.2 { best = (i, k, d) }
                }
            }
            guard let (i, k, _) = best else { break }
            used += items[i].options[k].bytes - items[i].options[choice[i]].bytes
            choice[i] = k
        }
        return choice
    }

    /// The chosen plan as a recipe file: one rule per tensor whose type is not the most
    /// common one, with the predicted loss in comments.
    public static func recipeText(name: String, items: [Item], choice: [Int], fileType: LlamaPreset,
                                  header: [String]) -> String {
        var counts: [GGMLType: Int] = [:]
        for (i, it) in items.enumerated() { counts[it.options[choice[i]].type, default: 0] += 1 }
        let def = counts.max { ($0.value, $1.key.rawValue) < ($1.value, $0.key.rawValue) }?.key ?? .q8_0
        var s = header.map { "# " + $0 }.joined(separator: "\n") + "\n"
        s += "name: \(name)\nfile_type: \(fileType.rawValue)\ndefault: \(def.name)\n"
        let rest = items.indices.filter { items[$0].options[choice[$0]].type != def }
        if !rest.isEmpty { s += "rules:\n" }
        for i in rest {
            let o = items[i].options[choice[i]]
            let esc = NSRegularExpression.escapedPattern(for: items[i].name).replacingOccurrences(of: "'", with: "''")
            s += "  - name: '^\(esc)$'\n    type: \(o.type.name)\n"
            s += String(format: "    why: 'budget: predicted loss %.3g, %d bytes'\n", o.loss, o.bytes)
        }
        return s
    }
}

extension Budget {
    /// Parses a size: bytes, or a number with KiB/MiB/GiB (1024) or KB/MB/GB (1000).
    public static func parseSize(_ s: String) throws -> Int {
        let t = s.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1048576), ("GiB", 1073741824), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("B", 1)]
        for (u, m) in units where t.hasSuffix(u) {
            guard let v = Double(t.dropLast(u.count).trimmingCharacters(in: .whitespaces)), v > 0 else { break }
            return Int(v * m)
        }
        if let v = Int(t), v > 0 { return v }
        throw SmeltError("invalid size '\(s)' (bytes, or a number with KiB, MiB, GiB, KB, MB, GB)")
    }

    /// What budget mode did.
    public struct Outcome {
        public var recipe: Recipe
        public var recipeURL: URL
        public var predictedLoss: Double
        public var tensorBytes: Int
        public var measured: Int
        public var calibrated: Bool
        /// The recipe text (written to `recipeURL` by `makeRecipe`, or later by `writeRecipe()`).
        public var text: String

        /// Writes the recipe file (temporary file + rename: an existing file is replaced only now).
        public func writeRecipe() throws {
            let out = try OutputFile(url: recipeURL)
            try out.write(Array(text.utf8))
            try out.commit()
        }
    }

    /// Budget mode end to end: sensitivities (from the cache, measuring what is missing),
    /// the knapsack, and the chosen plan written as a recipe file at `recipeURL` (with `dryRun`
    /// neither the recipe nor newly measured sensitivities are written).
    public static func makeRecipe(source: TensorSource, request: QuantizeRequest, targetBpw: Double?, targetFileSize: Int?,
                                  candidates: [GGMLType], cacheFolder: URL, recipeURL: URL, name: String,
                                  writeRecipe: Bool = true, dryRun: Bool = false, modelName: String? = nil,
                                  loss: LossModel = .weightedError, useCache: Bool = true,
                                  progress: ((Int, Int) -> Void)? = nil,
                                  log: (String) -> Void) throws -> Outcome {
        let modelName = modelName ?? (source as? GGUFTensorSource)?.file.url.lastPathComponent ?? "?"
        var imatrix: PreparedImatrix? = nil
        if let u = request.imatrixURL {
            imatrix = try PreparedImatrix(url: u, include: request.includeWeights, exclude: request.excludeWeights)
        }
        var options = request.options
        options.hasImatrix = !(imatrix?.weights.isEmpty ?? true)
        options.dryRun = true
        options.pure = true
        let facts = ModelFacts(metadata: source.metadata)
        let probe = try LlamaPresets.plan(tensors: source.tensors.map { PlanInput(name: $0.name, shape: $0.shape, type: $0.type) },
                                          model: facts, preset: .Q8_0, options: options)
        let quantizable = probe.tensors.filter { $0.allowsQuantization }
        let fixedBytes = probe.tensors.filter { !$0.allowsQuantization }.reduce(0) { $0 + $1.outputBytes }
        let index = Dictionary(uniqueKeysWithValues: source.tensors.enumerated().map { ($1.name, $0) })

        let elements = probe.elementCount
        // The smallest plan the candidates allow, known before measuring anything: an impossible
        // budget is refused at once.
        let hasImportance = !(imatrix?.weights.isEmpty ?? true)
        var smallest = fixedBytes
        for t in quantizable {
            let sizes = candidates.filter { Sensitivity.fits($0, ncols: t.shape[0], hasImportance: hasImportance) }
                .compactMap { GGUF.byteCount(shape: t.shape, type: $0) }
            guard let m = sizes.min() else { throw SmeltError("tensor \(t.name): no candidate type fits its row length \(t.shape[0])") }
            smallest += m
        }
        let headerEstimate: Int = {
            // The whole file: header (as the input's, plus the provenance text) and alignment padding
            // (a checkpoint folder has no GGUF header yet: its metadata's size instead).
            let inputHeader = (source as? GGUFTensorSource)?.file.dataOffset ?? source.metadata.reduce(0) { $0 + $1.key.utf8.count + 12 + $1.value.encodedSize }
            return inputHeader + 4096 + 2 * (1024 + quantizable.count * 110) + 32 * probe.tensors.count
        }()
        if let b = targetBpw, Double(smallest) * 8 / Double(elements) > b {
            throw SmeltError(String(format: "--target-bpw %.3f cannot be reached: the smallest plan with these candidates is %.3f BPW (%d bytes of tensors)",
                                    b, Double(smallest) * 8 / Double(elements), smallest))
        }
        if targetBpw == nil, let size = targetFileSize, size < smallest + headerEstimate {
            throw SmeltError("--target-size \(size) bytes cannot be reached: the smallest file with these candidates is about \(smallest + headerEstimate) bytes (\(String(format: "%.2f", Double(smallest + headerEstimate) / 1048576)) MiB)")
        }
        if !hasImportance {
            log("warning: budget mode without --imatrix: quantization errors are weighted uniformly, not by activation importance")
        }
        let weights = imatrix?.weights ?? [:]
        let key = try Sensitivity.errorKey(source: source, importance: weights)
        let cacheURL = Sensitivity.cacheURL(folder: cacheFolder, key: key)
        var table = useCache ? Sensitivity.loadCache(cacheURL, key: key) : SensitivityTable(key: key)
        let before = table.entries.values.reduce(0) { $0 + $1.count }
        try Sensitivity.measureErrors(source: source, tensors: quantizable.map { index[$0.name]! }, types: candidates,
                                      importance: weights, table: &table, threads: request.threads,
                                      accelerator: request.accelerator, progress: progress)
        let measured = table.entries.values.reduce(0) { $0 + $1.count } - before
        if measured > 0 && !dryRun && useCache { try Sensitivity.saveCache(table, cacheURL) }  // a dry run writes nothing
        log(useCache ? "sensitivity: \(measured) measured, \(before) from \(cacheURL.path)" : "sensitivity: \(measured) measured (cache off)")
        var groupKLD: [String: [GGMLType: Double]] = [:]
        if loss == .kld {
            // The KLD measurements of exactly this model (by content) and imatrix; one set, or the user chooses.
            let sets = useCache ? table.kldSets(model: try Sensitivity.contentKey(source)) : []
            guard let only = sets.first else {
                throw SmeltError("--loss kld: no KLD measurements for this model and imatrix in \(useCache ? cacheURL.path : "the cache (off)"); run smelt sensitivity MODEL -f TEXT first")
            }
            guard sets.count == 1 else {
                throw SmeltError("--loss kld: \(sets.count) sets of KLD measurements for this model and imatrix in \(cacheURL.path) (\(sets.map(\.measurements.conditions).joined(separator: "; "))); keep one (delete the file and run smelt sensitivity again, or use another --cache folder)")
            }
            groupKLD = only.measurements.groups
            log("KLD measurements: \(only.measurements.conditions)")
        }
        log("loss model: " + (loss == .kld ? "importance-weighted error scaled per group by measured KLD (\(groupKLD.count) groups measured)"
                                             : "relative importance-weighted error per tensor (--loss weighted)"))

        let items = Budget.items(table: table, tensors: quantizable.map { ($0.name, $0.shape) }, candidates: candidates,
                                 nLayer: facts.nLayer, groupKLD: groupKLD)
        var budget: Int
        if let b = targetBpw {
            budget = Int(b * Double(elements) / 8) - fixedBytes
        } else {
            budget = (targetFileSize ?? 0) - headerEstimate - fixedBytes
        }
        let choice = try solve(items, budget: budget)
        let calibrated = loss == .kld
        let loss = zip(items, choice).reduce(0.0) { $0 + $1.0.options[$1.1].loss }
        let bytes = zip(items, choice).reduce(0) { $0 + $1.0.options[$1.1].bytes } + fixedBytes
        var counts: [GGMLType: Int] = [:]
        for (it, c) in zip(items, choice) { counts[it.options[c].type, default: 0] += 1 }
        let def = counts.max { ($0.value, $1.key.rawValue) < ($1.value, $0.key.rawValue) }?.key ?? .q8_0
        let fileType = LlamaPreset.allCases.first { $0.defaultType == def } ?? .Q8_0
        let target = targetBpw.map { String(format: "--target-bpw %.3f", $0) } ?? "--target-size \(targetFileSize ?? 0) bytes"
        let header = [
            "Budget plan written by smelt \(SmeltVersion.string) (smelt quantize \(target)).",
            "Model: \(modelName); imatrix: \(request.imatrixURL?.lastPathComponent ?? "none").",
            "Candidates: \(candidates.map(\.name).joined(separator: ", ")).",
            "Loss model: relative importance-weighted error per tensor" + (calibrated ? ", scaled per group by measured KLD (--loss kld)." : " (--loss weighted)."),
            String(format: "Predicted loss %.4g; tensor data %.2f MiB (%.3f BPW).", loss, Double(bytes) / 1048576, Double(bytes) * 8 / Double(elements)),
            "Review it, then reuse it with: smelt quantize IN OUT --recipe THIS_FILE",
        ]
        let text = recipeText(name: name, items: items, choice: choice, fileType: fileType, header: header)
        let recipe = try Recipe(yaml: text, source: recipeURL.lastPathComponent)
        let outcome = Outcome(recipe: recipe, recipeURL: recipeURL, predictedLoss: loss, tensorBytes: bytes, measured: measured,
                              calibrated: calibrated, text: text)
        if writeRecipe { try outcome.writeRecipe() }
        return outcome
    }
}
