import Foundation
import SmeltFormats
import SmeltQuant

/// What a conversion wrote.
public struct ConvertSummary: Sendable {
    public let tensors: Int
    public let parameters: Int
    public let bytes: Int
    public let seconds: Double
}

/// Converts row blocks of float32 into a ggml type, on several threads.
public enum RowEncoder {
    /// Encodes `rows` rows of `n` floats from `src` into `dst` as `type`.
    public static func encode(_ src: UnsafePointer<Float>, rows: Int, n: Int, type: GGMLType,
                              into dst: UnsafeMutableRawPointer, threads: Int) throws {
        if type == .f32 {
            memcpy(dst, src, rows * n * 4)
            return
        }
        guard let kernel = QuantRegistry.kernel(for: type), let rowBytes = type.rowBytes(n) else {
            throw SmeltError("cannot write type \(type) for rows of \(n) values")
        }
        let workers = max(1, min(threads, rows, (rows * n) / 65536 + 1))
        if workers == 1 {
            for r in 0..<rows { kernel.quantizeRow(src + r * n, dst + r * rowBytes, count: n, importance: nil) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = rows * w / workers, hi = rows * (w + 1) / workers
            for r in lo..<hi { kernel.quantizeRow(src + r * n, dst + r * rowBytes, count: n, importance: nil) }
        }
    }
}

/// Writes a `ConversionPlan` as a GGUF file, one tensor at a time, in row
/// chunks: memory stays bounded by a chunk, whatever the model's size.
public enum Converter {
    /// Floats per chunk (16 MiB of float32).
    static let chunkFloats = 4 << 20

    /// The files a conversion writes: `url`, or with `split` the shards gguf-py's writer
    /// (convert_hf_to_gguf.py --split-max-*) makes: `STEM-0000k-of-0000n.gguf`.
    public static func outputFiles(_ plan: ConversionPlan, to url: URL, split: GGUFSplit.Limit? = nil) throws -> [GGUFWriter.FilePlan] {
        let descs = plan.tensors.map { GGUFTensorDescriptor(name: $0.name, shape: $0.shape, type: $0.type) }
        if plan.vocabOnly {
            // write_vocab: header and metadata only (no tensor infos, no padding)
            guard split == nil else { throw SmeltError("splitting the vocabulary is not supported (--vocab-only with --split-max-*)") }
            return [GGUFWriter.FilePlan(url: url, metadata: plan.metadata, tensors: [], headerOnly: true)]
        }
        guard let split else { return [GGUFWriter.FilePlan(url: url, metadata: plan.metadata, tensors: descs)] }
        return try GGUFSplit.plan(url: url, metadata: plan.metadata, tensors: descs, limit: split, layout: .ggufPy)
    }

    /// NaN and infinity in a tensor are an error naming the tensor and its first bad row unless
    /// `allowNonfinite`.
    public static func write(_ plan: ConversionPlan, to url: URL, split: GGUFSplit.Limit? = nil,
                             threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                             progress: Bool = true, allowNonfinite: Bool = false) throws -> ConvertSummary {
        let start = Date()
        // nothing records a conversion's output: no SHA-256 while writing
        let writer = try GGUFWriter(files: outputFiles(plan, to: url, split: split), hashContent: false)
        let totalBytes = plan.tensors.reduce(0) { $0 + $1.byteCount }
        let bar = ProgressBar("convert", total: totalBytes, enabled: progress)
        var floatBuf = [Float](repeating: 0, count: 0)
        // two output buffers: a serial queue writes one while the workers fill the other
        var byteBufs = [UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64),
                        UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)]
        defer { byteBufs.forEach { $0.deallocate() } }
        let writeQueue = DispatchQueue(label: "smelt.convert.write")
        let pending = DispatchGroup()
        let freeBuffers = DispatchSemaphore(value: 2)   // writes finish in order: the oldest buffer frees first
        let writeError = FirstError()
        var next = 0
        func enqueue(_ bytes: UnsafeRawBufferPointer) {
            writeQueue.async(group: pending) {
                defer { freeBuffers.signal() }
                guard writeError.value == nil else { return }
                do { try writer.write(bytes) } catch { writeError.set(error) }
            }
        }
        do {
            for t in plan.tensors {
                let n = t.rowLength
                let rowsPerChunk = max(1, chunkFloats / max(n, 1))
                var row = 0
                while row < t.rowCount {
                    let rows = min(rowsPerChunk, t.rowCount - row)
                    if floatBuf.count < rows * n { floatBuf = [Float](repeating: 0, count: rows * n) }
                    let outBytes = GGUF.byteCount(shape: [n, rows], type: t.type)!
                    // the buffer of two chunks ago, once its write is done
                    freeBuffers.wait()
                    if let e = writeError.value { freeBuffers.signal(); throw e }
                    let i = next % 2
                    if byteBufs[i].count < outBytes {
                        byteBufs[i].deallocate()
                        byteBufs[i] = .allocate(byteCount: outBytes, alignment: 64)
                    }
                    let bp = byteBufs[i]
                    try floatBuf.withUnsafeMutableBufferPointer { fp in
                        // read, transform and encode row ranges on all threads
                        let workers = max(1, min(threads, rows, rows * n / 32768 + 1))
                        let rowBytes = outBytes / rows
                        let f = fp.baseAddress!, b = bp.baseAddress!
                        var failure: Error?
                        let lock = NSLock()
                        DispatchQueue.concurrentPerform(iterations: workers) { w in
                            let lo = rows * w / workers, hi = rows * (w + 1) / workers
                            guard hi > lo else { return }
                            t.readRows(row + lo, hi - lo, into: f + lo * n)
                            if !allowNonfinite, let (i, v) = NonFinite.first(f + lo * n, count: (hi - lo) * n) {
                                let e = NonFinite.weightError(file: t.sourceFile, tensor: t.sourceName, row: t.sourceRow(row + lo + i / n),
                                                              column: i % n, value: v)
                                lock.lock(); if failure == nil { failure = e }; lock.unlock()
                                return
                            }
                            do {
                                try RowEncoder.encode(f + lo * n, rows: hi - lo, n: n, type: t.type, into: b + lo * rowBytes, threads: 1)
                            } catch { lock.lock(); failure = error; lock.unlock() }
                        }
                        if let failure { freeBuffers.signal(); throw failure }
                    }
                    enqueue(UnsafeRawBufferPointer(rebasing: bp[0..<outBytes]))
                    next += 1
                    // release the source pages of the rows done (a permutation stays within a head:
                    // pages shared with rows still to come are simply read again)
                    if case let .checkpoint(src, rowMap, _, _) = t.origin, rowMap == nil, row + rows < t.rowCount {
                        src.dropPages(elements: (row * n)..<((row + rows) * n))
                    }
                    // stacked experts: release each expert once all its rows are written
                    if case let .experts(slices) = t.origin, t.shape.count > 1, t.shape[1] > 0 {
                        let per = t.shape[1]
                        for e in (row / per)..<min(slices.count, (row + rows) / per) where (e + 1) * per <= row + rows { slices[e].dropPages() }
                    }
                    row += rows
                    bar.advance(outBytes, detail: t.name)
                }
                if t.rowCount == 0 || n == 0 { freeBuffers.wait(); enqueue(UnsafeRawBufferPointer(start: nil, count: 0)) }
                if case let .checkpoint(src, _, _, _) = t.origin { src.dropPages() }
                if case let .experts(slices) = t.origin { slices.forEach { $0.dropPages() } }
            }
            pending.wait()
            if let e = writeError.value { throw e }
            try writer.finish()
        } catch {
            pending.wait()
            writer.abort()
            throw error
        }
        bar.finish()
        return ConvertSummary(tensors: plan.tensors.count, parameters: plan.tensors.reduce(0) { $0 + $1.elementCount },
                              bytes: totalBytes, seconds: Date().timeIntervalSince(start))
    }
}
