import CSmeltKernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file written through a temporary file in the destination folder and
/// renamed into place only by `commit()`. Anything else (an error, `abort()`,
/// dropping the object) removes the temporary file: a failed write leaves
/// nothing behind.
///
/// Writes are buffered in an 8 MiB page-aligned buffer written with `O_DIRECT` where the file
/// system allows it: on the project's machines buffered `write(2)` of a fresh file spends most of
/// its time copying into and reclaiming the page cache (1.6 GB: 2.4–4.9 s of system time, against
/// 0.2 s direct; docs/PERFORMANCE.md). The tail that is not a multiple of the block size, and
/// everything after a partial flush, is written through the page cache; a file system that refuses
/// direct I/O gets buffered writes throughout. `SMELT_DIRECT_IO=0` turns it off. A full buffer is
/// written on a background thread while the next one fills (a direct write waits for the device:
/// doing both in turn made the writer the slowest stage of Q8_0); errors surface at the next write,
/// flush or commit, which then discard the file.
public final class OutputFile {
    public let url: URL
    public let tempURL: URL
    private var fd: Int32
    private var buffer: UnsafeMutableRawPointer
    /// The buffer being written in the background (allocated at the first full buffer).
    private var spare: UnsafeMutableRawPointer? = nil
    private let io = DispatchQueue(label: "smelt.output.write")
    /// Signalled when the background write of the spare buffer is done.
    private let spareFree = DispatchSemaphore(value: 1)
    private let ioLock = NSLock()
    private var ioError: Error? = nil
    private var buffered = 0
    private let bufferSize: Int
    private var direct: Bool
    private var done = false
    /// Bytes written so far (including buffered ones).
    public private(set) var position: Int = 0
    private var hasher = SHA256Hasher()
    private let hashContent: Bool
    /// SHA-256 of the content, set by `commit()` (computed while writing; `nil` when the file was
    /// opened with `hashContent: false`, for runs that record nothing).
    public private(set) var sha256: String?

    /// Direct writes go in multiples of this many bytes, from buffers aligned to it.
    static let directAlignment = 4096

    public init(url: URL, bufferSize: Int = 8 << 20, hashContent: Bool = true) throws {
        self.url = url
        let align = OutputFile.directAlignment
        self.bufferSize = max(align, (bufferSize + align - 1) / align * align)
        self.hashContent = hashContent
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw SmeltError("cannot write \(url.path): folder \(dir.path) does not exist")
        }
        tempURL = TemporaryFiles.name(for: url)
        TemporaryFiles.register(tempURL)
        let wantDirect = ProcessInfo.processInfo.environment["SMELT_DIRECT_IO"] != "0"
        var f: Int32 = -1
        if wantDirect { f = open(tempURL.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | smelt_o_direct_flag(), 0o644) }
        direct = f >= 0
        if f < 0 && (!wantDirect || errno == EINVAL) {
            f = open(tempURL.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        }
        guard f >= 0 else {
            TemporaryFiles.unregister(tempURL)
            throw SmeltError("cannot create \(tempURL.path): \(String(cString: strerror(errno)))")
        }
        fd = f
        buffer = UnsafeMutableRawPointer.allocate(byteCount: self.bufferSize, alignment: align)
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var src = bytes.baseAddress else { return }
        position += bytes.count
        var left = bytes.count
        while left > 0 {
            let k = min(left, bufferSize - buffered)
            (buffer + buffered).copyMemory(from: src, byteCount: k)
            buffered += k; src += k; left -= k
            if buffered == bufferSize { try flushInBackground() }
        }
    }

    /// Hands the full buffer to the background thread and goes on with the other one.
    private func flushInBackground() throws {
        try rethrowBackgroundError()
        let spareBuffer: UnsafeMutableRawPointer
        if let sp = spare { spareBuffer = sp } else {
            spareBuffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: OutputFile.directAlignment)
        }
        spareFree.wait()  // the previous background write (of the spare buffer) is done
        let full = buffer, n = buffered
        buffer = spareBuffer
        spare = full
        buffered = 0
        io.async { [self] in
            defer { spareFree.signal() }
            ioLock.lock(); let failed = ioError != nil; ioLock.unlock()
            guard !failed else { return }
            do { try rawWrite(UnsafeRawBufferPointer(start: full, count: n)) } catch {
                ioLock.lock(); ioError = error; ioLock.unlock()
            }
        }
    }

    /// An error a background write met discards the file and is thrown here.
    private func rethrowBackgroundError() throws {
        ioLock.lock(); let e = ioError; ioLock.unlock()
        if let e { abort(); throw e }
    }

    /// Waits until nothing is being written in the background.
    private func drain() { io.sync {} }
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
    public func writeZeros(_ n: Int) throws {
        if n > 0 { try write([UInt8](repeating: 0, count: n)) }
    }

    /// Writes out what is buffered.
    public func flush() throws {
        drain()
        try rethrowBackgroundError()
        if buffered == 0 { return }
        let n = buffered
        buffered = 0
        do { try rawWrite(UnsafeRawBufferPointer(start: buffer, count: n)) } catch { abort(); throw error }
    }

    private func rawWrite(_ bytes: UnsafeRawBufferPointer) throws {
        // A full buffer is hashed on another thread while it is being written (both only read
        // it; the hash is in order because each flush waits for its own): with SHA-256 at about
        // 1.3 GB/s per core and direct writes at about 1 GB/s, doing them one after the other
        // made the writer the slowest stage of a quantize run.
        let job: HashJob? = hashContent && bytes.count >= OutputFile.concurrentHashBytes ? HashJob(hasher, bytes) : nil
        if let job { DispatchQueue.global().async { job.run() } } else if hashContent { hasher.update(bytes) }
        defer { if let job { hasher = job.wait() } }
        guard let base = bytes.baseAddress else { return }
        var off = 0
        if direct {
            // whole blocks directly; the rest (a partial flush, the end of the file) through the page cache
            let whole = bytes.count / OutputFile.directAlignment * OutputFile.directAlignment
            off = try writeAll(base, whole, from: 0, directRetry: true)
            if off < bytes.count { leaveDirectMode() }
        }
        _ = try writeAll(base, bytes.count, from: off, directRetry: false)
    }

    /// Writes bytes `from..<end` of `base`; returns `end`. A direct write the file system refuses
    /// (EINVAL) leaves direct mode and returns where it stopped, for the buffered path to go on.
    private func writeAll(_ base: UnsafeRawPointer, _ end: Int, from: Int, directRetry: Bool) throws -> Int {
        var off = from
        while off < end {
            let n = Glibc.write(fd, base + off, end - off)
            if n < 0 {
                if errno == EINTR { continue }
                if directRetry && errno == EINVAL { leaveDirectMode(); return off }
                let e = String(cString: strerror(errno))
                throw SmeltError("cannot write \(url.path): \(e)")
            }
            off += n
        }
        return end
    }

    private func leaveDirectMode() {
        guard direct else { return }
        direct = false
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~smelt_o_direct_flag()) }
    }

    /// Flushes and frees the write buffer when nothing more will be written but the
    /// file is not committed yet (the shards of a split model are committed together).
    public func finishWriting() throws {
        try flush()
    }

    /// Flushes, closes and renames the temporary file to its final name.
    public func commit() throws {
        guard !done else { return }
        do { try flush() } catch { abort(); throw error }
        close(fd); fd = -1
        done = true
        defer { TemporaryFiles.unregister(tempURL) }
        sha256 = hashContent ? hasher.finalize() : nil
        if rename(tempURL.path, url.path) != 0 {
            let e = String(cString: strerror(errno))
            unlink(tempURL.path)
            throw SmeltError("cannot rename \(tempURL.path) to \(url.path): \(e)")
        }
    }

    /// Discards everything written.
    public func abort() {
        drain()
        guard !done else { return }
        done = true
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempURL.path)
        TemporaryFiles.unregister(tempURL)
    }

    deinit { abort(); buffer.deallocate(); spare?.deallocate() }

    /// Writes at least this large are hashed on another thread while they are written.
    static let concurrentHashBytes = 1 << 20
}

/// One buffer hashed on another thread: the hasher state goes in, the updated state comes back.
private final class HashJob: @unchecked Sendable {
    private var hasher: SHA256Hasher
    private let bytes: UnsafeRawBufferPointer
    private let done = DispatchSemaphore(value: 0)
    init(_ hasher: SHA256Hasher, _ bytes: UnsafeRawBufferPointer) { self.hasher = hasher; self.bytes = bytes }
    func run() { hasher.update(bytes); done.signal() }
    func wait() -> SHA256Hasher { done.wait(); return hasher }
}
