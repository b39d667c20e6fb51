// A hash table from byte strings to small integers, looked up by pointer and length so that
// tokenization never allocates strings on its hot path.

final class ByteTable {
    private(set) var blob: [UInt8] = []
    private(set) var starts: [Int] = []
    private(set) var lengths: [Int] = []
    private var slots: [Int32]      // entry index + 1, 0 = empty
    private var hashes: [UInt64] = []
    private var mask: Int

    init(capacity: Int = 16) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [Int32](repeating: 0, count: n)
        mask = n - 1
    }

    var count: Int { starts.count }

    @inline(__always) static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for i in 0..<n { h = (h ^ UInt64(p[i])) &* 0x100000001b3 }
        return h ^ (h >> 29)
    }

    /// The index of a byte string, or -1.
    @inline(__always) func find(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        let h = ByteTable.hash(p, n)
        var s = Int(truncatingIfNeeded: h) & mask
        return blob.withUnsafeBufferPointer { b in
            while true {
                let e = Int(slots[s])
                if e == 0 { return -1 }
                let idx = e - 1
                if hashes[idx] == h && lengths[idx] == n {
                    let st = starts[idx]
                    var same = true
                    for i in 0..<n where b[st + i] != p[i] { same = false; break }
                    if same { return idx }
                }
                s = (s + 1) & mask
            }
        }
    }

    func find(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return withUnsafePointer(to: UInt8(0)) { find($0, 0) } }
            return find(base, b.count)
        }
    }

    func find(_ s: String) -> Int { find(Array(s.utf8)) }

    /// Adds a byte string if absent; returns its index.
    @discardableResult
    func insert(_ bytes: [UInt8]) -> Int {
        let existing = find(bytes)
        if existing >= 0 { return existing }
        if (count + 1) * 2 > slots.count { grow() }
        let idx = count
        let h: UInt64 = bytes.withUnsafeBufferPointer { b in
            b.baseAddress.map { ByteTable.hash($0, b.count) } ?? ByteTable.hash(UnsafePointer(bitPattern: 1)!, 0)
        }
        starts.append(blob.count)
        lengths.append(bytes.count)
        hashes.append(h)
        blob.append(contentsOf: bytes)
        place(idx, h)
        return idx
    }

    private func place(_ idx: Int, _ h: UInt64) {
        var s = Int(truncatingIfNeeded: h) & mask
        while slots[s] != 0 { s = (s + 1) & mask }
        slots[s] = Int32(idx + 1)
    }

    private func grow() {
        let n = slots.count * 2
        slots = [Int32](repeating: 0, count: n)
        mask = n - 1
        for i in 0..<count { place(i, hashes[i]) }
    }

    func bytes(_ idx: Int) -> ArraySlice<UInt8> { blob[starts[idx]..<(starts[idx] + lengths[idx])] }
}

/// An element of `Heap`: `before(a, b)` is true when a must be popped before b.
protocol HeapItem {
    static func before(_ a: Self, _ b: Self) -> Bool
}

/// A binary heap popping the element that comes first by `T.before`.
struct Heap<T: HeapItem> {
    var items: [T] = []
    @inline(__always) func before(_ a: T, _ b: T) -> Bool { T.before(a, b) }

    var isEmpty: Bool { items.isEmpty }
    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ x: T) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if before(items[i], items[p]) { items.swapAt(i, p); i = p } else { break }
        }
    }

    mutating func pop() -> T {
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && before(items[l], items[m]) { m = l }
                if r < n && before(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}
