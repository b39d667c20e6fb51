import CSmeltKernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Streaming SHA-256 (the x86 SHA extensions when present): how Smelt identifies
/// files by content (the results store, provenance). Feed bytes with `update`,
/// read the lowercase hex digest with `finalize()` once.
public struct SHA256Hasher {
    private var ctx = smelt_sha256_ctx()

    public init() { smelt_sha256_init(&ctx) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let p = bytes.baseAddress, bytes.count > 0 else { return }
        smelt_sha256_update(&ctx, p, bytes.count)
    }
    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest as 64 lowercase hex digits.
    public mutating func finalize() -> String {
        var d = [UInt8](repeating: 0, count: 32)
        smelt_sha256_final(&ctx, &d)
        return d.map { String(format: "%02x", $0) }.joined()
    }

    /// The digest of a byte array.
    public static func hex(_ bytes: [UInt8]) -> String {
        var h = SHA256Hasher(); h.update(bytes); return h.finalize()
    }

    /// The digest of a file's content, read sequentially in 4 MiB blocks.
    public static func hashFile(_ url: URL) throws -> String {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SmeltError("cannot read \(url.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        var h = SHA256Hasher()
        let size = 4 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw SmeltError("cannot read \(url.path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            h.update(UnsafeRawBufferPointer(start: buf, count: n))
        }
        return h.finalize()
    }
}
