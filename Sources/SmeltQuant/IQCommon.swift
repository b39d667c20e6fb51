import SmeltFormats

// Shared helpers of the codebook ("iq") kernels: ggml's rounding, the
// quantization grids with their neighbour maps (iq2xs_init_impl /
// iq3xs_init_impl in ggml-quants.c), the neighbour searches and make_qp_quants.
// Everything here mirrors ggml's float arithmetic operation for operation
// (same order, no fused multiply-add) so that results are bit-identical.

/// ggml's super-block size.
let iqQK = 256

/// C `MAX(a, b)` = `a > b ? a : b` (differs from Swift's `max` for ±0 and NaN).
@inline(__always) func iqMax(_ a: Float, _ b: Float) -> Float { a > b ? a : b }

/// C `MAX`/`MIN` on ints.
@inline(__always) func iqClamp(_ v: Int32, _ lo: Int32, _ hi: Int32) -> Int32 {
    let m = hi < v ? hi : v          // MIN(hi, v)
    return lo > m ? lo : m           // MAX(lo, m)
}

@inline(__always) func iqLoadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    FloatFormats.halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

@inline(__always) func iqStoreHalf(_ p: UnsafeMutableRawPointer, _ offset: Int, _ f: Float) {
    p.storeBytes(of: FloatFormats.floatToHalf(f).littleEndian, toByteOffset: offset, as: UInt16.self)
}

/// A codebook's grid as ggml's quantizers see it (each coordinate `2*level + 1`),
/// the map from every packed level vector to its grid index (or, negated, to its
/// neighbour list), and the neighbour lists. Immutable once built.
struct IQGridTables: @unchecked Sendable {
    /// `gridSize * dim` signed bytes (ggml's `kgrid_q2xs` / `kgrid_q3xs`).
    let grid: UnsafePointer<Int8>
    /// ggml's `kmap`: grid index, or `-(offset + 1)` into `neighbours`.
    let map: UnsafePointer<Int32>
    /// ggml's `kneighbors`: at each offset a count, then that many grid indices.
    let neighbours: UnsafePointer<UInt16>
    /// The grid points of `neighbours`, in its order: at `dim * j` the `dim` coordinates of
    /// grid point `neighbours[j]` (zeros at the count entries), then 16 zero points of slack.
    /// The native kernels (FastKernels) read a neighbour list's candidates from here as
    /// contiguous vectors.
    let neighbourPoints: UnsafePointer<Int8>
    let gridSize: Int

    /// The neighbour list of the off-grid level vector `u` (ggml's `kneighbors - kmap[u] - 1`).
    @inline(__always) func neighbourList(_ u: Int) -> UnsafePointer<UInt16> {
        neighbours + Int(-map[u] - 1)
    }

    /// Builds the grid and neighbour map as ggml's `iq2xs_init_impl` (dim 8,
    /// 2 bits per level) or `iq3xs_init_impl` (dim 4, 3 bits per level) does.
    /// Neighbours of an off-grid point are all grid points at the `nwant`
    /// smallest distinct squared distances, ordered by (distance, index) —
    /// exactly the prefix of ggml's qsort with its total-order comparator.
    static func build(kgrid: [UInt16], dim: Int, bits: Int, nwant: Int) -> IQGridTables {
        let gridSize = kgrid.count
        let levelMask = (1 << bits) - 1
        let kmapSize = dim == 8 ? 43692 : 4096
        let grid = UnsafeMutablePointer<Int8>.allocate(capacity: gridSize * dim)
        for k in 0..<gridSize {
            for i in 0..<dim {
                let l = (Int(kgrid[k]) >> (bits * i)) & levelMask
                grid[dim * k + i] = Int8(2 * l + 1)
            }
        }
        let map = UnsafeMutablePointer<Int32>.allocate(capacity: kmapSize)
        map.initialize(repeating: -1, count: kmapSize)
        for k in 0..<gridSize {
            var index = 0
            for i in 0..<dim { index |= ((Int(grid[dim * k + i]) - 1) / 2) << (bits * i) }
            map[index] = Int32(k)
        }
        // Squared distance between two half level vectors (dim/2 coordinates each):
        // d2(i, j) = half[lo(i)][lo(j)] + half[hi(i)][hi(j)].
        let halfBits = bits * dim / 2
        let halfCount = 1 << halfBits
        let halfMask = halfCount - 1
        let half = UnsafeMutablePointer<Int32>.allocate(capacity: halfCount * halfCount)
        defer { half.deallocate() }
        for a in 0..<halfCount {
            for b in 0..<halfCount {
                var d: Int32 = 0
                for c in 0..<(dim / 2) {
                    let la = (a >> (bits * c)) & levelMask, lb = (b >> (bits * c)) & levelMask
                    let diff = Int32(2 * (la - lb))
                    d += diff * diff
                }
                half[a * halfCount + b] = d
            }
        }
        // Grid point j's two half indices, and scratch for one point's distances.
        let gridLo = UnsafeMutablePointer<Int>.allocate(capacity: gridSize)
        let gridHi = UnsafeMutablePointer<Int>.allocate(capacity: gridSize)
        let dist = UnsafeMutablePointer<Int32>.allocate(capacity: gridSize)
        let mins = UnsafeMutablePointer<Int32>.allocate(capacity: nwant)
        defer { gridLo.deallocate(); gridHi.deallocate(); dist.deallocate(); mins.deallocate() }
        for j in 0..<gridSize {
            gridLo[j] = Int(kgrid[j]) & halfMask
            gridHi[j] = Int(kgrid[j]) >> halfBits
        }
        var list: [UInt16] = []
        list.reserveCapacity(kmapSize * 8)
        var i = 0
        while i < kmapSize {
            if map[i] >= 0 { i += 1; continue }
            let rowLo = half + (i & halfMask) * halfCount, rowHi = half + (i >> halfBits) * halfCount
            // The nwant smallest distinct distances, ascending, in mins[0..<nmins].
            var nmins = 0
            var worst = Int32.max   // mins[nwant - 1] once full
            var j = 0
            while j < gridSize {
                let d = rowLo[gridLo[j]] &+ rowHi[gridHi[j]]
                dist[j] = d
                j += 1
                if d > worst { continue }
                var p = 0
                while p < nmins && mins[p] < d { p += 1 }
                if p < nmins && mins[p] == d { continue }
                var q = nmins < nwant ? nmins : nwant - 1
                while q > p { mins[q] = mins[q - 1]; q -= 1 }
                mins[p] = d
                if nmins < nwant { nmins += 1 }
                if nmins == nwant { worst = mins[nwant - 1] }
            }
            let start = list.count
            map[i] = -Int32(start + 1)
            list.append(0)
            for m in 0..<nmins {
                let d = mins[m]
                j = 0
                while j < gridSize {
                    if dist[j] == d { list.append(UInt16(j)) }
                    j += 1
                }
            }
            list[start] = UInt16(list.count - start - 1)
            i += 1
        }
        let neighbours = UnsafeMutablePointer<UInt16>.allocate(capacity: list.count)
        neighbours.initialize(from: list, count: list.count)
        let points = UnsafeMutablePointer<Int8>.allocate(capacity: (list.count + 16) * dim)
        points.initialize(repeating: 0, count: (list.count + 16) * dim)
        var offset = 0
        while offset < list.count {
            let count = Int(list[offset])
            for j in (offset + 1)..<(offset + 1 + count) {
                for c in 0..<dim { points[dim * j + c] = grid[dim * Int(list[j]) + c] }
            }
            offset += count + 1
        }
        return IQGridTables(grid: grid, map: map, neighbours: neighbours, neighbourPoints: points, gridSize: gridSize)
    }

    /// iq2_xxs: `kgrid_2bit_256`, 2 distances.
    static let iq2xxs = build(kgrid: IQKGrids.kgrid2bit256, dim: 8, bits: 2, nwant: 2)
    /// iq2_xs: `kgrid_2bit_512`, 2 distances.
    static let iq2xs = build(kgrid: IQKGrids.kgrid2bit512, dim: 8, bits: 2, nwant: 2)
    /// iq2_s: `kgrid_2bit_1024`, 1 distance.
    static let iq2s = build(kgrid: IQKGrids.kgrid2bit1024, dim: 8, bits: 2, nwant: 1)
    /// iq1_s and iq1_m (shared, as in ggml): `kgrid_1bit_2048`, 3 distances.
    static let iq1 = build(kgrid: IQKGrids.kgrid1bit2048, dim: 8, bits: 2, nwant: 3)
    /// iq3_xxs: `kgrid_256`, 2 distances.
    static let iq3xxs = build(kgrid: IQKGrids.kgrid3bit256, dim: 4, bits: 3, nwant: 2)
    /// iq3_s: `kgrid_512`, 3 distances.
    static let iq3s = build(kgrid: IQKGrids.kgrid3bit512, dim: 4, bits: 3, nwant: 3)
}

/// Little-endian byte copies of the dequantization codebooks, built once.
enum IQDequantTables {
    static func bytes<T: FixedWidthInteger>(_ a: [T]) -> UnsafePointer<UInt8> {
        let n = MemoryLayout<T>.size
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: a.count * n)
        for (k, v) in a.enumerated() {
            for b in 0..<n { p[k * n + b] = UInt8(truncatingIfNeeded: v >> (8 * b)) }
        }
        return UnsafePointer(p)
    }
    static let iq2xxs = bytes(IQGrids.iq2xxsGrid)
    static let iq2xs = bytes(IQGrids.iq2xsGrid)
    static let iq2s = bytes(IQGrids.iq2sGrid)
    static let iq3xxs = bytes(IQGrids.iq3xxsGrid)
    static let iq3s = bytes(IQGrids.iq3sGrid)
    static let iq1s = bytes(IQGrids.iq1sGrid)
    static let ksigns = bytes(IQGrids.ksignsIQ2XS)
}

/// ggml `iq2_find_best_neighbour` (dim 8) / `iq3_find_best_neighbour` (dim 4):
/// the neighbour minimising the weighted squared error at `scale`; writes its
/// levels to `L` and returns its grid index.
@inline(__always)
func iqFindBestNeighbour(_ neighbours: UnsafePointer<UInt16>, _ grid: UnsafePointer<Int8>, dim: Int,
                         _ xval: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ scale: Float,
                         _ L: UnsafeMutablePointer<Int8>) -> Int {
    let num = Int(neighbours[0])
    var bestD2 = Float.greatestFiniteMagnitude
    var gridIndex = -1
    var j = 1
    while j <= num {
        let idx = Int(neighbours[j])
        let pg = grid + dim * idx
        var d2: Float = 0
        for i in 0..<dim {
            let q = Float(pg[i])
            let diff = scale * q - xval[i]
            d2 += weight[i] * diff * diff
        }
        if d2 < bestD2 { bestD2 = d2; gridIndex = idx }
        j += 1
    }
    // ggml asserts here (only reachable with NaN input); take the first neighbour instead.
    if gridIndex < 0 { gridIndex = Int(neighbours[1]) }
    let pg = grid + dim * gridIndex
    for i in 0..<dim { L[i] = (pg[i] - 1) / 2 }
    return gridIndex
}

/// Sign handling shared by iq2_xxs, iq2_xs and iq3_xxs: makes `xval = |x|` for
/// 8 values, and when an odd number is negative flips the least important one
/// back so the sign byte has even parity (ggml stores only 7 sign bits).
@inline(__always)
func iqEvenSigns(_ xb: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ xval: UnsafeMutablePointer<Float>) -> UInt8 {
    var nflip = 0
    var s: UInt8 = 0
    for i in 0..<8 {
        if xb[i] >= 0 {
            xval[i] = xb[i]
        } else {
            xval[i] = -xb[i]; nflip += 1; s |= UInt8(1 << i)
        }
    }
    if nflip % 2 != 0 {
        var imin = 0
        var mn = weight[0] * xb[0] * xb[0]
        for i in 1..<8 {
            let ax = weight[i] * xb[i] * xb[i]
            if ax < mn { mn = ax; imin = i }
        }
        xval[imin] = -xval[imin]
        s ^= UInt8(1 << imin)
    }
    return s & 127
}

/// Runs `body` with 4 KiB of stack scratch (per row, never per block on the heap).
/// Kernels carve it into disjoint typed regions at fixed 1 KiB offsets.
@inline(__always) func iqWithScratch(_ body: (UnsafeMutableRawPointer) -> Void) {
    withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 16) { body($0.baseAddress!) }
}

/// The row loop every grid IQ type shares: checks the row length (and the importance
/// weights when the type needs them, as ggml asserts), then quantizes each 256-value
/// super-block with `block(x, weights, y, tables, scratch)`.
@inline(__always)
func iqQuantizeRow(_ name: String, _ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int,
                   importance: UnsafePointer<Float>?, requiresImportance: Bool, tables: IQGridTables, blockBytes: Int,
                   _ block: (UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutableRawPointer, IQGridTables,
                             UnsafeMutableRawPointer) -> Void) {
    precondition(count % iqQK == 0, "\(name): row length must be a multiple of 256")
    if requiresImportance && importance == nil { preconditionFailure("\(name) requires importance weights (as ggml)") }
    iqWithScratch { scratch in
        for ibl in 0..<(count / iqQK) {
            block(src + iqQK * ibl, importance.map { $0 + iqQK * ibl }, dst + blockBytes * ibl, tables, scratch)
        }
    }
}

/// The sort of iq1_s / iq1_m: ggml qsorts (value, index) pairs comparing values
/// only. glibc's qsort is a stable merge sort for arrays this small, so equal
/// values keep index order; a stable insertion sort gives the same permutation.
@inline(__always)
func iqSortPairs(_ xb: UnsafePointer<Float>, _ n: Int, _ val: UnsafeMutablePointer<Float>, _ idx: UnsafeMutablePointer<Int32>) {
    for j in 0..<n { val[j] = xb[j]; idx[j] = Int32(j) }
    var j = 1
    while j < n {
        let v = val[j], ix = idx[j]
        var p = j
        while p > 0 && val[p - 1] > v {
            val[p] = val[p - 1]; idx[p] = idx[p - 1]
            p -= 1
        }
        val[p] = v; idx[p] = ix
        j += 1
    }
}

/// ggml `iq1_find_best_neighbour2`: the neighbour of an off-grid ternary vector
/// minimising the weighted squared error with values `xg[level]` at `scale`.
@inline(__always)
func iqFindBestNeighbour1(_ neighbours: UnsafePointer<UInt16>, _ grid: UnsafePointer<Int8>, _ gridSize: Int,
                          _ xval: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ scale: Float,
                          _ xg: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Int {
    let num = Int(neighbours[0])
    var bestScore = Float.greatestFiniteMagnitude
    var gridIndex = -1
    var j = 1
    while j <= num {
        let idx = Int(neighbours[j])
        let pg = grid + 8 * idx
        var d2: Float = 0
        for i in 0..<8 {
            let q = xg[Int((pg[i] - 1) / 2)]
            let w = weight[i]
            let diff = scale * q - xval[i]
            d2 += w * diff * diff
        }
        if d2 < bestScore { bestScore = d2; gridIndex = idx }
        j += 1
    }
    if gridIndex < 0 {
        // Only reachable with non-finite errors. ggml then scans the whole grid
        // (reading xval[grid index], past the group); we scan it with the group's values.
        for i in 0..<gridSize {
            let gi = grid + 8 * i
            var d2: Float = 0
            for k in 0..<8 {
                let w = weight[k]
                let q = xg[Int((gi[k] - 1) / 2)]
                let diff = scale * q - xval[k]
                d2 += w * diff * diff
            }
            if d2 < bestScore { bestScore = d2; gridIndex = i }
        }
        if gridIndex < 0 { gridIndex = Int(neighbours[1]) }
    }
    let pg = grid + 8 * gridIndex
    for i in 0..<8 { L[i] = (pg[i] - 1) / 2 }
    return gridIndex
}

/// The level search shared by iq2_xs and iq2_s (the same loop body in ggml's
/// `quantize_row_iq2_xs_impl` and `quantize_row_iq2_s_impl`, but for the zero threshold):
/// 16 magnitudes `xval` as two groups of 8 on the dim-8 grid `T` with levels 0...2, 19 trial
/// scales, neighbour search for groups off the grid, then a refinement. Leaves the levels in
/// `L` (`Laux` is scratch) and returns the scale, or nil when `max(xval) < zeroBelow`.
@inline(__always)
func iq2SearchScale16(_ xval: UnsafeMutablePointer<Float>, _ weight: UnsafeMutablePointer<Float>,
                      _ waux: UnsafeMutablePointer<Float>, _ L: UnsafeMutablePointer<Int8>,
                      _ Laux: UnsafeMutablePointer<Int8>, _ T: IQGridTables, zeroBelow: Float) -> Float? {
    let kMaxQ: Int32 = 3
    var isOnGrid = (true, true), isOnGridAux = (true, true)
    var max = xval[0]
    for i in 1..<16 { max = iqMax(max, xval[i]) }
    for i in 0..<16 { L[i] = 0 }
    if max < zeroBelow { return nil }
    var best: Float = 0
    var scale = max / Float(2 * kMaxQ - 1)
    isOnGrid = (true, true)
    for isi in -9...9 {
        let id = (Float(2 * kMaxQ - 1) + Float(isi) * 0.1) / max
        let thisScale = 1 / id
        for k in 0..<2 {
            for i in 0..<8 {
                let l = nearestInt(0.5 * (id * xval[8 * k + i] - 1))
                Laux[8 * k + i] = Int8(iqClamp(l, 0, kMaxQ - 1))
            }
            var u = 0
            for i in 0..<8 { u |= Int(Laux[8 * k + i]) << (2 * i) }
            var on = true
            if T.map[u] < 0 {
                on = false
                _ = iqFindBestNeighbour(T.neighbourList(u), T.grid, dim: 8, xval + 8 * k, waux + 8 * k,
                                        thisScale, Laux + 8 * k)
            }
            if k == 0 { isOnGridAux.0 = on } else { isOnGridAux.1 = on }
        }
        var sumqx: Float = 0, sumq2: Float = 0
        for i in 0..<16 {
            let w = weight[i]
            let q = Float(2 * Int32(Laux[i]) + 1)
            sumqx += w * xval[i] * q
            sumq2 += w * q * q
        }
        if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
            scale = sumqx / sumq2; best = scale * sumqx
            for i in 0..<16 { L[i] = Laux[i] }
            isOnGrid = isOnGridAux
        }
    }
    let nNotOnGrid = (isOnGrid.0 ? 0 : 1) + (isOnGrid.1 ? 0 : 1)
    if nNotOnGrid > 0 && scale > 0 {
        let id = 1 / scale
        for k in 0..<2 {
            if k == 0 ? isOnGrid.0 : isOnGrid.1 { continue }
            var u = 0
            for i in 0..<8 {
                let l = iqClamp(nearestInt(0.5 * (id * xval[8 * k + i] - 1)), 0, kMaxQ - 1)
                u |= Int(l) << (2 * i)
                L[8 * k + i] = Int8(l)
            }
            if T.map[u] < 0 {
                _ = iqFindBestNeighbour(T.neighbourList(u), T.grid, dim: 8, xval + 8 * k, waux + 8 * k,
                                        scale, L + 8 * k)
            }
        }
        var sumqx: Float = 0, sumq2: Float = 0
        for i in 0..<16 {
            let w = weight[i]
            let q = Float(2 * Int32(L[i]) + 1)
            sumqx += w * xval[i] * q
            sumq2 += w * q * q
        }
        if sumq2 > 0 { scale = sumqx / sumq2 }
    }
    return scale
}
