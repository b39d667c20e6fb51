import Foundation
import SmeltFormats
import SmeltCompressedTensors

/// Evaluating compressed-tensors checkpoints (llm-compressor / vLLM): quantized weights are dequantized
/// exactly as compressed-tensors does (`CTCheckpointReader`), and the input activations of each quantized
/// linear layer are fake-quantized as its scheme says — dynamic per token (W8A8's int8, FP8_DYNAMIC's
/// E4M3) or static per tensor with the stored `input_scale` (FP8) — with compressed-tensors' arithmetic
/// in the checkpoint's dtype (`CTQuantizer`), so that the logits are those of the quantized model.
enum CompressedTensorsModel {
    /// The reader of `folder` when its config.json declares `quant_method: compressed-tensors`.
    static func reader(folder: URL) throws -> CTCheckpointReader? {
        let cu = folder.appendingPathComponent("config.json")
        guard let json = try? JSONValue.parse(contentsOf: cu),
              json["quantization_config"]?["quant_method"]?.stringValue == "compressed-tensors" else { return nil }
        return try CTCheckpointReader(folder: folder)
    }

    /// The fake quantization of `module`'s input activations, nil when its scheme leaves them alone.
    static func inputQuantizer(_ ct: CTCheckpointReader, module: String) throws -> InputQuantizer? {
        guard let scheme = ct.scheme(module: module), let args = scheme.inputActivations else { return nil }
        guard let st = ct.checkpoint.tensor(named: module + ".weight_scale") else { return nil }
        let type = CTComputeType(st.dtype)
        if args.dynamic {
            guard args.strategy == .token || args.strategy == .tensor else {
                throw SmeltError("\(ct.folder.path): dynamic input activations with strategy '\(args.strategy.rawValue)' are not supported (\(module))")
            }
            if args.strategy == .tensor {
                return { p, rows, cols in
                    let b = UnsafeMutableBufferPointer(start: p, count: rows * cols)
                    var lo = Float.infinity, hi = -Float.infinity
                    for v in b { lo = min(lo, v); hi = max(hi, v) }
                    let (s, z) = CTQuantizer.qparams(min: lo, max: hi, args: args, type: type)
                    try? CTQuantizer.fakeQuantizeTensor(b, scale: s, zeroPoint: args.symmetric ? nil : z, args: args, type: type)
                }
            }
            return { p, rows, cols in
                try? CTQuantizer.fakeQuantizeTokens(UnsafeMutableBufferPointer(start: p, count: rows * cols),
                                                    tokens: rows, features: cols, args: args, type: type)
            }
        }
        guard args.strategy == .tensor else {
            throw SmeltError("\(ct.folder.path): static input activations with strategy '\(args.strategy.rawValue)' are not supported (\(module))")
        }
        guard let scale = try ct.inputScale(module: module) else {
            throw SmeltError("\(ct.folder.path): '\(module).input_scale' is missing (its scheme has static input activations)")
        }
        guard scale.isFinite, scale > 0 else { throw SmeltError("\(ct.folder.path): '\(module).input_scale' is \(scale)") }
        return { p, rows, cols in
            try? CTQuantizer.fakeQuantizeTensor(UnsafeMutableBufferPointer(start: p, count: rows * cols), scale: scale,
                                                args: args, type: type)
        }
    }
}

extension InferenceModel {
    /// Installs the activation fake quantization of a compressed-tensors checkpoint on every quantized linear.
    func installInputQuantizers(_ ct: CTCheckpointReader, names: [String: String]) throws {
        var all: [WeightMatrix] = [output]
        for l in layers { all += [l.wq, l.wk, l.wv, l.wqkv, l.wo, l.gate, l.up, l.down].compactMap { $0 } }
        for w in all {
            guard let hf = names[w.name], hf.hasSuffix(".weight") else { continue }
            w.inputQuantizer = try CompressedTensorsModel.inputQuantizer(ct, module: String(hf.dropLast(".weight".count)))
        }
    }
}
