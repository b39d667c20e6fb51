import Foundation
import SmeltFormats
import SmeltModel
import SmeltTokenizer

/// `--outtype`: the type of the converted matrices (1-D tensors and norms stay F32).
public enum OutType: String, CaseIterable, Sendable {
    case f32, f16, bf16, q8_0, tq1_0, tq2_0, auto

    /// llama.cpp's `LlamaFileType` value written as `general.file_type`.
    var fileType: UInt32 {
        switch self {
        case .f32: return 0
        case .f16, .auto: return 1
        case .bf16: return 32
        case .q8_0: return 7
        case .tq1_0: return 36
        case .tq2_0: return 37
        }
    }
    var ggmlType: GGMLType {
        switch self {
        case .f32: return .f32
        case .f16, .auto: return .f16
        case .bf16: return .bf16
        case .q8_0: return .q8_0
        case .tq1_0: return .tq1_0
        case .tq2_0: return .tq2_0
        }
    }
}

/// `general.license`, `general.license.name`, `general.license.link` values (from `smelt license`'s lineage).
public struct LicenseKeys: Sendable, Equatable {
    public var license: String?
    public var name: String?
    public var link: String?
    public init(license: String?, name: String?, link: String?) { self.license = license; self.name = name; self.link = link }
}

/// Where a converted tensor's values come from.
public enum TensorOrigin: Sendable {
    /// A checkpoint tensor, its rows optionally reordered (`rowMap[i]` is the source row of row `i`).
    case checkpoint(SafetensorsTensor, rowMap: [Int]?, addOne: Bool, scale: FP8Scale? = nil)
    /// Values computed by the converter (e.g. llama 3 `rope_freqs`).
    case values([Float])
    /// A block's per-expert 2-D checkpoint tensors stacked into one 3-D tensor, expert `e`
    /// being the `e`-th slice. Rows are read from one expert at a time: the 3-D tensor is
    /// never assembled in memory.
    case experts([SafetensorsTensor])
}

/// The scales of an FP8 checkpoint tensor (`quantization_config.quant_method: fp8`,
/// `<name>_scale_inv` tensors): `weight.float() * scale`, the scale repeated over
/// blocks of `weight_block_size` (or per tensor / per row without a block size).
public struct FP8Scale: Sendable {
    let values: [Float]
    let blockRows: Int, blockCols: Int, scaleCols: Int

    init(scale: SafetensorsTensor, weightShape: [Int], blockSize: [Int]?) throws {
        values = scale.floats()
        let rows = weightShape.first ?? 1
        if let bs = blockSize, bs.count == 2 {
            blockRows = bs[0]; blockCols = bs[1]
            scaleCols = scale.shape.count == 2 ? scale.shape[1] : 1
            let cols = weightShape.count == 2 ? weightShape[1] : 1
            guard values.count == ((rows + bs[0] - 1) / bs[0]) * ((cols + bs[1] - 1) / bs[1]) else {
                throw SmeltError("tensor '\(scale.name)': \(values.count) scales do not cover a \(weightShape) weight in \(bs) blocks")
            }
        } else if values.count == 1 {
            blockRows = Int.max; blockCols = Int.max; scaleCols = 1
        } else if values.count == rows {
            blockRows = 1; blockCols = Int.max; scaleCols = 1
        } else {
            throw SmeltError("tensor '\(scale.name)': cannot apply \(values.count) scales to a \(weightShape) weight")
        }
    }

    func apply(row: Int, _ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let base = (blockRows == Int.max ? 0 : row / blockRows) * scaleCols
        if blockCols == Int.max {
            let s = values[base]
            for i in 0..<n { x[i] = x[i] * s }
        } else {
            for i in 0..<n { x[i] = x[i] * values[base + i / blockCols] }
        }
    }
}

/// One tensor of the output: GGUF name, ggml-order shape, type, and its origin.
public struct PlannedTensor: Sendable {
    public let name: String
    /// HF name (or a description of generated values).
    public let sourceName: String
    /// ggml order: `shape[0]` is the row length.
    public let shape: [Int]
    public let type: GGMLType
    public let origin: TensorOrigin

    public var rowLength: Int { shape.first ?? 1 }
    public var rowCount: Int { shape.dropFirst().reduce(1, *) }
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { GGUF.byteCount(shape: shape, type: type)! }
    /// The file the values come from (for error messages).
    public var sourceFile: String {
        if case let .checkpoint(t, _, _, _) = origin { return t.url.path }
        return "(generated)"
    }
    /// The checkpoint row that output row `r` comes from.
    public func sourceRow(_ r: Int) -> Int {
        if case let .checkpoint(_, rowMap?, _, _) = origin, r < rowMap.count { return rowMap[r] }
        return r
    }

    /// Fills `count` rows starting at `row` as float32 (the values llama.cpp's
    /// converter would pass to its quantizer: transforms applied).
    public func readRows(_ row: Int, _ count: Int, into dst: UnsafeMutablePointer<Float>) {
        let n = rowLength
        switch origin {
        case let .values(v):
            v.withUnsafeBufferPointer { dst.update(from: $0.baseAddress! + row * n, count: count * n) }
        case let .experts(slices):
            let perExpert = shape.count > 1 ? shape[1] : 1
            var r = row, done = 0
            while done < count {
                let e = r / perExpert, inner = r % perExpert
                let take = min(count - done, perExpert - inner)
                slices[e].readFloats(from: inner * n, count: take * n, into: dst + done * n)
                r += take; done += take
            }
        case let .checkpoint(t, rowMap, addOne, scale):
            if let rowMap {
                for r in 0..<count { t.readFloats(from: rowMap[row + r] * n, count: n, into: dst + r * n) }
            } else {
                t.readFloats(from: row * n, count: count * n, into: dst)
            }
            if let scale {
                // scales belong to source rows (llama.cpp dequantizes before permuting)
                for r in 0..<count { scale.apply(row: rowMap?[row + r] ?? (row + r), dst + r * n, n) }
            }
            if addOne {
                let total = count * n
                if t.dtype == .F16 && scale == nil {  // torch adds in float16 for float16 tensors
                    for i in 0..<total { dst[i] = Float(Float16(dst[i]) + Float16(1)) }
                } else {
                    for i in 0..<total { dst[i] = dst[i] + 1 }
                }
            }
        }
    }
}

/// Everything a conversion will write, decided before any tensor data is read:
/// the metadata in llama.cpp's key order and the tensors in its order.
public struct ConversionPlan: Sendable {
    public let architecture: String
    public let metadata: GGUFMetadata
    public let tensors: [PlannedTensor]
    public let outType: OutType
    /// The checkpoint (kept alive for the memory maps).
    public let checkpoint: SafetensorsCheckpoint

    /// Plans the conversion of an HF checkpoint folder.
    /// - Parameters:
    ///   - pre: forces `tokenizer.ggml.pre` (BPE) instead of detecting it by hash.
    ///   - name: overrides `general.name`.
    /// True for `--vocab-only`: metadata only, no tensors (convert_hf_to_gguf.py `write_vocab`).
    public let vocabOnly: Bool

    /// `license`: `general.license` / `.name` / `.link` to write when the model card declares no
    /// license (from the lineage `smelt license` works out); a declared license is written as
    /// llama.cpp writes it.
    public init(folder: URL, outType requested: OutType, pre: String? = nil, name: String? = nil, vocabOnly: Bool = false,
                license: LicenseKeys? = nil) throws {
        self.vocabOnly = vocabOnly
        let config = try HFConfig(folder: folder)
        let arch = try Architecture.find(hfClass: config.architecture)
        architecture = arch.name
        let ck = try SafetensorsCheckpoint(folder: folder)
        checkpoint = ck

        // Source order: shards in name order, tensors by name within a shard (gguf-py SafetensorsLocal).
        var ordered: [SafetensorsTensor] = []
        var seen = Set<String>()
        for f in ck.files {
            for t in f.tensors.sorted(by: { $0.name < $1.name }) where !seen.contains(t.name) {
                seen.insert(t.name); ordered.append(t)
            }
        }
        // FP8 checkpoints: weights are multiplied by their `_scale_inv` tensors, which are dropped.
        var scales: [String: SafetensorsTensor] = [:]
        if config["quantization_config"]?["quant_method"]?.stringValue == "fp8" {
            for t in ordered where t.name.hasSuffix("_scale_inv") { scales[String(t.name.dropLast("_scale_inv".count))] = t }
            ordered.removeAll { $0.name.hasSuffix("_scale_inv") || $0.name.hasSuffix(".activation_scale") }
        }
        let blockSize = config["quantization_config"]?["weight_block_size"]?.arrayValue?.compactMap(\.intValue)
        ordered = ordered.filter { t in
            !arch.skip.contains(t.name) && !t.name.hasSuffix(".attention.masked_bias") && !t.name.hasSuffix(".attention.bias")
                && !t.name.hasSuffix(".rotary_emb.inv_freq")
        }

        // --outtype auto: the first matrix's dtype decides (bf16 → bf16, f16 → f16, otherwise f16).
        var outType = requested
        if requested == .auto {
            let first = ordered.first { $0.shape.count >= 2 }
            outType = first?.dtype == .BF16 ? .bf16 : .f16
        }
        self.outType = outType

        let nHead = config.int("n_heads", "num_attention_heads") ?? 0
        let nKV = config.int("n_kv_heads", "num_key_value_heads") ?? nHead
        let vocabReal = arch.tensors.contains(where: { $0.transforms.contains(.truncateToVocab) })
            ? try Self.realVocabSize(folder: folder) : nil

        var planned: [PlannedTensor] = []
        for extra in try Self.extraTensors(arch: arch, config: config) { planned.append(extra) }
        // Per-expert tensors wait until every expert tensor of their block has been read, then
        // the block's stacked tensors are emitted in the table's order (llama.cpp's modify_tensors).
        let expertRules = arch.expertRules
        let nExpert = config.find(Architecture.expertCountKeys)?.intValue ?? 0
        var pendingExperts: [Int: [String: [Int: SafetensorsTensor]]] = [:]
        var pendingCount: [Int: Int] = [:]
        for t in ordered {
            // A fused expert tensor gives every expert's slice of one or more stacked tensors at once
            // (views of its rows, so the stacking below streams it as it streams per-expert tensors).
            var parts: [(name: String, expert: Int, slice: SafetensorsTensor)] = []
            var fusedBlock: Int? = nil
            if let (names, block) = arch.mapFused(t.name.replacingOccurrences(of: "language_model.", with: "")) {
                guard nExpert > 0, t.shape.count == 3, t.shape[0] == nExpert, t.shape[1] % names.count == 0 else {
                    throw SmeltError("\(t.url.lastPathComponent): fused expert tensor '\(t.name)' has shape \(t.shape), expected [\(nExpert) experts, \(names.count) × rows, columns]")
                }
                guard scales[t.name] == nil else {
                    throw SmeltError("\(t.url.lastPathComponent): FP8 expert tensor '\(t.name)' is not supported (per-expert scales)")
                }
                let rows = t.shape[1] / names.count
                for (p, name) in names.enumerated() {
                    for e in 0..<nExpert {
                        guard let v = t.matrix(e, rows: (p * rows)..<((p + 1) * rows)) else {
                            throw SmeltError("\(t.url.lastPathComponent): fused expert tensor '\(t.name)': cannot take expert \(e)")
                        }
                        parts.append((name, e, v))
                    }
                }
                fusedBlock = block
            } else if let m = arch.mapExpert(t.name.replacingOccurrences(of: "language_model.", with: "")), let expert = m.expert, let block = m.block {
                guard nExpert > 0, expert < nExpert else {
                    throw SmeltError("\(t.url.lastPathComponent): tensor '\(t.name)' names expert \(expert) but config.json has \(nExpert) experts")
                }
                guard t.shape.count == 2 else {
                    throw SmeltError("\(t.url.lastPathComponent): expert tensor '\(t.name)' has shape \(t.shape), expected 2-D")
                }
                guard scales[t.name] == nil else {
                    throw SmeltError("\(t.url.lastPathComponent): FP8 expert tensor '\(t.name)' is not supported (per-expert scales)")
                }
                parts = [(m.name, expert, t)]
                fusedBlock = block
            }
            if let block = fusedBlock {
                for (gname, expert, slice) in parts {
                    if pendingExperts[block, default: [:]][gname, default: [:]].updateValue(slice, forKey: expert) != nil {
                        throw SmeltError("\(t.url.lastPathComponent): expert \(expert) of '\(gname)' (block \(block)) is given twice ('\(t.name)')")
                    }
                    pendingCount[block, default: 0] += 1
                }
                if pendingCount[block] == nExpert * expertRules.count {
                    for rule in expertRules {
                        let name = rule.gguf.replacingOccurrences(of: "{bid}", with: String(block)) + (t.name.hasSuffix(".bias") ? ".bias" : ".weight")
                        guard let group = pendingExperts[block]?[name], group.count == nExpert else {
                            throw SmeltError("\(t.url.lastPathComponent): block \(block) lacks experts for '\(name)'")
                        }
                        let slices = (0..<nExpert).compactMap { group[$0] }
                        let s0 = slices[0].shape
                        if let bad = slices.first(where: { $0.shape != s0 }) {
                            throw SmeltError("\(bad.url.lastPathComponent): expert tensor '\(bad.name)' has shape \(bad.shape), expert 0 has \(s0)")
                        }
                        let shape = [s0[1], s0[0], nExpert]
                        let type = Self.outputType(name: name, nDims: 3, rowLength: shape[0], outType: outType)
                        planned.append(PlannedTensor(name: name, sourceName: slices[0].name, shape: shape, type: type, origin: .experts(slices)))
                    }
                    pendingExperts[block] = nil; pendingCount[block] = nil
                }
                continue
            }
            guard let (gname, transforms, _, _) = arch.mapExpert(t.name.replacingOccurrences(of: "language_model.", with: "")) else {
                throw SmeltError("\(t.url.lastPathComponent): cannot map tensor '\(t.name)' to a \(arch.name) GGUF tensor")
            }
            var hfShape = t.shape
            var rowMap: [Int]? = nil
            if transforms.contains(.permuteQ) || transforms.contains(.permuteK) {
                let heads = transforms.contains(.permuteK) && nKV != nHead ? nKV : nHead
                guard let rows = hfShape.first, let map = Self.permutation(rows: rows, heads: heads) else {
                    throw SmeltError("\(t.url.path): tensor '\(t.name)': shape \(hfShape) cannot be split into \(heads) heads (config.json num_attention_heads / num_key_value_heads)")
                }
                rowMap = map
            }
            if transforms.contains(.truncateToVocab), let v = vocabReal, hfShape.count == 2, hfShape[0] > v {
                hfShape[0] = v
            }
            let shape = Array(hfShape.reversed())
            let type = Self.outputType(name: gname, nDims: hfShape.count, rowLength: shape.first ?? 1, outType: outType)
            let scale = try scales[t.name].map { try FP8Scale(scale: $0, weightShape: t.shape, blockSize: blockSize) }
            planned.append(PlannedTensor(name: gname, sourceName: t.name, shape: shape, type: type,
                                         origin: .checkpoint(t, rowMap: rowMap, addOne: transforms.contains(.addOne), scale: scale)))
        }
        if let (block, groups) = pendingExperts.min(by: { $0.key < $1.key }) {
            let have = groups.values.reduce(0) { $0 + $1.count }
            throw SmeltError("\(folder.lastPathComponent): block \(block) has \(have) expert tensors, expected \(nExpert * expertRules.count) (\(nExpert) experts)")
        }
        var names = Set<String>()
        for p in planned where !names.insert(p.name).inserted {
            throw SmeltError("two checkpoint tensors map to '\(p.name)'")
        }
        // --vocab-only: no tensors are added, so gguf-py counts 0 parameters (no size label).
        tensors = vocabOnly ? [] : planned

        // Metadata in gguf-py's order.
        var md = GGUFMetadata()
        md["general.architecture"] = .string(arch.name)
        md["general.type"] = .string("model")
        let totalParams = tensors.reduce(0) { $0 + $1.elementCount }
        var card = try ModelCard.load(folder: folder, config: config.json, totalParams: totalParams, nameOverride: name)
        if card.sizeLabel == nil && totalParams > 0 {
            // gguf-py get_total_parameter_count: expert tensors count once per expert
            let experts = tensors.filter { $0.name.contains("_exps.") && $0.shape.count >= 3 }
            if experts.isEmpty {
                card.sizeLabel = ModelCard.sizeLabel(totalParams: totalParams)
            } else {
                let expertParams = experts.reduce(0) { $0 + $1.elementCount / max($1.shape[2], 1) }
                let sharedParams = totalParams - experts.reduce(0) { $0 + $1.elementCount }
                let count = experts.reduce(0) { $0 + $1.shape[2] } / experts.count
                card.sizeLabel = "\(count)x" + ModelCard.sizeLabel(totalParams: sharedParams + expertParams)
            }
        }
        if card.name == nil { card.name = folder.standardizedFileURL.lastPathComponent }
        if card.license == nil, let l = license, let id = l.license {
            card.license = id; card.licenseName = l.name; card.licenseLink = l.link
        }
        for (k, v) in card.ggufKeys() { md[k] = v }
        try HParamWriter(arch: arch, config: config, fileType: outType.fileType).write(into: &md)
        // the keys every evaluator of these architectures divides by or loops over
        for (key, names) in [("block_count", "num_hidden_layers"), ("embedding_length", "hidden_size"),
                             ("attention.head_count", "num_attention_heads"), ("feed_forward_length", "intermediate_size")]
        where md["\(arch.name).\(key)"] == nil {
            throw SmeltError("\(folder.appendingPathComponent("config.json").path): missing \(names) (needed for \(arch.name).\(key))")
        }
        md["general.quantization_version"] = .uint32(2)
        let recipe = Self.vocabRecipe(arch.vocab)
        for (k, v) in try HFVocabConverter.metadata(modelDir: folder, recipe: recipe, forcedPre: pre) {
            md[k] = v.gguf
        }
        metadata = md
    }

    static func vocabRecipe(_ s: VocabStyle) -> HFVocabConverter.Recipe {
        switch s {
        case .llama: return .llama
        case .sentencePieceOrBPE: return .sentencePieceOrGPT2
        case .gemma2: return .gemma2
        case .gemma3: return .gemma3
        case .phi3: return .phi3
        }
    }

    /// llama.cpp's per-tensor type rule (convert_hf_to_gguf.py `prepare_tensors`).
    static func outputType(name: String, nDims: Int, rowLength: Int, outType: OutType) -> GGMLType {
        if nDims <= 1 || name.hasSuffix("_norm.weight") { return .f32 }
        if Architecture.alwaysF32.contains(where: { name.hasSuffix(".\($0).weight") }) { return .f32 }
        if !name.hasSuffix(".weight") { return .f32 }
        let t = outType.ggmlType
        // ternary outtypes keep the token embeddings and the output head F16 ("TODO: use Q4_K and Q6_K")
        if t == .tq1_0 || t == .tq2_0,
           ["token_embd.weight", "per_layer_token_embd.weight", "output.weight"].contains(name) { return .f16 }
        // gguf-py cannot quantize a row that is not a whole number of blocks: F16 instead.
        if t.blockSize > 1 && rowLength % t.blockSize != 0 { return .f16 }
        return t
    }

    /// The row order of `LlamaModel.permute`: output row `i` comes from source row `map[i]`.
    /// Nil when the rows cannot be split into `heads` heads of an even size.
    public static func permutation(rows: Int, heads: Int) -> [Int]? {
        guard heads > 0, rows >= 0, heads <= rows / 2, rows % heads == 0, (rows / heads) % 2 == 0 else { return nil }
        let per = rows / heads, half = per / 2
        var map = [Int](repeating: 0, count: rows)
        for h in 0..<heads {
            for i in 0..<half {
                for t in 0..<2 { map[h * per + i * 2 + t] = h * per + t * half + i }
            }
        }
        return map
    }

    /// Gemma 3: the tokenizer's real vocabulary size (embedding rows beyond it are dropped).
    static func realVocabSize(folder: URL) throws -> Int {
        let spm = folder.appendingPathComponent("tokenizer.model")
        if FileManager.default.fileExists(atPath: spm.path) {
            return try SentencePieceModel(contentsOf: spm).pieces.count
        }
        let tj = try JSONValue.parse(contentsOf: folder.appendingPathComponent("tokenizer.json"))
        return (tj["model"]?["vocab"]?.objectValue?.count ?? 0) + (tj["added_tokens"]?.arrayValue?.count ?? 0)
    }

    /// Tensors the converter computes (llama 3 rope frequency factors).
    static func extraTensors(arch: Architecture, config: HFConfig) throws -> [PlannedTensor] {
        guard arch.llama3RopeFreqs else { return [] }
        let rope = JSONValue.object(HParamWriter.ropeParameters(config))
        let params = rope["full_attention"] ?? rope
        guard params["rope_type"]?.stringValue?.lowercased() == "llama3" else { return [] }
        let base = Float(params["rope_theta"]?.doubleValue ?? 10000)
        let dim = try config.int("head_dim") ?? (config.requireInt("hidden_size") / config.requireInt("num_attention_heads"))
        let factor = Float(params["factor"]?.doubleValue ?? 8)
        let lowF = Float(params["low_freq_factor"]?.doubleValue ?? 1)
        let highF = Float(params["high_freq_factor"]?.doubleValue ?? 4)
        let oldCtx = Float(params["original_max_position_embeddings"]?.doubleValue ?? 8192)
        let lowWave = oldCtx / lowF, highWave = oldCtx / highF
        var out: [Float] = []
        for k in stride(from: 0, to: dim, by: 2) {
            let freq = 1 / powf(base, Float(k) / Float(dim))
            let wavelen = 2 * Float.pi / freq
            if wavelen < highWave { out.append(1) } else if wavelen > lowWave { out.append(factor) } else {
                let smooth = (oldCtx / wavelen - lowF) / (highF - lowF)
                out.append(1 / ((1 - smooth) / factor + smooth))
            }
        }
        return [PlannedTensor(name: "rope_freqs.weight", sourceName: "(llama3 rope factors)", shape: [out.count], type: .f32, origin: .values(out))]
    }
}

extension MetaValue {
    /// The GGUF value of the same type.
    var gguf: GGUFValue {
        switch self {
        case let .string(s): return .string(s)
        case let .uint32(v): return .uint32(v)
        case let .int32(v): return .int32(v)
        case let .float32(v): return .float32(v)
        case let .bool(v): return .bool(v)
        case let .stringArray(a): return .strings(a)
        case let .int32Array(a): return .int32s(a)
        case let .float32Array(a): return .float32s(a)
        }
    }
}
