import SmeltFormats

/// A GGUF metadata value produced by this module; the converter maps it to the GGUF value type of
/// the same name (arrays: `stringArray` → array of string, `int32Array` → array of int32, ...).
public enum MetaValue: Equatable, Sendable {
    case string(String)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case stringArray([String])
    case int32Array([Int32])
    case float32Array([Float])

    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    public var boolValue: Bool? { if case let .bool(b) = self { return b }; return nil }
    /// An integer scalar (uint32 or int32) as Int.
    public var intValue: Int? {
        switch self {
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        default: return nil
        }
    }
}

/// An ordered list of GGUF key/value pairs (the order the converter writes them in).
public typealias MetaEntries = [(key: String, value: MetaValue)]

/// GGUF token types (`tokenizer.ggml.token_type`), as gguf-py's `TokenType`.
public enum TokenType: Int32, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// Everything a tokenizer needs, in GGUF terms (the `tokenizer.ggml.*` keys). Fill it from a GGUF
/// file's metadata (`init(metadata:)` or field by field), or get it from an HF checkpoint with
/// `HFVocabConverter`. `Tokenizer(vocab:)` turns it into an encoder/decoder.
public struct TokenizerVocab: Sendable {
    /// `tokenizer.ggml.model`: "llama" (SentencePiece) or "gpt2" (byte-level BPE).
    public var model: String
    /// `tokenizer.ggml.pre`: the BPE pre-tokenizer name ("default", "llama-bpe", "qwen2", "smollm", ...).
    public var pre: String?
    /// `tokenizer.ggml.tokens`.
    public var tokens: [String]
    /// `tokenizer.ggml.scores` (SentencePiece), one per token.
    public var scores: [Float]?
    /// `tokenizer.ggml.token_type` (see `TokenType`), one per token.
    public var tokenTypes: [Int32]?
    /// `tokenizer.ggml.merges` ("left right", BPE only), highest priority first.
    public var merges: [String]?
    public var bosTokenId: UInt32?
    public var eosTokenId: UInt32?
    public var unknownTokenId: UInt32?
    public var paddingTokenId: UInt32?
    public var separatorTokenId: UInt32?
    public var eotTokenId: UInt32?
    /// `tokenizer.ggml.add_bos_token` / `add_eos_token` / `add_sep_token`.
    public var addBosToken: Bool?
    public var addEosToken: Bool?
    public var addSepToken: Bool?
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece; llama.cpp's default is true).
    public var addSpacePrefix: Bool?
    /// `tokenizer.chat_template`.
    public var chatTemplate: String?

    public init(model: String, pre: String? = nil, tokens: [String], scores: [Float]? = nil, tokenTypes: [Int32]? = nil,
                merges: [String]? = nil) {
        self.model = model
        self.pre = pre
        self.tokens = tokens
        self.scores = scores
        self.tokenTypes = tokenTypes
        self.merges = merges
    }

    /// Reads the `tokenizer.*` keys from GGUF metadata given as a lookup (e.g. a GGUF reader's dictionary).
    public init(lookup: (String) -> MetaValue?) throws {
        guard let model = lookup("tokenizer.ggml.model")?.stringValue else {
            throw SmeltError("GGUF has no tokenizer.ggml.model")
        }
        guard case let .stringArray(tokens)? = lookup("tokenizer.ggml.tokens") else {
            throw SmeltError("GGUF has no tokenizer.ggml.tokens")
        }
        self.init(model: model, pre: lookup("tokenizer.ggml.pre")?.stringValue, tokens: tokens)
        if case let .float32Array(s)? = lookup("tokenizer.ggml.scores") { scores = s }
        if case let .int32Array(t)? = lookup("tokenizer.ggml.token_type") { tokenTypes = t }
        if case let .stringArray(m)? = lookup("tokenizer.ggml.merges") { merges = m }
        func id(_ k: String) -> UInt32? { lookup(k)?.intValue.flatMap { UInt32(exactly: $0) } }
        bosTokenId = id("tokenizer.ggml.bos_token_id")
        eosTokenId = id("tokenizer.ggml.eos_token_id")
        unknownTokenId = id("tokenizer.ggml.unknown_token_id")
        paddingTokenId = id("tokenizer.ggml.padding_token_id")
        separatorTokenId = id("tokenizer.ggml.seperator_token_id")
        eotTokenId = id("tokenizer.ggml.eot_token_id")
        addBosToken = lookup("tokenizer.ggml.add_bos_token")?.boolValue
        addEosToken = lookup("tokenizer.ggml.add_eos_token")?.boolValue
        addSepToken = lookup("tokenizer.ggml.add_sep_token")?.boolValue
        addSpacePrefix = lookup("tokenizer.ggml.add_space_prefix")?.boolValue
        chatTemplate = lookup("tokenizer.chat_template")?.stringValue
    }

    /// Reads the `tokenizer.*` keys from an ordered key/value list (e.g. `HFVocabConverter`'s output).
    public init(metadata: MetaEntries) throws {
        var d: [String: MetaValue] = [:]
        for (k, v) in metadata where d[k] == nil { d[k] = v }
        try self.init(lookup: { d[$0] })
    }
}
