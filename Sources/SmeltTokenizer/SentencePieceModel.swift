import Foundation
import SmeltFormats

/// A SentencePiece `tokenizer.model` (ModelProto), decoded by hand from its protobuf encoding.
/// Only the fields a converter or tokenizer needs are kept.
public struct SentencePieceModel: Sendable {
    /// Piece types (ModelProto.SentencePiece.Type); the same numbers as GGUF token types.
    public enum PieceType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, byte = 6, unused = 5
    }

    /// One vocabulary entry.
    public struct Piece: Sendable, Equatable {
        public var piece: String
        public var score: Float
        public var type: PieceType
    }

    public var pieces: [Piece]
    /// TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char.
    public var modelType: Int = 1
    public var trainerVocabSize: Int?
    public var byteFallback = false
    public var unkId: Int = 0
    public var bosId: Int = 1
    public var eosId: Int = 2
    public var padId: Int = -1
    /// NormalizerSpec fields.
    public var normalizerName: String?
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true

    /// Reads a `tokenizer.model` file.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SmeltError("cannot read \(url.path): \(error.localizedDescription)")
        }
        do { try self.init(data: [UInt8](data)) } catch let e as SmeltError {
            throw SmeltError("\(url.path): \(e.message)")
        }
    }

    /// Decodes ModelProto bytes.
    public init(data: [UInt8]) throws {
        pieces = []
        var r = ProtoReader(data[...])
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2):
                let sub = try r.bytes()
                pieces.append(try SentencePieceModel.piece(sub))
            case (2, 2):
                var t = ProtoReader(try r.bytes())
                while let (f, w) = try t.nextField() {
                    switch (f, w) {
                    case (3, 0): modelType = Int(truncatingIfNeeded: try t.varint())
                    case (4, 0): trainerVocabSize = Int(Int32(truncatingIfNeeded: try t.varint()))
                    case (35, 0): byteFallback = try t.varint() != 0
                    case (40, 0): unkId = Int(Int32(truncatingIfNeeded: try t.varint()))
                    case (41, 0): bosId = Int(Int32(truncatingIfNeeded: try t.varint()))
                    case (42, 0): eosId = Int(Int32(truncatingIfNeeded: try t.varint()))
                    case (43, 0): padId = Int(Int32(truncatingIfNeeded: try t.varint()))
                    default: try t.skip(w)
                    }
                }
            case (3, 2):
                var t = ProtoReader(try r.bytes())
                while let (f, w) = try t.nextField() {
                    switch (f, w) {
                    case (1, 2): normalizerName = String(decoding: try t.bytes(), as: UTF8.self)
                    case (3, 0): addDummyPrefix = try t.varint() != 0
                    case (4, 0): removeExtraWhitespaces = try t.varint() != 0
                    case (5, 0): escapeWhitespaces = try t.varint() != 0
                    default: try t.skip(w)
                    }
                }
            default:
                try r.skip(wire)
            }
        }
        if pieces.isEmpty { throw SmeltError("not a SentencePiece model (no pieces)") }
        for (name, id) in [("unk_id", unkId), ("bos_id", bosId), ("eos_id", eosId), ("pad_id", padId)] where id < -1 || id >= pieces.count {
            throw SmeltError("trainer_spec \(name) = \(id) is not a piece id (the model has \(pieces.count) pieces)")
        }
    }

    static func piece(_ b: ArraySlice<UInt8>) throws -> Piece {
        var p = Piece(piece: "", score: 0, type: .normal)
        var r = ProtoReader(b)
        while let (f, w) = try r.nextField() {
            switch (f, w) {
            case (1, 2): p.piece = String(decoding: try r.bytes(), as: UTF8.self)
            case (2, 5): p.score = Float(bitPattern: try r.fixed32())
            case (3, 0):
                let v = Int32(truncatingIfNeeded: try r.varint())
                p.type = PieceType(rawValue: v) ?? .normal
            default: try r.skip(w)
            }
        }
        return p
    }
}

/// A minimal protobuf wire-format reader.
struct ProtoReader {
    var b: ArraySlice<UInt8>
    var i: Int
    init(_ b: ArraySlice<UInt8>) { self.b = b; i = b.startIndex }

    mutating func nextField() throws -> (Int, Int)? {
        if i >= b.endIndex { return nil }
        let key = try varint()
        return (Int(key >> 3), Int(key & 7))
    }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard i < b.endIndex else { throw SmeltError("truncated protobuf varint at byte \(i)") }
            let c = b[i]; i += 1
            v |= UInt64(c & 0x7F) << shift
            if c & 0x80 == 0 { return v }
            shift += 7
            if shift > 63 { throw SmeltError("invalid protobuf varint at byte \(i)") }
        }
    }

    mutating func fixed32() throws -> UInt32 {
        guard b.endIndex - i >= 4 else { throw SmeltError("truncated protobuf fixed32 at byte \(i)") }
        let v = UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
        i += 4
        return v
    }

    mutating func bytes() throws -> ArraySlice<UInt8> {
        let start = i
        let v = try varint()
        guard v <= UInt64(b.endIndex - i) else {
            throw SmeltError("protobuf field at byte \(start) declares \(v) bytes, past the end of its message")
        }
        let n = Int(v)
        defer { i += n }
        return b[i..<(i + n)]
    }

    mutating func skip(_ wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1: guard b.endIndex - i >= 8 else { throw SmeltError("truncated protobuf at byte \(i)") }; i += 8
        case 2: _ = try bytes()
        case 5: guard b.endIndex - i >= 4 else { throw SmeltError("truncated protobuf at byte \(i)") }; i += 4
        default: throw SmeltError("unsupported protobuf wire type \(wire) before byte \(i)")
        }
    }
}
