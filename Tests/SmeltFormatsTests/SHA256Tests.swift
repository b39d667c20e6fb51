import CSmeltKernels
import Foundation
import XCTest
@testable import SmeltFormats

/// SHA-256: FIPS 180-4 vectors, the SHA-extension path against the portable one, streaming.
final class SHA256Tests: XCTestCase {
    override func tearDown() { smelt_sha256_force_portable(0) }

    func vectors() {
        XCTAssertEqual(SHA256Hasher.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256Hasher.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256Hasher.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var h = SHA256Hasher()
        let a = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(a) }
        XCTAssertEqual(h.finalize(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testVectorsOnBothPaths() {
        smelt_sha256_force_portable(1); vectors()
        smelt_sha256_force_portable(0); vectors()
        if smelt_cpu_has_sha() == 0 { print("note: this CPU has no SHA extensions; only the portable path ran") }
    }

    func testStreamingInPiecesEqualsOneShotOnBothPaths() {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<40 {
            let n = Int.random(in: 0...5000, using: &g)
            let data = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
            smelt_sha256_force_portable(1)
            let portable = SHA256Hasher.hex(data)
            smelt_sha256_force_portable(0)
            XCTAssertEqual(SHA256Hasher.hex(data), portable, "length \(n)")
            var h = SHA256Hasher(), i = 0
            while i < n { let k = min(n - i, Int.random(in: 1...200, using: &g)); h.update(Array(data[i..<(i + k)])); i += k }
            XCTAssertEqual(h.finalize(), portable, "pieces, length \(n)")
        }
    }

    func testFileDigestAndOutputFileDigestAgree() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smelt-sha-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let u = dir.appendingPathComponent("f.bin")
        let out = try OutputFile(url: u, bufferSize: 1000)
        var all: [UInt8] = []
        for i in 0..<50 { let c = [UInt8](repeating: UInt8(i), count: i * 97); all += c; try out.write(c) }
        try out.commit()
        XCTAssertEqual(out.sha256, SHA256Hasher.hex(all))
        XCTAssertEqual(try SHA256Hasher.hashFile(u), SHA256Hasher.hex(all))
    }

    /// Full buffers are hashed on another thread while they are written: the digest is still
    /// the content's, in order, with the default 8 MiB buffer and with 1 MiB buffers, and the
    /// bytes on disk are unchanged.
    func testDigestOfBuffersHashedWhileWritten() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smelt-sha-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SystemRandomNumberGenerator()
        let all = (0..<(21 << 20) + 12_345).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for size in [8 << 20, 1 << 20] {
            let u = dir.appendingPathComponent("f\(size).bin")
            let out = try OutputFile(url: u, bufferSize: size)
            var i = 0
            while i < all.count {
                let k = min(all.count - i, Int.random(in: 1...(3 << 20), using: &rng))
                try all[i..<(i + k)].withUnsafeBytes { try out.write($0) }
                i += k
            }
            try out.commit()
            XCTAssertEqual(out.sha256, SHA256Hasher.hex(all), "buffer \(size)")
            XCTAssertEqual(try Data(contentsOf: u), Data(all), "buffer \(size)")
        }
    }

    /// Runs that record nothing skip the digest: same bytes on disk, no `sha256`.
    func testOutputFileWithoutDigest() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smelt-sha-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let u = dir.appendingPathComponent("f.bin")
        let out = try OutputFile(url: u, bufferSize: 1000, hashContent: false)
        var all: [UInt8] = []
        for i in 0..<50 { let c = [UInt8](repeating: UInt8(i), count: i * 97); all += c; try out.write(c) }
        try out.commit()
        XCTAssertNil(out.sha256)
        XCTAssertEqual(try Data(contentsOf: u), Data(all))
    }

    /// A write that fails on the background thread (here: past the process's file-size limit)
    /// surfaces at a later write or at commit, and leaves nothing behind.
    func testBackgroundWriteErrorLeavesNothing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smelt-sha-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var old = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old), 0)
        let oldSignal = signal(SIGXFSZ, SIG_IGN)
        var small = old
        small.rlim_cur = 3 << 20
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &small), 0)
        defer { var o = old; _ = setrlimit(Int32(RLIMIT_FSIZE.rawValue), &o); signal(SIGXFSZ, oldSignal) }
        let u = dir.appendingPathComponent("big.bin")
        let out = try OutputFile(url: u, bufferSize: 1 << 20)
        let chunk = [UInt8](repeating: 7, count: 256 << 10)
        var thrown: Error? = nil
        do {
            for _ in 0..<40 { try out.write(chunk) }
            try out.commit()
        } catch { thrown = error }
        XCTAssertNotNil(thrown, "10 MiB past a 3 MiB limit must fail")
        XCTAssertTrue("\(thrown.map { "\($0)" } ?? "")".contains(u.path), "the error names the file: \(String(describing: thrown))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: u.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "temporary file removed")
    }
}
