import Foundation
import SmeltFormats

/// Quantizes one weight matrix: returns the quantized bytes (int8 bit patterns or E4M3 codes, row-major)
/// and their scales. The default is round-to-nearest (`CTCheckpointWriter.roundToNearest`); calibration
/// algorithms (GPTQ, AWQ) supply their own.
public typealias CTWeightQuantizer = (_ module: String, _ weight: [Float], _ rows: Int, _ columns: Int,
                                      _ args: CTQuantizationArgs, _ type: CTComputeType) throws -> (codes: [UInt8], params: CTQuantParams)

/// What to write: the source checkpoint's linear modules that are quantized and how.
public struct CTWritePlan: Sendable {
    /// `quantization_config` (groups with their formats set, ignore list).
    public var config: CTQuantizationConfig
    /// linear module name (the weight's name without `.weight`) → index into `config.groups`
    public var modules: [String: Int]
    /// module → static input-activation scale (schemes with static input activations, e.g. FP8)
    public var inputScales: [String: Float]
    /// The dtype of the model (scales, unquantized tensors), as torch would load it.
    public var computeType: CTComputeType

    public init(config: CTQuantizationConfig, modules: [String: Int], inputScales: [String: Float] = [:], computeType: CTComputeType) {
        self.config = config; self.modules = modules; self.inputScales = inputScales; self.computeType = computeType
    }
}

/// What a write produced.
public struct CTWriteSummary: Sendable {
    public let folder: URL
    public let files: [String]
    /// tensors written
    public let tensors: Int
    /// quantized linear modules
    public let quantized: Int
    public let bytes: Int
}

/// Writes a Hugging Face folder as llm-compressor saves a compressed model: config.json with
/// `quantization_config`, `model.safetensors` with `weight` (FP8/int8) + `weight_scale` (+ `input_scale`)
/// or `weight_packed` (int32) + `weight_scale` + `weight_shape` (int64) (+ `weight_zero_point`) per
/// quantized linear, every other tensor in the model's dtype, and the tokenizer files. Tensors are
/// streamed one at a time; the folder appears only when everything succeeded.
public enum CTCheckpointWriter {
    /// Files copied from the source folder besides the weights and config.json.
    public static let copiedFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                                     "merges.txt", "tokenizer.model", "added_tokens.json", "generation_config.json",
                                     "chat_template.jinja", "chat_template.json"]

    /// Round-to-nearest with min-max scales (llm-compressor's `QuantizationModifier`).
    public static func roundToNearest(_ module: String, _ w: [Float], _ rows: Int, _ columns: Int,
                                      _ args: CTQuantizationArgs, _ type: CTComputeType) throws -> (codes: [UInt8], params: CTQuantParams) {
        try w.withUnsafeBufferPointer { wp in
            let p = try CTQuantizer.weightParams(wp, rows: rows, columns: columns, args: args, type: type)
            let q = try CTQuantizer.quantize(wp, rows: rows, columns: columns, params: p, args: args, type: type)
            return (q, p)
        }
    }

    struct Item {
        enum Kind { case copy(SafetensorsTensor), quantized(SafetensorsTensor, module: String, group: Int) }
        let kind: Kind
        var entries: [SafetensorsWriter.Entry]
    }

    /// Writes `plan` for the checkpoint in `source` into the new folder `folder` (absent or empty).
    /// `weights` may supply a tensor's float values (e.g. after SmoothQuant folded scales into it);
    /// `quantizer` quantizes each weight (round-to-nearest by default).
    public static func write(source: URL, to folder: URL, plan: CTWritePlan,
                             weights: ((String) throws -> [Float]?)? = nil,
                             quantizer: CTWeightQuantizer? = nil) throws -> CTWriteSummary {
        let ckpt = try SafetensorsCheckpoint(folder: source)
        let configURL = source.appendingPathComponent("config.json")
        let config: JSONValue
        do { config = try JSONValue.parse(contentsOf: configURL) } catch let e as SmeltError { throw e.naming(configURL.path) } catch {
            throw SmeltError("\(configURL.path): \(error)")
        }
        guard config.objectValue != nil else { throw SmeltError("\(configURL.path): not a JSON object") }
        if let q = config["quantization_config"], !q.isNull {
            throw SmeltError("\(configURL.path): the model is already quantized (quantization_config is present)")
        }

        // Plan every output tensor from the source headers (nothing read yet).
        var items: [Item] = []
        var seen = Set<String>()
        let ct = plan.computeType
        for t in ckpt.tensors {
            let module = t.name.hasSuffix(".weight") ? String(t.name.dropLast(".weight".count)) : nil
            if let module, let g = plan.modules[module] {
                guard g >= 0 && g < plan.config.groups.count, let args = plan.config.groups[g].scheme.weights else {
                    throw SmeltError("module '\(module)': no weight arguments in its group")
                }
                guard t.shape.count == 2, t.shape[0] > 0, t.shape[1] > 0, t.dtype.isFloat else {
                    throw SmeltError("\(t.url.path): tensor '\(t.name)' is not a 2-D float matrix and cannot be quantized")
                }
                seen.insert(module)
                let rows = t.shape[0], cols = t.shape[1]
                let sc: Int
                do { sc = try CTQuantizer.scaleColumns(args, columns: cols) } catch let e as SmeltError {
                    throw SmeltError("\(t.url.path): tensor '\(t.name)' (\(rows) × \(cols)): \(e.message); ignore the module (--ignore), choose a group size that divides it (--group-size) or another scheme")
                }
                let scaleShape: [Int] = args.strategy == .tensor ? [1] : [rows, sc]
                let scheme = plan.config.groups[g].scheme
                let fmt = scheme.format ?? scheme.inferredFormat
                var e: [SafetensorsWriter.Entry] = []
                switch fmt {
                case .packQuantized:
                    guard args.type == .int, args.numBits <= 8 else { throw SmeltError("module '\(module)': pack-quantized needs int weights of at most 8 bits") }
                    e.append(.init(name: module + ".weight_packed", dtype: .I32, shape: [rows, CTPacking.packedColumns(cols, bits: args.numBits)]))
                    e.append(.init(name: module + ".weight_scale", dtype: ct.safetensorsDType, shape: scaleShape))
                    e.append(.init(name: module + ".weight_shape", dtype: .I64, shape: [2]))
                    if !args.symmetric {
                        guard args.strategy == .group || args.strategy == .channel else {
                            throw SmeltError("module '\(module)': asymmetric pack-quantized weights need group or channel strategy")
                        }
                        e.append(.init(name: module + ".weight_zero_point", dtype: .I32,
                                       shape: [CTPacking.packedColumns(rows, bits: args.numBits), sc]))
                    }
                case .floatQuantized, .intQuantized, .naiveQuantized:
                    guard args.numBits == 8 else { throw SmeltError("module '\(module)': \(fmt.rawValue) stores 8-bit weights only") }
                    e.append(.init(name: module + ".weight", dtype: args.type == .float ? .F8_E4M3 : .I8, shape: [rows, cols]))
                    e.append(.init(name: module + ".weight_scale", dtype: ct.safetensorsDType, shape: scaleShape))
                    if !args.symmetric { e.append(.init(name: module + ".weight_zero_point", dtype: .I8, shape: scaleShape)) }
                default:
                    throw SmeltError("module '\(module)': format \(fmt.rawValue) is not written by Smelt")
                }
                if let ia = scheme.inputActivations, !ia.dynamic {
                    guard plan.inputScales[module] != nil else {
                        throw SmeltError("module '\(module)': the scheme has static input activations but no input scale was calibrated")
                    }
                    e.append(.init(name: module + ".input_scale", dtype: ct.safetensorsDType, shape: [1]))
                }
                items.append(Item(kind: .quantized(t, module: module, group: g), entries: e))
            } else {
                let dt: SafetensorsDType = t.dtype.isFloat && t.dtype != .F8_E4M3 && t.dtype != .F8_E5M2 ? ct.safetensorsDType : t.dtype
                items.append(Item(kind: .copy(t), entries: [.init(name: t.name, dtype: dt, shape: t.shape)]))
            }
        }
        for m in plan.modules.keys where !seen.contains(m) {
            throw SmeltError("\(source.path): the plan quantizes '\(m)' but the checkpoint has no tensor '\(m).weight'")
        }

        let fm = FileManager.default
        try OutputGuard.checkFolderTarget(folder)
        let tmp = TemporaryFiles.name(for: folder)
        TemporaryFiles.register(tmp)
        defer { TemporaryFiles.unregister(tmp) }
        do { try fm.createDirectory(at: tmp, withIntermediateDirectories: false) } catch {
            throw SmeltError("cannot create \(tmp.path): \(error.localizedDescription)")
        }
        do {
            var files: [String] = []
            let out = tmp.appendingPathComponent("model.safetensors")
            let w = try SafetensorsWriter(url: out, tensors: items.flatMap { $0.entries })
            var count = 0, quantized = 0
            do {
                for it in items {
                    switch it.kind {
                    case .copy(let t):
                        let dt = it.entries[0].dtype
                        if let v = try weights?(t.name) {
                            // changed by a calibration (SmoothQuant / AWQ fold scales into norms)
                            guard v.count == t.elementCount else { throw SmeltError("tensor '\(t.name)': \(v.count) values for \(t.elementCount)") }
                            try w.write(encode(v, dt))
                        } else if dt == t.dtype { try w.write(t.data) }
                        else { try w.write(encode(t.floats(), dt)) }
                        t.dropPages()
                    case .quantized(let t, let module, let g):
                        let scheme = plan.config.groups[g].scheme
                        guard let args = scheme.weights else { continue }
                        let rows = t.shape[0], cols = t.shape[1]
                        var v = try weights?(t.name) ?? t.floats()
                        guard v.count == rows * cols else { throw SmeltError("tensor '\(t.name)': \(v.count) values for \(rows) × \(cols)") }
                        for i in v.indices { v[i] = ct.round(v[i]) }   // the weight as torch holds it
                        let (codes, p) = try (quantizer ?? roundToNearest)(module, v, rows, cols, args, ct)
                        let fmt = scheme.format ?? scheme.inferredFormat
                        if fmt == .packQuantized {
                            let packed = try CTPacking.pack(codes.map { Int8(bitPattern: $0) }, rows: rows, columns: cols, bits: args.numBits)
                            try packed.withUnsafeBytes { try w.write($0) }
                            try w.write(encode(p.scales, ct.safetensorsDType))
                            let shape: [Int64] = [Int64(rows), Int64(cols)]
                            try shape.withUnsafeBytes { try w.write($0) }
                            if !args.symmetric, let z = p.zeroPoints {
                                let pz = try CTPacking.packColumns(z, rows: p.rows, columns: p.columns, bits: args.numBits)
                                try pz.withUnsafeBytes { try w.write($0) }
                            }
                        } else {
                            try w.write(codes)
                            try w.write(encode(p.scales, ct.safetensorsDType))
                            if !args.symmetric, let z = p.zeroPoints { try w.write(z.map { UInt8(bitPattern: $0) }) }
                        }
                        if let ia = scheme.inputActivations, !ia.dynamic, let s = plan.inputScales[module] {
                            try w.write(encode([s], ct.safetensorsDType))
                        }
                        quantized += 1
                        t.dropPages()
                    }
                    count += it.entries.count
                }
                try w.finish()
            } catch {
                w.abort()
                throw error
            }
            files.append("model.safetensors")
            let bytes = (try? fm.attributesOfItem(atPath: out.path)[.size] as? Int) ?? 0

            // config.json: the source's, with quantization_config, keys sorted as transformers writes them
            var cfg = config.objectValue ?? []
            cfg.removeAll { $0.0 == "quantization_config" }
            cfg.append(("quantization_config", plan.config.json))
            let text = sortedKeys(.object(cfg)).serialized(pretty: true)   // transformers writes no final newline
            let cf = try OutputFile(url: tmp.appendingPathComponent("config.json"))
            do { try cf.write(Array(text.utf8)); try cf.commit() } catch { cf.abort(); throw error }
            files.append("config.json")

            for name in copiedFiles {
                let src = source.appendingPathComponent(name)
                guard fm.fileExists(atPath: src.path) else { continue }
                do { try fm.copyItem(at: src, to: tmp.appendingPathComponent(name)) } catch {
                    throw SmeltError("cannot copy \(src.path): \(error.localizedDescription)")
                }
                files.append(name)
            }
            do {
                if fm.fileExists(atPath: folder.path) { try fm.removeItem(at: folder) }   // empty (checked above)
                try fm.moveItem(at: tmp, to: folder)
            } catch {
                throw SmeltError("cannot move \(tmp.path) to \(folder.path): \(error.localizedDescription)")
            }
            return CTWriteSummary(folder: folder, files: files, tensors: count, quantized: quantized, bytes: bytes)
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
    }

    /// Little-endian bytes of float values in a float dtype (round to nearest even).
    static func encode(_ v: [Float], _ dt: SafetensorsDType) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(v.count * dt.size)
        switch dt {
        case .F32: for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case .BF16: for x in v { withUnsafeBytes(of: FloatFormats.floatToBF16(x).littleEndian) { out.append(contentsOf: $0) } }
        case .F16: for x in v { withUnsafeBytes(of: FloatFormats.floatToHalf(x).littleEndian) { out.append(contentsOf: $0) } }
        default: throw SmeltError("cannot write float values as \(dt.rawValue)")
        }
        return out
    }

    /// Sorts object keys at every level (Python's `json.dumps(sort_keys=True)`).
    public static func sortedKeys(_ v: JSONValue) -> JSONValue {
        switch v {
        case .object(let o): return .object(o.map { ($0.0, sortedKeys($0.1)) }.sorted { $0.0 < $1.0 })
        case .array(let a): return .array(a.map(sortedKeys))
        default: return v
        }
    }
}
