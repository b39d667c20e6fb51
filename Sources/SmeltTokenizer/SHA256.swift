// SHA-256 for llama.cpp's pre-tokenizer fingerprint (`chkhsh`): Smelt's one
// implementation (SmeltFormats' SHA256Hasher, on the x86 SHA extensions when present).
import SmeltFormats

enum SHA256 {
    /// The lowercase hex digest of the bytes.
    static func hex(_ data: [UInt8]) -> String { SHA256Hasher.hex(data) }
}
