import Foundation
import SmeltFormats
import SmeltTokenizer

extension InferenceModel {
    /// The tokenizer of the model: from the GGUF metadata (`tokenizer.ggml.*`),
    /// or from the checkpoint folder's tokenizer files (`pre` forces the
    /// pre-tokenizer name, as `convert --pre`).
    public func makeTokenizer(pre: String? = nil) throws -> Tokenizer {
        if let g = gguf {
            var vocab = try TokenizerVocab(lookup: { key in g.metadata[key].flatMap(MetaValue.init(gguf:)) })
            if let pre { vocab.pre = pre }
            return try Tokenizer(vocab: vocab)
        }
        return try Tokenizer(hfDirectory: source, forcedPre: pre)
    }
}

extension MetaValue {
    /// The tokenizer's view of a GGUF metadata value.
    init?(gguf v: GGUFValue) {
        switch v {
        case let .string(s): self = .string(s)
        case let .bool(b): self = .bool(b)
        case let .float32(f): self = .float32(f)
        case let .float64(f): self = .float32(Float(f))
        case let .array(_, items):
            if let s = items.first, case .string = s {
                self = .stringArray(items.compactMap(\.stringValue))
            } else if let f = items.first, case .float32 = f {
                self = .float32Array(items.compactMap { $0.doubleValue.map(Float.init) })
            } else {
                self = .int32Array(items.compactMap { $0.intValue.map { Int32(truncatingIfNeeded: $0) } })
            }
        default:
            guard let i = v.intValue else { return nil }
            if i >= 0, i <= Int(UInt32.max) { self = .uint32(UInt32(i)) } else { self = .int32(Int32(truncatingIfNeeded: i)) }
        }
    }
}

/// Text as llama-perplexity and llama-imatrix read it from `-f FILE`.
public enum EvaluationText {
    /// Reads a text file and drops one trailing newline, as llama.cpp's `-f` does.
    public static func read(_ url: URL) throws -> String {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw SmeltError("cannot read \(url.path)") }
        var s = String(decoding: data, as: UTF8.self)
        if s.hasSuffix("\n") { s.removeLast() }
        return s
    }
}
