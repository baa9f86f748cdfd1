import CKernels
import Foundation
import Testing
@testable import WinnowCore

/// The GGUF reader against files written by the `gguf` package (scripts/reference/make_gguf_golden.py),
/// and against every kind of damage the format allows.
@Suite struct GGUFTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gguf")
    static let types = dir.appendingPathComponent("types.gguf")

    @Test func metadataOfEveryValueType() throws {
        let f = try GGUFFile(url: Self.types)
        #expect(f.version == 3 && f.alignment == 32)
        let m = f.metadata
        #expect(m["general.architecture"]?.string == "llama")
        #expect(m["test.u8"] == .uint(200) && m["test.i8"] == .int(-100))
        #expect(m["test.u16"] == .uint(60000) && m["test.i16"] == .int(-30000))
        #expect(m["test.u32"] == .uint(4_000_000_000) && m["test.i32"] == .int(-2_000_000_000))
        #expect(m["test.f32"] == .float(0.15625) && m["test.bool"] == .bool(true))
        #expect(m["test.string"]?.string == "héllo")
        #expect(m["test.u64"] == .uint(1 << 63 + 5) && m["test.i64"] == .int(-(1 << 62)))
        #expect(m["test.f64"] == .float(1e-300))
        #expect(m["test.strings"]?.array?.compactMap(\.string) == ["a", "Ġb", "c d"])
        #expect(m["test.ints"]?.array?.compactMap(\.int) == [1, 2, 3])
        #expect(f.keys.first == "general.architecture")
    }

    @Test(arguments: ["t_f32", "t_f16", "t_bf16", "t_q8_0", "t_q4_0", "t_q4_1"])
    func dequantisationEqualsTheGGUFPackage(_ name: String) throws {
        let f = try GGUFFile(url: Self.types)
        let golden = try SafeTensorsFile(url: Self.dir.appendingPathComponent("types-golden.safetensors")).tensor(name)
        let t = try f.tensor(name)
        #expect(t.shape == [2, 64] && f.info(name)?.ggmlShape == [64, 2])
        // The same arithmetic as gguf-py (one or two float32 roundings): equal bit for bit.
        #expect(t.values.map(\.bitPattern) == golden.values.map(\.bitPattern), "\(name) differs from gguf's dequantisation")
    }

    @Test func halfPrecisionEdgeCases() {
        #expect(ck_half_to_float(0x0001) == Float(bitPattern: 0x3380_0000))   // smallest subnormal, 2^-24
        #expect(ck_half_to_float(0x03ff) == 0.000060975552)                     // largest subnormal
        #expect(ck_half_to_float(0x7bff) == 65504)
        #expect(ck_half_to_float(0xfc00) == -.infinity)
        #expect(ck_half_to_float(0x7e00).isNaN)
        #expect(ck_half_to_float(0x8000).sign == .minus && ck_half_to_float(0x8000) == 0)
    }

    @Test func anUnsupportedTypeIsNamed() throws {
        let f = try GGUFFile(url: Self.types)
        #expect(f.info("t_q5_0")?.type == .q5_0)
        let message = try #require(error { _ = try f.tensor("t_q5_0") })
        #expect(message.contains("t_q5_0") && message.contains("Q5_0") && message.contains("not supported"))
    }

    /// Damaged copies of the fixture: each is refused with one message naming the file and what is wrong.
    @Test func damagedFilesAreRefusedWithAClearMessage() throws {
        let good = try Data(contentsOf: Self.types)
        let f = try GGUFFile(url: Self.types)
        let firstInfo = try #require(f.info("t_f32"))
        func patched(_ at: Int, _ bytes: [UInt8]) -> Data {
            var d = good
            d.replaceSubrange(at..<(at + bytes.count), with: bytes)
            return d
        }
        func le(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        let cases: [(String, Data, String)] = [
            ("bad magic", patched(0, Array("GGML".utf8)), "bad magic"),
            ("unknown version", patched(4, [9, 0, 0, 0]), "version 9"),
            ("truncated header", good.prefix(40), "truncated"),
            ("truncated data", good.prefix(firstInfo.end - 1), "past the end of the file"),
            ("tensor count too large", patched(8, le(1 << 40)), "tensor_count"),
            ("key count too large", patched(16, le(1 << 40)), "metadata_kv_count"),
            ("empty file", Data(), "too short"),
        ]
        for (what, data, needle) in cases {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-gguf-\(UUID().uuidString.prefix(8)).gguf")
            try data.write(to: url)
            defer { try? FileManager.default.removeItem(at: url) }
            let message = error { _ = try GGUFFile(url: url) }
            #expect(message?.contains(url.path) == true && message?.contains(needle) == true, "\(what): \(message ?? "accepted")")
        }
    }

    @Test func everyPrefixThatCutsDataIsRefused() throws {
        let good = try Data(contentsOf: Self.types)
        let dataEnd = try GGUFFile(url: Self.types).tensors.map(\.end).max()!     // padding may follow
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-gguf-prefix-\(UUID().uuidString.prefix(8)).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        for n in stride(from: 0, to: dataEnd, by: 7) {
            try good.prefix(n).write(to: url)
            #expect(error { _ = try GGUFFile(url: url) } != nil, "a \(n)-byte prefix was accepted")
        }
    }

    /// The WinnowError message of `body`, or nil when it succeeds (another error type fails the test).
    func error(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch let e as WinnowError { return e.description } catch {
            Issue.record("threw \(type(of: error)) instead of WinnowError: \(error)")
            return "\(error)"
        }
    }
}
