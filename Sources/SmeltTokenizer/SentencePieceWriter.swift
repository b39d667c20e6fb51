import Foundation

/// Encodes a SentencePiece `tokenizer.model` (ModelProto) with a minimal hand-written protobuf
/// writer: the pieces (text, score, type), the TrainerSpec fields a reader needs (model type,
/// vocab size, byte fallback, unk/bos/eos/pad ids and pieces) and the NormalizerSpec
/// (identity normalization, `add_dummy_prefix`, no whitespace collapsing). The inverse of
/// `SentencePieceModel`.
public struct SentencePieceWriter: Sendable {
    public var pieces: [SentencePieceModel.Piece]
    /// TrainerSpec.model_type: 1 unigram, 2 BPE (llama.cpp's SentencePiece tokenizer merges by score, as BPE does).
    public var modelType: Int = 2
    public var byteFallback = false
    public var unkId: Int = 0
    public var bosId: Int = -1
    public var eosId: Int = -1
    public var padId: Int = -1
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = false

    public init(pieces: [SentencePieceModel.Piece]) { self.pieces = pieces }

    /// The serialized ModelProto.
    public func serialized() -> [UInt8] {
        var out = ProtoWriter()
        for p in pieces {
            var m = ProtoWriter()
            m.string(1, p.piece)
            m.fixed32(2, p.score.bitPattern)
            if p.type != .normal { m.varint(3, UInt64(p.type.rawValue)) }
            out.message(1, m.bytes)
        }
        var t = ProtoWriter()
        t.varint(3, UInt64(modelType))
        t.int32(4, Int32(clamping: pieces.count))
        if byteFallback { t.varint(35, 1) }
        t.int32(40, Int32(clamping: unkId))
        t.int32(41, Int32(clamping: bosId))
        t.int32(42, Int32(clamping: eosId))
        t.int32(43, Int32(clamping: padId))
        func pieceText(_ id: Int) -> String? { id >= 0 && id < pieces.count ? pieces[id].piece : nil }
        if let s = pieceText(unkId) { t.string(45, s) }
        if let s = pieceText(bosId) { t.string(46, s) }
        if let s = pieceText(eosId) { t.string(47, s) }
        if let s = pieceText(padId) { t.string(48, s) }
        out.message(2, t.bytes)
        var n = ProtoWriter()
        n.string(1, "identity")
        n.varint(3, addDummyPrefix ? 1 : 0)
        n.varint(4, removeExtraWhitespaces ? 1 : 0)
        n.varint(5, 1)
        out.message(3, n.bytes)
        return out.bytes
    }

    /// Writes the model to a file.
    public func write(to url: URL) throws {
        try Data(serialized()).write(to: url, options: .atomic)
    }
}

/// A minimal protobuf wire-format writer (varint, fixed32, length-delimited fields).
struct ProtoWriter {
    var bytes: [UInt8] = []

    mutating func rawVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func key(_ field: Int, _ wire: Int) { rawVarint(UInt64(field << 3 | wire)) }
    mutating func varint(_ field: Int, _ v: UInt64) { key(field, 0); rawVarint(v) }
    /// int32 fields: negative values are sign-extended to 64 bits (10 bytes), as protobuf does.
    mutating func int32(_ field: Int, _ v: Int32) { varint(field, UInt64(bitPattern: Int64(v))) }
    mutating func fixed32(_ field: Int, _ v: UInt32) {
        key(field, 5)
        bytes += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)]
    }
    mutating func message(_ field: Int, _ b: [UInt8]) { key(field, 2); rawVarint(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { message(field, Array(s.utf8)) }
}
