import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file written through a temporary file in the destination folder and
/// renamed into place only by `commit()`. Anything else (an error, `abort()`,
/// dropping the object) removes the temporary file: a failed write leaves
/// nothing behind. Writes are buffered.
public final class OutputFile {
    public let url: URL
    public let tempURL: URL
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferSize: Int
    private var done = false
    /// Bytes written so far (including buffered ones).
    public private(set) var position: Int = 0
    private var hasher = SHA256Hasher()
    /// SHA-256 of the content, set by `commit()` (computed while writing).
    public private(set) var sha256: String?

    public init(url: URL, bufferSize: Int = 8 << 20) throws {
        self.url = url
        self.bufferSize = bufferSize
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw SmeltError("cannot write \(url.path): folder \(dir.path) does not exist")
        }
        tempURL = TemporaryFiles.name(for: url)
        TemporaryFiles.register(tempURL)
        fd = open(tempURL.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            TemporaryFiles.unregister(tempURL)
            throw SmeltError("cannot create \(tempURL.path): \(String(cString: strerror(errno)))")
        }
        buffer.reserveCapacity(bufferSize)
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        position += bytes.count
        if buffer.count + bytes.count <= bufferSize {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        if bytes.count >= bufferSize { try rawWrite(bytes) } else { buffer.append(contentsOf: bytes) }
    }
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
    public func writeZeros(_ n: Int) throws {
        if n > 0 { try write([UInt8](repeating: 0, count: n)) }
    }

    public func flush() throws {
        if buffer.isEmpty { return }
        try buffer.withUnsafeBytes { try rawWrite($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func rawWrite(_ bytes: UnsafeRawBufferPointer) throws {
        hasher.update(bytes)
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                let e = String(cString: strerror(errno))
                abort()
                throw SmeltError("cannot write \(url.path): \(e)")
            }
            off += n
        }
    }

    /// Flushes and frees the write buffer when nothing more will be written but the
    /// file is not committed yet (the shards of a split model are committed together).
    public func finishWriting() throws {
        try flush()
        buffer = []
    }

    /// Flushes, closes and renames the temporary file to its final name.
    public func commit() throws {
        guard !done else { return }
        do { try flush() } catch { abort(); throw error }
        close(fd); fd = -1
        done = true
        defer { TemporaryFiles.unregister(tempURL) }
        sha256 = hasher.finalize()
        if rename(tempURL.path, url.path) != 0 {
            let e = String(cString: strerror(errno))
            unlink(tempURL.path)
            throw SmeltError("cannot rename \(tempURL.path) to \(url.path): \(e)")
        }
    }

    /// Discards everything written.
    public func abort() {
        guard !done else { return }
        done = true
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempURL.path)
        TemporaryFiles.unregister(tempURL)
    }

    deinit { abort() }
}
