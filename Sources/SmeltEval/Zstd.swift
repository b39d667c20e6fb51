import CZstd
import Foundation
import SmeltFormats

/// Streaming zstd compression into an `OutputFile` (the one place SmeltEval calls libzstd).
final class ZstdWriter {
    private let out: OutputFile
    private let ctx: OpaquePointer
    private var buffer: [UInt8]

    init(out: OutputFile, level: Int32 = 3, threads: Int32 = 0) throws {
        self.out = out
        guard let c = ZSTD_createCCtx() else { throw SmeltError("zstd: cannot create a compression context") }
        ctx = c
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)
        if threads > 0 { ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, threads) }
        buffer = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
    }

    deinit { ZSTD_freeCCtx(ctx) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        while input.pos < input.size {
            try step(&input, ZSTD_e_continue)
        }
    }

    /// Ends the frame (the caller commits the file).
    func finish() throws {
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try step(&input, ZSTD_e_end) != 0 {}
    }

    @discardableResult
    private func step(_ input: inout ZSTD_inBuffer, _ mode: ZSTD_EndDirective) throws -> Int {
        let cap = buffer.count
        return try buffer.withUnsafeMutableBytes { b -> Int in
            var output = ZSTD_outBuffer(dst: b.baseAddress, size: cap, pos: 0)
            let r = ZSTD_compressStream2(ctx, &output, &input, mode)
            if ZSTD_isError(r) != 0 { throw SmeltError("zstd: \(String(cString: ZSTD_getErrorName(r)))") }
            try out.write(UnsafeRawBufferPointer(rebasing: b[0..<output.pos]))
            return r
        }
    }
}

/// Reads a file sequentially, decompressing it when it is a zstd stream.
final class ByteReader {
    private let handle: FileHandle
    private let dctx: OpaquePointer?
    private var raw: [UInt8] = []       // compressed bytes not consumed yet
    private var rawPos = 0
    private var plain: [UInt8] = []     // decoded bytes not consumed yet
    private var plainPos = 0
    private var eof = false
    let path: String
    /// True when the file is zstd-compressed.
    let compressed: Bool

    init(url: URL) throws {
        path = url.path
        guard let h = FileHandle(forReadingAtPath: url.path) else { throw SmeltError("cannot open \(url.path)") }
        handle = h
        let head = h.readData(ofLength: 4)
        h.seek(toFileOffset: 0)
        compressed = head.count == 4 && [UInt8](head) == [0x28, 0xB5, 0x2F, 0xFD]
        dctx = compressed ? ZSTD_createDCtx() : nil
    }

    deinit {
        if let d = dctx { ZSTD_freeDCtx(d) }
        try? handle.close()
    }

    /// Fills `dst` completely or throws (truncated file).
    func read(into dst: UnsafeMutableRawBufferPointer, what: String) throws {
        var off = 0
        while off < dst.count {
            if plainPos == plain.count { try refill() }
            if plainPos == plain.count { throw SmeltError("\(path): file ends inside \(what)") }
            let n = min(dst.count - off, plain.count - plainPos)
            plain.withUnsafeBytes { src in
                (dst.baseAddress! + off).copyMemory(from: src.baseAddress! + plainPos, byteCount: n)
            }
            off += n; plainPos += n
        }
    }

    /// True when nothing is left.
    func atEnd() throws -> Bool {
        if plainPos < plain.count { return false }
        try refill()
        return plainPos == plain.count
    }

    private func refill() throws {
        plain.removeAll(keepingCapacity: true); plainPos = 0
        guard let d = dctx else {
            if !eof {
                let data = handle.readData(ofLength: 1 << 22)
                if data.isEmpty { eof = true } else { plain = [UInt8](data) }
            }
            return
        }
        let outCap = ZSTD_DStreamOutSize()
        plain = [UInt8](repeating: 0, count: outCap)
        var produced = 0
        while produced == 0 {
            if rawPos == raw.count {
                if eof { break }
                let data = handle.readData(ofLength: ZSTD_DStreamInSize())
                if data.isEmpty { eof = true; break }
                raw = [UInt8](data); rawPos = 0
            }
            let rawCount = raw.count
            try raw.withUnsafeBytes { rb in
                try plain.withUnsafeMutableBytes { pb in
                    var input = ZSTD_inBuffer(src: rb.baseAddress, size: rawCount, pos: rawPos)
                    var output = ZSTD_outBuffer(dst: pb.baseAddress, size: outCap, pos: 0)
                    let r = ZSTD_decompressStream(d, &output, &input)
                    if ZSTD_isError(r) != 0 { throw SmeltError("\(path): zstd: \(String(cString: ZSTD_getErrorName(r)))") }
                    rawPos = input.pos
                    produced = output.pos
                }
            }
        }
        plain.removeSubrange(produced...)
    }
}
