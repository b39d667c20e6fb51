import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file. The only place where Smelt calls
/// `open`/`mmap`; pages are read by the kernel only when touched.
public final class MappedFile: @unchecked Sendable {
    public let url: URL
    /// The mapped bytes (empty for an empty file).
    public let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawPointer?

    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SmeltError("cannot open \(url.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SmeltError("cannot stat \(url.path): \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SmeltError("\(url.path) is not a regular file") }
        let size = Int(st.st_size)
        if size == 0 {
            base = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw SmeltError("cannot map \(url.path): \(String(cString: strerror(errno)))") }
        base = p
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    public var count: Int { bytes.count }

    /// Tells the kernel that the pages of `range` will not be needed again soon,
    /// so streaming a model larger than RAM does not keep it all resident.
    public func dropPages(_ range: Range<Int>) {
        guard let base, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page  // never a page that holds bytes before the range
        let end = min(count, range.upperBound)
        guard end > start else { return }
        _ = madvise(base + start, end - start, MADV_DONTNEED)
    }

    deinit {
        if let base { munmap(base, count) }
    }
}

/// Little-endian reads at byte offsets of a buffer, with bounds checks that
/// throw instead of trapping.
struct ByteReader {
    let buf: UnsafeRawBufferPointer
    var pos: Int
    let what: String  // file name for messages

    init(_ buf: UnsafeRawBufferPointer, at pos: Int = 0, what: String) {
        self.buf = buf; self.pos = pos; self.what = what
    }

    var remaining: Int { buf.count - pos }

    func fail(_ m: String) -> SmeltError { SmeltError("\(what): \(m) (at byte \(pos))") }

    mutating func need(_ n: Int, _ context: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else {
            throw fail("truncated: \(context()) needs \(n) bytes, \(remaining) left")
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ context: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, context())
        let v = T(littleEndian: buf.loadUnaligned(fromByteOffset: pos, as: T.self))
        pos += MemoryLayout<T>.size
        return v
    }

    mutating func readString(_ context: @autoclosure () -> String) throws -> String {
        let n = try read(UInt64.self, context())
        guard n <= UInt64(remaining) else {
            throw fail("\(context()): string length \(n) exceeds the \(remaining) bytes left in the file")
        }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: buf[pos..<(pos + Int(n))]), as: UTF8.self)
        pos += Int(n)
        return s
    }
}
