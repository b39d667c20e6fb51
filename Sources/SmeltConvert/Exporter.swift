import Foundation
import SmeltFormats
import SmeltModel
import SmeltQuant
import SmeltTokenizer

/// What an export wrote.
public struct ExportSummary: Sendable {
    public let folder: URL
    public let files: [String]
    public let tensors: Int
    public let skipped: [String]
    /// What converting the folder back cannot reproduce (e.g. a `--pre` to force), one line each.
    public let notes: [String]
}

/// GGUF → Hugging Face checkpoint folder: every tensor dequantized (any type
/// Smelt can read), llama.cpp's transforms undone (q/k row permutation, Gemma's
/// norm offset), written as safetensors shards with config.json and the
/// tokenizer files. The folder appears only when everything succeeded.
public enum Exporter {
    /// Output element types.
    public enum DType: String, CaseIterable, Sendable {
        case bf16, f16, f32
        var safetensors: SafetensorsDType { self == .bf16 ? .BF16 : self == .f16 ? .F16 : .F32 }
    }

    public static func export(gguf url: URL, to folder: URL, dtype: DType = .bf16, maxShardBytes: Int = 2_000_000_000,
                              progress: Bool = true) throws -> ExportSummary {
        let g = try GGUFFile(url: url)
        guard let archName = g.metadata["general.architecture"]?.stringValue else {
            throw SmeltError("\(url.path): no general.architecture")
        }
        let arch = try Architecture.find(ggufName: archName)
        try HyperparameterLimits.check(g)
        let fm = FileManager.default
        try OutputGuard.checkFolderTarget(folder)
        let parent = folder.deletingLastPathComponent()
        let tmp = parent.appendingPathComponent(".\(folder.lastPathComponent).smelt-\(getpid()).tmp")
        try? fm.removeItem(at: tmp)
        TemporaryFiles.register(tmp)
        defer { TemporaryFiles.unregister(tmp) }
        do { try fm.createDirectory(at: tmp, withIntermediateDirectories: false) } catch {
            throw SmeltError("cannot create \(tmp.path): \(error.localizedDescription)")
        }
        do {
            let s = try write(g, arch: arch, into: tmp, dtype: dtype, maxShardBytes: maxShardBytes, progress: progress)
            do {
                if fm.fileExists(atPath: folder.path) { try fm.removeItem(at: folder) }  // an empty folder (checked above)
                try fm.moveItem(at: tmp, to: folder)
            } catch let e as SmeltError { throw e } catch {
                throw SmeltError("cannot move \(tmp.path) to \(folder.path): \(error.localizedDescription)")
            }
            return ExportSummary(folder: folder, files: s.0, tensors: s.1, skipped: s.2, notes: s.3)
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
    }

    static func int(_ g: GGUFFile, _ key: String) -> Int? { g.metadata[key]?.intValue }
    static func double(_ g: GGUFFile, _ key: String) -> Double? { g.metadata[key]?.doubleValue }

    static func write(_ g: GGUFFile, arch: Architecture, into dir: URL, dtype: DType, maxShardBytes: Int,
                      progress: Bool) throws -> ([String], Int, [String], [String]) {
        let p = arch.name + "."
        let nHead = int(g, p + "attention.head_count") ?? 0
        let nKV = int(g, p + "attention.head_count_kv") ?? nHead

        // Plan: HF names, shapes, inverse transforms.
        // `firstRow`: a stacked expert tensor is written as one HF tensor per expert, expert e
        // being rows e·ne1 ..< (e+1)·ne1 of the GGUF tensor.
        struct Item { let info: GGUFTensorInfo; let hf: String; let hfShape: [Int]; let rowMap: [Int]?; let subOne: Bool; let dtype: DType
                      var firstRow = 0 }
        var items: [Item] = []
        var skipped: [String] = []
        for t in g.tensors {
            if let template = arch.unmapExperts(t.name) {
                guard t.type == .f32 || QuantRegistry.kernel(for: t.type) != nil else {
                    throw SmeltError("tensor '\(t.name)': cannot read type \(t.type)")
                }
                let nExpert = int(g, p + "expert_count") ?? 0
                guard t.shape.count == 3, t.shape[2] == nExpert else {
                    throw SmeltError("\(g.url.path): expert tensor '\(t.name)' has shape \(t.shape), expected [row length, rows, \(p)expert_count = \(nExpert)]")
                }
                let rows = t.shape[1]
                for e in 0..<t.shape[2] {
                    items.append(Item(info: t, hf: template.replacingOccurrences(of: "{xid}", with: String(e)), hfShape: [rows, t.shape[0]],
                                      rowMap: nil, subOne: false, dtype: t.type == .f32 ? .f32 : dtype, firstRow: e * rows))
                }
                continue
            }
            guard let (hf, transforms) = arch.unmap(t.name) else { skipped.append(t.name); continue }
            guard t.type == .f32 || QuantRegistry.kernel(for: t.type) != nil else {
                throw SmeltError("tensor '\(t.name)': cannot read type \(t.type)")
            }
            var rowMap: [Int]? = nil
            if transforms.contains(.permuteQ) || transforms.contains(.permuteK) {
                let heads = transforms.contains(.permuteK) && nKV != nHead ? nKV : nHead
                guard let fwd = ConversionPlan.permutation(rows: t.rowCount, heads: heads) else {
                    throw SmeltError("\(g.url.path): tensor '\(t.name)' (\(t.rowCount) rows) cannot be split into \(heads) heads (metadata \(p)attention.head_count\(heads == nHead ? "" : "_kv"))")
                }
                var inv = [Int](repeating: 0, count: fwd.count)
                for (i, s) in fwd.enumerated() { inv[s] = i }  // HF row s is GGUF row i
                rowMap = inv
            }
            // F32 tensors (norms, biases: llama.cpp keeps them F32) stay F32, so a round trip is lossless
            items.append(Item(info: t, hf: hf, hfShape: Array(t.shape.reversed()), rowMap: rowMap, subOne: transforms.contains(.addOne),
                              dtype: t.type == .f32 ? .f32 : dtype))
        }

        // Shards of at most maxShardBytes.
        var shards: [[Item]] = [[]]
        var size = 0
        for it in items {
            let b = it.hfShape.reduce(it.dtype.safetensors.size, *)
            if size > 0 && size + b > maxShardBytes { shards.append([]); size = 0 }
            shards[shards.count - 1].append(it); size += b
        }
        let n = shards.count
        let names = n == 1 ? ["model.safetensors"] : (1...n).map { String(format: "model-%05d-of-%05d.safetensors", $0, n) }
        let total = items.reduce(0) { $0 + $1.hfShape.reduce($1.dtype.safetensors.size, *) }
        let bar = ProgressBar("export", total: total, enabled: progress)
        var weightMap: [(String, JSONValue)] = []
        for (shard, name) in zip(shards, names) {
            let w = try SafetensorsWriter(url: dir.appendingPathComponent(name),
                                          tensors: shard.map { .init(name: $0.hf, dtype: $0.dtype.safetensors, shape: $0.hfShape) })
            for it in shard {
                let t = it.info
                let rowLen = t.rowLength, rows = it.hfShape.count > 1 ? it.hfShape.dropLast().reduce(1, *) : 1
                let rowBytes = t.type.rowBytes(rowLen)!
                let src = g.data(for: t)
                var f = [Float](repeating: 0, count: rowLen)
                var out = [UInt8](repeating: 0, count: rowLen * it.dtype.safetensors.size)
                for hfRow in 0..<rows {
                    let gRow = it.firstRow + (it.rowMap?[hfRow] ?? hfRow)
                    f.withUnsafeMutableBufferPointer { fp in
                        let s = src.baseAddress! + gRow * rowBytes
                        if t.type == .f32 { memcpy(fp.baseAddress!, s, rowLen * 4) } else {
                            QuantRegistry.kernel(for: t.type)!.dequantizeRow(s, fp.baseAddress!, count: rowLen)
                        }
                        if it.subOne { for i in 0..<rowLen { fp[i] -= 1 } }
                    }
                    out.withUnsafeMutableBytes { op in
                        switch it.dtype {
                        case .f32: f.withUnsafeBytes { op.copyMemory(from: $0) }
                        case .f16: for i in 0..<rowLen { op.storeBytes(of: FloatFormats.floatToHalf(f[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                        case .bf16: for i in 0..<rowLen { op.storeBytes(of: FloatFormats.floatToBF16(f[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                        }
                    }
                    try w.write(out)
                }
                bar.advance(rows * out.count, detail: it.hf)
                g.dropPages(for: t, bytes: (it.firstRow * rowBytes)..<((it.firstRow + rows) * rowBytes))
                weightMap.append((it.hf, .string(name)))
            }
            try w.finish()
        }
        bar.finish()
        var files = names
        if n > 1 {
            let index = JSONValue.object([("metadata", .object([("total_size", .int(Int64(total)))])), ("weight_map", .object(weightMap))])
            try index.serialized(pretty: true).write(to: dir.appendingPathComponent("model.safetensors.index.json"), atomically: false, encoding: .utf8)
            files.append("model.safetensors.index.json")
        }
        let tied = g.tensor(named: "output.weight") == nil
        let vocab = g.tensor(named: "token_embd.weight")?.shape.last ?? int(g, p + "vocab_size") ?? 0
        try config(g, arch: arch, vocab: vocab, tied: tied, dtype: dtype).serialized(pretty: true)
            .write(to: dir.appendingPathComponent("config.json"), atomically: false, encoding: .utf8)
        files.append("config.json")
        try modelCard(g, source: g.url).write(to: dir.appendingPathComponent("README.md"), atomically: false, encoding: .utf8)
        files.append("README.md")
        let (tokFiles, notes) = try exportTokenizer(g, to: dir)
        files += tokFiles
        return (files, items.count, skipped, notes)
    }

    /// config.json for transformers, from the GGUF hyperparameters.
    static func config(_ g: GGUFFile, arch: Architecture, vocab: Int, tied: Bool, dtype: DType) -> JSONValue {
        let p = arch.name + "."
        let experts = int(g, p + "expert_count") ?? 0
        // the llama arch with experts is Mixtral
        let mixtral = experts > 0 && arch.name == "llama"
        var c: [(String, JSONValue)] = [("architectures", .array([.string(mixtral ? "MixtralForCausalLM" : arch.hfClasses[0])])),
                                        ("model_type", .string(mixtral ? "mixtral" : arch.hfModelType))]
        func i(_ k: String, _ key: String) { if let v = int(g, p + key) { c.append((k, .int(Int64(v)))) } }
        func d(_ k: String, _ key: String) { if let v = double(g, p + key) { c.append((k, .double(Double(Float(v).description) ?? v))) } }
        i("hidden_size", "embedding_length"); i("intermediate_size", "feed_forward_length"); i("num_hidden_layers", "block_count")
        i("num_attention_heads", "attention.head_count"); i("num_key_value_heads", "attention.head_count_kv")
        i("max_position_embeddings", "context_length"); i("head_dim", "attention.key_length")
        d("rms_norm_eps", "attention.layer_norm_rms_epsilon"); d("rope_theta", "rope.freq_base")
        c.append(("vocab_size", .int(Int64(vocab))))
        c.append(("tie_word_embeddings", .bool(tied)))
        if let b = int(g, "tokenizer.ggml.bos_token_id") { c.append(("bos_token_id", .int(Int64(b)))) }
        if let e = int(g, "tokenizer.ggml.eos_token_id") { c.append(("eos_token_id", .int(Int64(e)))) }
        if let pad = int(g, "tokenizer.ggml.padding_token_id") { c.append(("pad_token_id", .int(Int64(pad)))) }
        if experts > 0 {
            // transformers' MoE config names; top-k renormalisation as llama.cpp applies it per arch
            // (Mixtral and Qwen3-MoE renormalise, Qwen2-MoE does not)
            c.append((mixtral ? "num_local_experts" : "num_experts", .int(Int64(experts))))
            i("num_experts_per_tok", "expert_used_count")
            if !mixtral {
                i("moe_intermediate_size", "expert_feed_forward_length")
                i("shared_expert_intermediate_size", "expert_shared_feed_forward_length")
                c.append(("norm_topk_prob", .bool(g.metadata[p + "expert_weights_norm"]?.boolValue ?? (arch.name == "qwen3moe"))))
                c.append(("decoder_sparse_step", .int(1)))
                c.append(("mlp_only_layers", .array([])))
            }
        }
        switch arch.name {
        case "gemma2", "gemma3":
            c.append(("hidden_activation", .string("gelu_pytorch_tanh")))
            if let hd = int(g, p + "attention.key_length") { c.append(("query_pre_attn_scalar", .int(Int64(hd)))) }
            i("sliding_window", "attention.sliding_window")
            d("rope_local_base_freq", "rope.freq_base_swa")
            d("attn_logit_softcapping", "attn_logit_softcapping"); d("final_logit_softcapping", "final_logit_softcapping")
        case "qwen2":
            c.append(("hidden_act", .string("silu")))
            c.append(("attention_bias", .bool(g.tensor(named: "blk.0.attn_q.bias") != nil)))
        default:
            c.append(("hidden_act", .string("silu")))
        }
        if let type = g.metadata[p + "rope.scaling.type"]?.stringValue, type == "linear" || type == "yarn",
           let f = double(g, p + "rope.scaling.factor") {
            var r: [(String, JSONValue)] = [("rope_type", .string(type)), ("factor", .double(f))]
            if let o = int(g, p + "rope.scaling.original_context_length") { r.append(("original_max_position_embeddings", .int(Int64(o)))) }
            c.append(("rope_scaling", .object(r)))
        }
        c.append(("torch_dtype", .string(dtype == .bf16 ? "bfloat16" : dtype == .f16 ? "float16" : "float32")))
        return .object(c)
    }
}
