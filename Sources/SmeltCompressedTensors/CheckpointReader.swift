import Foundation
import SmeltFormats

/// A compressed-tensors checkpoint folder read back: the `quantization_config`, which linear module
/// has which scheme, and every tensor as float values — quantized weights dequantized exactly as
/// compressed-tensors' decompressors do (in the scales' dtype), everything else converted.
public final class CTCheckpointReader: @unchecked Sendable {
    public let folder: URL
    public let config: CTQuantizationConfig
    public let checkpoint: SafetensorsCheckpoint
    /// quantized linear module → index into `config.groups`, for every module with a `weight_scale`
    public let modules: [String: Int]

    public init(folder: URL) throws {
        self.folder = folder
        let cu = folder.appendingPathComponent("config.json")
        let json: JSONValue
        do { json = try JSONValue.parse(contentsOf: cu) } catch let e as SmeltError { throw e.naming(cu.path) } catch {
            throw SmeltError("\(cu.path): \(error)")
        }
        guard let q = json["quantization_config"], !q.isNull else { throw SmeltError("\(cu.path): no quantization_config (not a compressed-tensors checkpoint)") }
        config = try CTQuantizationConfig(json: q, context: cu.path)
        guard config.quantizationStatus == "compressed" else {
            throw SmeltError("\(cu.path): quantization_status '\(config.quantizationStatus)' (only compressed checkpoints are read)")
        }
        checkpoint = try SafetensorsCheckpoint(folder: folder)
        var mods: [String: Int] = [:]
        for t in checkpoint.tensors where t.name.hasSuffix(".weight_scale") {
            let m = String(t.name.dropLast(".weight_scale".count))
            guard let g = config.group(forLinear: m) else {
                throw SmeltError("\(t.url.path): '\(t.name)' belongs to no config group of \(cu.lastPathComponent)")
            }
            guard config.groups[g].scheme.weights != nil else { throw SmeltError("\(cu.path): group of '\(m)' has no weights arguments") }
            mods[m] = g
        }
        modules = mods
    }

    /// The scheme of a linear module (nil: not quantized).
    public func scheme(module: String) -> CTQuantizationScheme? { modules[module].map { config.groups[$0].scheme } }

    /// The static input-activation scale of a module, if stored.
    public func inputScale(module: String) throws -> Float? {
        guard let t = checkpoint.tensor(named: module + ".input_scale") else { return nil }
        guard t.elementCount == 1, t.dtype.isFloat else { throw SmeltError("\(t.url.path): '\(t.name)' must be one float") }
        return t.floats()[0]
    }

    /// The names of the dense tensors the checkpoint stands for: `X.weight` for every quantized module
    /// and every other tensor that is not a quantization parameter, in file order.
    public var denseTensorNames: [String] {
        var out: [String] = []
        for t in checkpoint.tensors {
            let n = t.name
            if let m = Self.module(of: n, suffixes: [".weight_packed"]), modules[m] != nil { out.append(m + ".weight"); continue }
            if let m = Self.module(of: n, suffixes: [".weight_scale", ".weight_shape", ".weight_zero_point", ".input_scale",
                                                     ".input_zero_point", ".weight_g_idx"]), modules[m] != nil { continue }
            out.append(n)
        }
        return out
    }

    static func module(of name: String, suffixes: [String]) -> String? {
        for s in suffixes where name.hasSuffix(s) { return String(name.dropLast(s.count)) }
        return nil
    }

    /// Shape (rows, columns) of a quantized module's weight.
    public func weightShape(module: String) throws -> (rows: Int, columns: Int) {
        guard let g = modules[module], let args = config.groups[g].scheme.weights else { throw SmeltError("'\(module)' is not a quantized module") }
        if let t = checkpoint.tensor(named: module + ".weight"), modules[module] != nil {
            guard t.shape.count == 2 else { throw SmeltError("\(t.url.path): '\(t.name)' is not 2-D") }
            return (t.shape[0], t.shape[1])
        }
        guard let s = checkpoint.tensor(named: module + ".weight_shape") else { throw SmeltError("\(folder.path): '\(module)' has neither weight nor weight_shape") }
        guard s.elementCount == 2, s.dtype == .I64 || s.dtype == .I32 else { throw SmeltError("\(s.url.path): '\(s.name)' must hold two integers") }
        let v = s.floats()
        let r = Int(v[0]), c = Int(v[1])
        guard r > 0, c > 0, r < 1 << 31, c < 1 << 31 else { throw SmeltError("\(s.url.path): '\(s.name)' holds an impossible shape \(r) × \(c)") }
        _ = args
        return (r, c)
    }

    /// The float values of a dense tensor name (see `denseTensorNames`): quantized weights dequantized
    /// (`(q − zero_point) · scale` in the scales' dtype), other tensors converted to float.
    public func floats(tensor name: String) throws -> [Float] {
        if name.hasSuffix(".weight") {
            let m = String(name.dropLast(".weight".count))
            if modules[m] != nil { return try dequantizedWeight(module: m) }
        }
        guard let t = checkpoint.tensor(named: name), t.dtype.isFloat else { throw SmeltError("\(folder.path): no float tensor '\(name)'") }
        return t.floats()
    }

    /// The quantized codes (int8 values or E4M3 codes) and parameters of a module.
    public func quantized(module: String) throws -> (codes: [UInt8], params: CTQuantParams, args: CTQuantizationArgs, type: CTComputeType) {
        guard let g = modules[module], let args = config.groups[g].scheme.weights else { throw SmeltError("'\(module)' is not a quantized module") }
        let (rows, cols) = try weightShape(module: module)
        guard let st = checkpoint.tensor(named: module + ".weight_scale"), st.dtype.isFloat else {
            throw SmeltError("\(folder.path): no float '\(module).weight_scale'")
        }
        let type = CTComputeType(st.dtype)
        let sc = try CTQuantizer.scaleColumns(args, columns: cols)
        let scaleRows = args.strategy == .tensor ? 1 : rows, scaleCols = args.strategy == .tensor ? 1 : sc
        guard st.elementCount == scaleRows * scaleCols else {
            throw SmeltError("\(st.url.path): '\(st.name)' has \(st.elementCount) values, expected \(scaleRows) × \(scaleCols)")
        }
        let scales = st.floats()
        var codes: [UInt8]
        var zps: [Int8]? = nil
        if let p = checkpoint.tensor(named: module + ".weight_packed") {
            guard p.dtype == .I32, p.elementCount == rows * CTPacking.packedColumns(cols, bits: args.numBits), args.numBits <= 8 else {
                throw SmeltError("\(p.url.path): '\(p.name)' must be int32 \(rows) × \(CTPacking.packedColumns(cols, bits: args.numBits))")
            }
            let words = p.data.bindMemory(to: UInt8.self).withUnsafeBytes { raw -> [Int32] in
                (0..<p.elementCount).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) }
            }
            codes = try CTPacking.unpack(words, rows: rows, columns: cols, bits: args.numBits).map { UInt8(bitPattern: $0) }
            if !args.symmetric {
                guard let z = checkpoint.tensor(named: module + ".weight_zero_point"), z.dtype == .I32,
                      z.elementCount == CTPacking.packedColumns(scaleRows, bits: args.numBits) * scaleCols else {
                    throw SmeltError("\(folder.path): '\(module).weight_zero_point' missing or not packed int32")
                }
                let zw = (0..<z.elementCount).map { z.data.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) }
                zps = try CTPacking.unpackColumns(zw, rows: scaleRows, columns: scaleCols, bits: args.numBits)
            }
        } else {
            guard let t = checkpoint.tensor(named: module + ".weight") else { throw SmeltError("\(folder.path): no '\(module).weight'") }
            let want: SafetensorsDType = args.type == .float ? .F8_E4M3 : .I8
            guard t.dtype == want, t.elementCount == rows * cols else {
                throw SmeltError("\(t.url.path): '\(t.name)' must be \(want.rawValue) \(rows) × \(cols), is \(t.dtype.rawValue) \(t.shape)")
            }
            codes = [UInt8](t.data)
            if !args.symmetric {
                guard let z = checkpoint.tensor(named: module + ".weight_zero_point"), z.elementCount == scales.count else {
                    throw SmeltError("\(folder.path): '\(module).weight_zero_point' missing")
                }
                zps = z.floats().map { Int8(clamping: Int($0)) }
            }
        }
        let params = CTQuantParams(scales: scales, zeroPoints: zps, rows: scaleRows, columns: scaleCols)
        return (codes, params, args, type)
    }

    /// A quantized module's weight dequantized, row-major.
    public func dequantizedWeight(module: String) throws -> [Float] {
        let (rows, cols) = try weightShape(module: module)
        let (codes, params, args, type) = try quantized(module: module)
        return try CTQuantizer.dequantize(codes, rows: rows, columns: cols, params: params, args: args, type: type)
    }

    /// The suffixes of a quantized module's stored tensors (the weight and its quantization parameters).
    static let moduleSuffixes = [".weight_packed", ".weight_scale", ".weight_shape", ".weight_zero_point", ".weight_g_idx",
                                 ".input_scale", ".input_zero_point", ".weight"]

    /// The dense tensors the checkpoint stands for, in file order, with what each costs on disk: a
    /// quantized module's weight with the bytes of its codes, scales, zero points, shape and input
    /// scale, its type named by the weight format (`int4 g128`, `int8 channel`, `fp8 tensor`, `asym`
    /// when it has zero points); other tensors as stored (`bf16`…). Shapes in ggml order (columns
    /// first), so `bytes · 8 / elements` is llama-quantize's bits per weight.
    public func tensorTable() throws -> [CTTensorEntry] {
        var out: [CTTensorEntry] = []
        var index: [String: Int] = [:]
        for t in checkpoint.tensors {
            if let m = Self.module(of: t.name, suffixes: Self.moduleSuffixes), let g = modules[m] {
                if let i = index[m] { out[i].bytes += Int64(t.byteCount); continue }
                let (rows, cols) = try weightShape(module: m)
                index[m] = out.count
                out.append(CTTensorEntry(name: m + ".weight", type: config.groups[g].scheme.weights.map(Self.typeName) ?? "?",
                                         shape: [cols, rows], bytes: Int64(t.byteCount)))
            } else {
                out.append(CTTensorEntry(name: t.name, type: t.dtype.rawValue.lowercased(), shape: t.shape.reversed(),
                                         bytes: Int64(t.byteCount)))
            }
        }
        return out
    }

    /// A weight format's short name: `int4 g128`, `int4 g128 asym`, `int8 channel`, `fp8 tensor`.
    static func typeName(_ a: CTQuantizationArgs) -> String {
        let base = (a.type == .float ? "fp" : "int") + "\(a.numBits)"
        let how = a.strategy == .group || a.strategy == .tensorGroup ? "g\(a.groupSize ?? 0)" : a.strategy.rawValue
        return base + " " + how + (a.symmetric ? "" : " asym")
    }

    /// The scheme of the checkpoint as llm-compressor's presets name it (`W4A16`, `W4A16_ASYM`, `W8A8`,
    /// `FP8`, `FP8_DYNAMIC`; `W4A16 g64` when the group size is not the preset's), the names of
    /// several groups joined with `+`.
    public var schemeName: String {
        var names: [String] = []
        for (_, sc) in config.groups {
            guard let w = sc.weights else { continue }
            let a = sc.inputActivations
            var n: String
            if w.type == .float && w.numBits == 8, let a, a.type == .float {
                n = a.dynamic ? "FP8_DYNAMIC" : "FP8"
            } else {
                n = "W\(w.numBits)A\(a.map { "\($0.numBits)" } ?? "16")" + (w.symmetric ? "" : "_ASYM")
                if w.strategy == .group, let g = w.groupSize, g != 128 { n += " g\(g)" }
            }
            if !names.contains(n) { names.append(n) }
        }
        return names.isEmpty ? "compressed-tensors" : names.joined(separator: "+")
    }
}

/// One dense tensor of a compressed-tensors checkpoint with its stored bytes (see `tensorTable`).
public struct CTTensorEntry: Equatable, Sendable {
    public var name: String
    public var type: String
    public var shape: [Int]
    public var bytes: Int64
}
