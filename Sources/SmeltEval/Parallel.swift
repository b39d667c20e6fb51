import Foundation

/// Runs loop bodies on several threads (Dispatch's pool), in contiguous chunks.
enum Parallel {
    /// Calls `body(worker, i)` for every `i` in `0..<n`, on up to `threads`
    /// workers (`worker` in `0..<threads`, for per-worker scratch memory).
    static func forEach(_ n: Int, threads: Int, _ body: (Int, Int) -> Void) {
        if n <= 0 { return }
        let t = max(1, min(threads, n))
        if t == 1 { for i in 0..<n { body(0, i) }; return }
        let next = Counter()
        DispatchQueue.concurrentPerform(iterations: t) { w in
            while true {
                let i = next.increment()
                if i >= n { break }
                body(w, i)
            }
        }
    }

    /// Calls `body(worker, range)` over `0..<n` split into `threads` contiguous ranges.
    static func ranges(_ n: Int, threads: Int, _ body: (Int, Range<Int>) -> Void) {
        if n <= 0 { return }
        let t = max(1, min(threads, n))
        if t == 1 { body(0, 0..<n); return }
        DispatchQueue.concurrentPerform(iterations: t) { w in
            let lo = n * w / t, hi = n * (w + 1) / t
            if lo < hi { body(w, lo..<hi) }
        }
    }
}

/// A lock-protected counter handing out work items.
final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func increment() -> Int {
        lock.lock(); defer { lock.unlock() }
        let v = value; value += 1; return v
    }
}
