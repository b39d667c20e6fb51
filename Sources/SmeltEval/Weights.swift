import Foundation
import SmeltFormats
import SmeltQuant
import SmeltCompressedTensors
#if canImport(Glibc)
import Glibc
#endif

/// A weight matrix of `rows` output features × `cols` input features, in any
/// ggml type (rows are whole blocks, as in GGUF: ggml shape `[cols, rows]`).
/// Float32 rows are used in place; other types are dequantized with Smelt's
/// ggml-exact kernels, either once (`cache`) or a row block at a time.
final class WeightMatrix: @unchecked Sendable {
    let name: String
    let rows: Int
    let cols: Int
    let type: GGMLType
    let rowBytes: Int
    private let raw: UnsafeRawPointer
    private let owner: AnyObject?
    private let kernel: (any QuantType.Type)?
    /// Float32 rows when the matrix is float32 or has been cached.
    private(set) var f32: UnsafePointer<Float>?
    /// The bfloat16 rows as mapped, for the native dot-product kernel (`useBF16Product`).
    private(set) var bf16Product: BF16Product?
    /// The float16 rows as mapped, for the native FMA product (`useF16Product`).
    private(set) var f16Product: F16Product?
    private var owned: UnsafeMutablePointer<Float>?

    init(name: String, rows: Int, cols: Int, type: GGMLType, raw: UnsafeRawPointer, owner: AnyObject?) throws {
        self.name = name
        self.rows = rows
        self.cols = cols
        self.type = type
        self.raw = raw
        self.owner = owner
        guard let rb = type.rowBytes(cols) else { throw SmeltError("\(name): row length \(cols) is not a whole number of \(type) blocks") }
        rowBytes = rb
        if type == .f32 {
            kernel = nil
            f32 = raw.assumingMemoryBound(to: Float.self)
        } else {
            guard let k = QuantRegistry.kernel(for: type) else { throw SmeltError("\(name): no kernel for type \(type)") }
            kernel = k
        }
    }

    /// A float32 matrix that owns its values.
    convenience init(name: String, rows: Int, cols: Int, values: [Float]) throws {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, values.count))
        values.withUnsafeBufferPointer { if let b = $0.baseAddress { p.initialize(from: b, count: values.count) } }
        try self.init(name: name, rows: rows, cols: cols, type: .f32, raw: UnsafeRawPointer(p), owner: nil)
        owned = p
    }

    deinit { owned?.deallocate() }

    /// Bytes the float32 cache takes.
    var floatBytes: Int { rows * cols * 4 }

    /// Dequantizes rows `range` into `dst` (`range.count × cols` floats).
    func dequantize(rows range: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        if let f = f32 {
            dst.update(from: f + range.lowerBound * cols, count: range.count * cols)
            return
        }
        let k = kernel!
        for (i, r) in range.enumerated() {
            k.dequantizeRow(raw + r * rowBytes, dst + i * cols, count: cols)
        }
    }

    /// The quantized rows as mapped, for the native integer product (`useIntProduct`).
    private(set) var packedInt: PackedInt?

    /// Multiplies a quantized matrix by `PackedInt` (decoding blocks of rows during each
    /// product; no decoded copy is kept) when its type has an integer decoding.
    func useIntProduct() {
        guard packedInt == nil, IntegerDecoding.layout(for: type) != nil else { return }
        packedInt = PackedInt(type: type, raw: raw, rowBytes: rowBytes, rows: rows, cols: cols)
    }

    /// After a float32 cache, the mapped rows are no longer read by the products: their pages leave the
    /// process (they stay in the page cache; a later read, e.g. an embedding row, maps them again),
    /// so the model is not resident twice. Only for rows of a file mapping (`owner` set; values
    /// Smelt allocated have no owner and are never released this way).
    private func releaseMappedPages() {
        guard owner != nil, type != .f32 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: raw) + page - 1) / page * page
        let end = (Int(bitPattern: raw) + rows * rowBytes) / page * page   // whole pages inside the rows only
        guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(p, end - start, MADV_DONTNEED)
    }

    /// Multiplies a bfloat16 matrix by `BF16Product` on its own rows (no copy of any kind).
    func useBF16Product() {
        guard type == .bf16, bf16Product == nil else { return }
        bf16Product = BF16Product(bf16: raw.assumingMemoryBound(to: UInt16.self), rows: rows, cols: cols, owner: owner)
    }

    /// Multiplies a float16 matrix by `F16Product` on its own rows (no copy; rows of an even length).
    func useF16Product() {
        guard type == .f16, f16Product == nil, cols % 2 == 0 else { return }
        f16Product = F16Product(f16: raw.assumingMemoryBound(to: UInt16.self), rows: rows, cols: cols, owner: owner)
    }

    /// Replaces the matrix by float32 values (`rows × cols`): later products use them, in float32.
    func replace(values: [Float]) {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * cols))
        values.withUnsafeBufferPointer { if let b = $0.baseAddress { p.initialize(from: b, count: rows * cols) } }
        owned?.deallocate()
        owned = p
        f32 = UnsafePointer(p)
        packedInt = nil
        bf16Product = nil
        f16Product = nil
        replaced = true
    }

    /// Applied to the activations before every product with this matrix (fake quantization of the
    /// inputs as a quantization scheme prescribes): `rows × cols` values, in place.
    var inputQuantizer: InputQuantizer?

    /// Whether `replace` gave the matrix float32 values (products then skip the type's activation rounding).
    private(set) var replaced = false

    /// Dequantizes the whole matrix once (in parallel) and keeps the floats.
    func cache(threads: Int) {
        guard f32 == nil else { return }
        let p = UnsafeMutablePointer<Float>.allocate(capacity: rows * cols)
        let blocks = (rows + 255) / 256
        Parallel.forEach(blocks, threads: threads) { _, b in
            let lo = b * 256, hi = min(rows, lo + 256)
            self.dequantize(rows: lo..<hi, into: p + lo * self.cols)
        }
        owned = p
        f32 = UnsafePointer(p)
        releaseMappedPages()
    }
}

/// The tensors of one transformer block, with llama.cpp's GGUF names.
struct LayerWeights {
    var attnNorm: [Float]
    var wq, wk, wv, wqkv: WeightMatrix?
    var bq, bk, bv, bqkv: [Float]?
    var qNorm, kNorm: [Float]?
    var wo: WeightMatrix
    var bo: [Float]?
    var attnPostNorm: [Float]?
    var ffnNorm: [Float]
    var gate: WeightMatrix?
    /// Dense feed-forward (nil in a mixture-of-experts layer).
    var up: WeightMatrix?
    var down: WeightMatrix?
    var bGate, bUp, bDown: [Float]?
    var ffnPostNorm: [Float]?
    var moe: MoEWeights? = nil
}

/// A mixture-of-experts feed-forward: the router, one 2-D slice per expert of the 3-D
/// `ffn_{gate,up,down}_exps` tensors, and the optional shared expert with its gate (Qwen2-MoE).
struct MoEWeights {
    /// `ffn_gate_inp`: `n_expert` rows × `n_embd`.
    var router: WeightMatrix
    var gate: [WeightMatrix], up: [WeightMatrix], down: [WeightMatrix]
    var sharedGate, sharedUp, sharedDown: WeightMatrix?
    /// `ffn_gate_inp_shexp`: one row × `n_embd`.
    var sharedExpertGate: WeightMatrix?
    /// Expert FFN width.
    var width: Int { up.first?.rows ?? 0 }
    var all: [WeightMatrix] { [router] + gate + up + down + [sharedGate, sharedUp, sharedDown, sharedExpertGate].compactMap { $0 } }
}

/// Where tensors come from: a GGUF file or a Hugging Face checkpoint folder,
/// both presented under GGUF tensor names.
protocol TensorSource {
    func has(_ name: String) -> Bool
    func vector(_ name: String) throws -> [Float]
    func matrix(_ name: String) throws -> WeightMatrix
    /// The 2-D slices of a 3-D expert tensor (`[cols, rows, n_expert]`), one per expert.
    func experts(_ name: String) throws -> [WeightMatrix]
}

extension TensorSource {
    func optionalVector(_ name: String) throws -> [Float]? { has(name) ? try vector(name) : nil }
    func optionalMatrix(_ name: String) throws -> WeightMatrix? { has(name) ? try matrix(name) : nil }
}

/// Tensors of a GGUF file (memory-mapped; float32 matrices are used in place).
struct GGUFTensorSource: TensorSource {
    let file: GGUFFile

    func has(_ name: String) -> Bool { file.tensor(named: name) != nil }

    func info(_ name: String) throws -> GGUFTensorInfo {
        guard let t = file.tensor(named: name) else { throw SmeltError("\(file.url.lastPathComponent): tensor '\(name)' is missing") }
        return t
    }

    func vector(_ name: String) throws -> [Float] {
        let t = try info(name)
        let m = try WeightMatrix(name: name, rows: t.rowCount, cols: t.rowLength, type: t.type,
                                 raw: file.data(for: t).baseAddress!, owner: file)
        var out = [Float](repeating: 0, count: t.elementCount)
        out.withUnsafeMutableBufferPointer { m.dequantize(rows: 0..<m.rows, into: $0.baseAddress!) }
        return out
    }

    func matrix(_ name: String) throws -> WeightMatrix {
        let t = try info(name)
        guard t.shape.count <= 2 else { throw SmeltError("\(name): expected a matrix, got shape \(t.shape)") }
        return try WeightMatrix(name: name, rows: t.rowCount, cols: t.rowLength, type: t.type,
                                raw: file.data(for: t).baseAddress!, owner: file)
    }

    func experts(_ name: String) throws -> [WeightMatrix] {
        let t = try info(name)
        guard t.shape.count == 3, t.shape[1] > 0, t.shape[2] > 0 else {
            throw SmeltError("\(file.url.lastPathComponent): \(name): expected a 3-D expert tensor, got shape \(t.shape)")
        }
        let rows = t.shape[1]
        guard let rb = t.type.rowBytes(t.rowLength) else {
            throw SmeltError("\(name): row length \(t.rowLength) is not a whole number of \(t.type) blocks")
        }
        let base = file.data(for: t).baseAddress!
        return try (0..<t.shape[2]).map { e in
            try WeightMatrix(name: name, rows: rows, cols: t.rowLength, type: t.type, raw: base + e * rows * rb, owner: file)
        }
    }
}

/// Tensors of a Hugging Face checkpoint, renamed to GGUF names and prepared the
/// way llama.cpp's converter prepares them (Gemma norms get +1); bf16/f16 matrices
/// stay 16-bit and memory-mapped, other dtypes become float32.
/// Q and K stay in Hugging Face's rotate-half order; the engine uses NeoX RoPE.
struct HFTensorSource: TensorSource {
    let checkpoint: SafetensorsCheckpoint
    let config: ModelConfig
    /// GGUF tensor name → checkpoint tensor name.
    let map: [String: String]
    /// The checkpoint's compressed-tensors reader, when it is one (quantized weights are dequantized).
    let compressed: CTCheckpointReader?

    init(folder: URL, config: ModelConfig) throws {
        checkpoint = try SafetensorsCheckpoint(folder: folder)
        compressed = try CompressedTensorsModel.reader(folder: folder)
        self.config = config
        var m: [String: String] = [:]
        let gemma = config.architecture == .gemma2 || config.architecture == .gemma3
        for name in compressed?.denseTensorNames ?? checkpoint.tensors.map(\.name) {
            var n = name
            for p in ["model.language_model.", "language_model.model.", "language_model."] where n.hasPrefix(p) {
                n = "model." + n.dropFirst(p.count)
            }
            var g: String?
            if n == "model.embed_tokens.weight" { g = "token_embd.weight" }
            else if n == "model.norm.weight" { g = "output_norm.weight" }
            else if n == "lm_head.weight" { g = "output.weight" }
            else if n.hasPrefix("model.layers.") {
                let rest = n.dropFirst("model.layers.".count)
                guard let dot = rest.firstIndex(of: ".") else { continue }
                let il = rest[..<dot]
                let key = String(rest[rest.index(after: dot)...])
                let table: [String: String] = [
                    "input_layernorm": "attn_norm",
                    "post_attention_layernorm": gemma ? "post_attention_norm" : "ffn_norm",
                    "pre_feedforward_layernorm": "ffn_norm",
                    "post_feedforward_layernorm": "post_ffw_norm",
                    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                    "self_attn.o_proj": "attn_output", "self_attn.qkv_proj": "attn_qkv",
                    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
                    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
                    "mlp.gate_up_proj": "ffn_up",
                    "mlp.gate": "ffn_gate_inp", "block_sparse_moe.gate": "ffn_gate_inp",
                    "mlp.shared_expert.gate_proj": "ffn_gate_shexp", "mlp.shared_expert.up_proj": "ffn_up_shexp",
                    "mlp.shared_expert.down_proj": "ffn_down_shexp", "mlp.shared_expert_gate": "ffn_gate_inp_shexp",
                ]
                for suffix in [".weight", ".bias"] where key.hasSuffix(suffix) {
                    if let base = table[String(key.dropLast(suffix.count))] {
                        g = "blk.\(il).\(base)\(suffix)"
                    }
                }
            }
            if let g { m[g] = name }
        }
        map = m
    }

    func has(_ name: String) -> Bool { map[name] != nil }

    /// The per-expert 2-D tensors of a block (`mlp.experts.E.{gate,up,down}_proj`, Mixtral's
    /// `block_sparse_moe.experts.E.{w1,w3,w2}`), each used as its own matrix: nothing is stacked.
    func experts(_ name: String) throws -> [WeightMatrix] {
        let parts = name.split(separator: ".")
        guard parts.count == 4, parts[0] == "blk", let il = Int(parts[1]) else { throw SmeltError("\(name): not an expert tensor") }
        let names: [String: (String, String)] = ["ffn_gate_exps": ("gate_proj", "w1"), "ffn_up_exps": ("up_proj", "w3"), "ffn_down_exps": ("down_proj", "w2")]
        guard let (qwen, mixtral) = names[String(parts[2])] else { throw SmeltError("\(name): not an expert tensor") }
        var out: [WeightMatrix] = []
        for e in 0..<config.expertCount {
            let candidates = ["model.layers.\(il).mlp.experts.\(e).\(qwen).weight", "model.layers.\(il).block_sparse_moe.experts.\(e).\(mixtral).weight"]
            guard let hf = candidates.first(where: { checkpoint.tensor(named: $0) != nil }) else {
                throw SmeltError("\(checkpoint.folder.lastPathComponent): no tensor for expert \(e) of '\(name)'")
            }
            out.append(try hfMatrix(name, hf))
        }
        return out
    }

    private func tensor(_ name: String) throws -> SafetensorsTensor {
        guard let hf = map[name], let t = checkpoint.tensor(named: hf) else {
            throw SmeltError("\(checkpoint.folder.lastPathComponent): no tensor for '\(name)'")
        }
        return t
    }

    func vector(_ name: String) throws -> [Float] {
        var v = try tensor(name).floats()
        let gemma = config.architecture == .gemma2 || config.architecture == .gemma3
        if gemma && name.hasSuffix("norm.weight") { for i in v.indices { v[i] += 1 } }
        return v
    }

    func matrix(_ name: String) throws -> WeightMatrix {
        guard let hf = map[name] else { throw SmeltError("\(checkpoint.folder.lastPathComponent): no tensor for '\(name)'") }
        return try hfMatrix(name, hf)
    }

    private func hfMatrix(_ name: String, _ hf: String) throws -> WeightMatrix {
        if let ct = compressed, hf.hasSuffix(".weight"), ct.modules[String(hf.dropLast(".weight".count))] != nil {
            // a quantized linear: dequantized exactly as compressed-tensors does, then float32
            let module = String(hf.dropLast(".weight".count))
            let (rows, cols) = try ct.weightShape(module: module)
            return try WeightMatrix(name: name, rows: rows, cols: cols, values: ct.dequantizedWeight(module: module))
        }
        guard let t = checkpoint.tensor(named: hf) else { throw SmeltError("\(checkpoint.folder.lastPathComponent): no tensor '\(hf)'") }
        guard t.shape.count == 2 else { throw SmeltError("\(t.name): expected a matrix, got shape \(t.shape)") }
        if t.dtype == .BF16 || t.dtype == .F16 {
            // 16-bit rows are used in place (memory-mapped), as the same tensor in a GGUF file
            // would be: bf16 through the native product, f16 with llama.cpp's f16 rounding
            return try WeightMatrix(name: name, rows: t.shape[0], cols: t.shape[1], type: t.dtype == .BF16 ? .bf16 : .f16,
                                    raw: t.data.baseAddress!, owner: checkpoint)
        }
        return try WeightMatrix(name: name, rows: t.shape[0], cols: t.shape[1], values: t.floats())
    }
}
