import CKernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The ggml tensor types a GGUF file can hold. Winnow dequantises F32, F16, BF16, Q8_0, Q4_0 and Q4_1;
/// the others are named in errors.
package enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30

    /// ggml's name for the type (`Q4_1`).
    package var name: String { String(describing: self).uppercased() }

    /// Whether Winnow dequantises this type.
    package var isReadable: Bool { [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1].contains(self) }

    /// Elements per block and bytes per block (ggml's block structs), so that every tensor's byte range
    /// is checked, read or not.
    package var layout: (block: Int, bytes: Int) {
        switch self {
        case .f32, .i32: (1, 4)
        case .f16, .bf16, .i16: (1, 2)
        case .i8: (1, 1)
        case .i64, .f64: (1, 8)
        case .q8_0: (32, 34)    // f16 scale, 32 x int8
        case .q4_0: (32, 18)    // f16 scale, 16 bytes of nibbles
        case .q4_1: (32, 20)    // f16 scale, f16 minimum, 16 bytes of nibbles
        case .q5_0: (32, 22)
        case .q5_1: (32, 24)
        case .q8_1: (32, 36)
        case .iq4_nl: (32, 18)
        case .q2_k: (256, 84)
        case .q3_k: (256, 110)
        case .q4_k: (256, 144)
        case .q5_k: (256, 176)
        case .q6_k: (256, 210)
        case .q8_k: (256, 292)
        case .iq2_xxs: (256, 66)
        case .iq2_xs: (256, 74)
        case .iq3_xxs: (256, 98)
        case .iq1_s: (256, 50)
        case .iq3_s: (256, 110)
        case .iq2_s: (256, 82)
        case .iq4_xs: (256, 136)
        case .iq1_m: (256, 56)
        }
    }
}

/// A metadata value of a GGUF file.
package enum GGUFValue: Sendable, Equatable {
    case uint(UInt64), int(Int64), float(Double), bool(Bool), string(String)
    /// An array: its element type's code, then the values.
    case array(UInt32, [GGUFValue])

    package var int: Int? {
        switch self {
        case let .uint(v): Int(exactly: v)
        case let .int(v): Int(exactly: v)
        default: nil
        }
    }

    package var double: Double? {
        switch self {
        case let .float(v): v
        case let .uint(v): Double(v)
        case let .int(v): Double(v)
        default: nil
        }
    }

    package var string: String? { if case let .string(s) = self { s } else { nil } }
    package var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    package var array: [GGUFValue]? { if case let .array(_, a) = self { a } else { nil } }

    /// A short rendering for `winnow inspect` (long arrays abbreviated).
    package var summary: String {
        switch self {
        case let .uint(v): String(v)
        case let .int(v): String(v)
        case let .float(v): String(v)
        case let .bool(b): String(b)
        case let .string(s): s.count > 80 ? "\"\(s.prefix(77))...\" (\(s.count) characters)" : "\"\(s)\""
        case let .array(_, a):
            a.count > 6 ? "[" + a.prefix(4).map(\.summary).joined(separator: ", ") + ", ... ] (\(a.count) values)"
                : "[" + a.map(\.summary).joined(separator: ", ") + "]"
        }
    }
}

/// One tensor of a GGUF file.
package struct GGUFTensorInfo: Sendable {
    package let name: String
    /// ggml's dimensions, fastest first (ne[0] is the row length).
    package let ggmlShape: [Int]
    package let type: GGMLType
    /// Byte range in the file.
    package let begin: Int, end: Int

    /// The shape in PyTorch's order (slowest first): [ne1, ne0] for a matrix.
    package var shape: [Int] { ggmlShape.reversed() }
    package var count: Int { ggmlShape.reduce(1, *) }
}

/// A read-only, memory-mapped GGUF file (versions 2 and 3): metadata, tensor infos and tensors
/// dequantised to Float32. Every count, length and offset is checked against the file before use, so
/// a malformed file is an error naming the file and the key or tensor, never a crash or a huge
/// allocation.
///
///     let file = try GGUFFile(url: URL(fileURLWithPath: "model.gguf"))
///     file.metadata["general.architecture"]?.string          // "llama"
///     let w = try file.tensor("blk.0.attn_q.weight")          // [576, 576] Float32
package final class GGUFFile: @unchecked Sendable {
    package let url: URL
    package let version: UInt32
    /// Metadata keys in file order, and their values.
    package let keys: [String]
    package let metadata: [String: GGUFValue]
    /// Tensors in file order.
    package let tensors: [GGUFTensorInfo]
    package let alignment: Int
    private let byName: [String: Int]
    private let map: UnsafeRawPointer
    private let size: Int

    package init(url: URL) throws {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FileManager.default.fileExists(atPath: path)
                ? WinnowError.invalidFile(path: path, line: nil, reason: "cannot open: \(String(cString: strerror(errno)))")
                : WinnowError.missingFile(path: path, reason: "no such file")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw WinnowError.invalidFile(path: path, line: nil, reason: "cannot stat") }
        let size = Int(st.st_size)
        guard size >= 24 else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "not a GGUF file: \(size) bytes, too short for the header")
        }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "cannot memory-map: \(String(cString: strerror(errno)))")
        }
        map = UnsafeRawPointer(m)
        self.size = size
        do {
            var r = Reader(base: map, size: size, path: path)
            guard r.bytes(4) == Array("GGUF".utf8) else {
                throw WinnowError.invalidFile(path: path, line: nil, reason: "not a GGUF file (bad magic; expected 'GGUF')")
            }
            version = try r.u32("version")
            guard version == 2 || version == 3 else {
                throw WinnowError.invalidFile(path: path, line: nil, reason: "GGUF version \(version) is not supported (2 and 3 are)")
            }
            let tensorCount = try r.count("tensor_count", each: 24)
            let kvCount = try r.count("metadata_kv_count", each: 12)
            var keys: [String] = [], metadata: [String: GGUFValue] = [:]
            for i in 0..<kvCount {
                let key = try r.string("metadata key \(i)")
                let type = try r.u32("key '\(key)': type")
                metadata[key] = try r.value(type, key: key, depth: 0)
                keys.append(key)
            }
            self.keys = keys
            self.metadata = metadata
            var align = 32
            if let a = metadata["general.alignment"] {
                guard let v = a.int, v > 0, v & (v - 1) == 0, v <= 1 << 20 else {
                    throw WinnowError.invalidFile(path: path, line: nil, reason: "key 'general.alignment': \(a.summary) is not a power of two from 1 to 2^20")
                }
                align = v
            }
            alignment = align
            var infos: [(String, [Int], GGMLType, Int)] = []
            for i in 0..<tensorCount {
                let name = try r.string("tensor \(i): name")
                let nDims = try r.u32("tensor '\(name)': n_dims")
                guard (1...4).contains(nDims) else {
                    throw WinnowError.invalidTensor(path: path, tensor: name, reason: "\(nDims) dimensions (1 to 4 are allowed)")
                }
                var dims: [Int] = [], numel = 1
                for _ in 0..<nDims {
                    let d = try r.u64("tensor '\(name)': dimension")
                    guard d <= UInt64(size), case let (p, false) = numel.multipliedReportingOverflow(by: Int(d)), p <= 8 * size else {
                        throw WinnowError.invalidTensor(path: path, tensor: name, reason: "dimension \(d) is larger than the file")
                    }
                    dims.append(Int(d)); numel = p
                }
                let code = try r.u32("tensor '\(name)': type")
                guard let type = GGMLType(rawValue: code) else {
                    throw WinnowError.invalidTensor(path: path, tensor: name, reason: "unknown ggml type \(code)")
                }
                let offset = try r.u64("tensor '\(name)': offset")
                guard offset <= UInt64(size) else {
                    throw WinnowError.invalidTensor(path: path, tensor: name, reason: "offset \(offset) is past the end of the file (\(size) bytes)")
                }
                infos.append((name, dims, type, Int(offset)))
            }
            let dataStart = (r.offset + align - 1) / align * align
            var tensors: [GGUFTensorInfo] = [], index: [String: Int] = [:]
            for (name, dims, type, offset) in infos {
                guard index[name] == nil else { throw WinnowError.invalidTensor(path: path, tensor: name, reason: "appears twice") }
                guard offset % align == 0 else {
                    throw WinnowError.invalidTensor(path: path, tensor: name, reason: "offset \(offset) is not a multiple of the alignment \(align)")
                }
                let numel = dims.reduce(1, *)
                let (block, per) = type.layout
                guard dims[0] % block == 0 else {
                    throw WinnowError.invalidTensor(path: path, tensor: name, reason: "rows of \(dims[0]) are not whole \(type.name) blocks of \(block)")
                }
                guard case let (bytes, false) = (numel / block).multipliedReportingOverflow(by: per) else {
                    throw WinnowError.invalidTensor(path: path, tensor: name, reason: "shape \(dims) is larger than the file")
                }
                let begin = dataStart + offset
                guard begin <= size, bytes <= size - begin else {
                    throw WinnowError.invalidTensor(path: path, tensor: name, reason:
                        "data [\(begin), \(begin + bytes)) runs past the end of the file (\(size) bytes)")
                }
                index[name] = tensors.count
                tensors.append(GGUFTensorInfo(name: name, ggmlShape: dims, type: type, begin: begin, end: begin + bytes))
            }
            let sorted = tensors.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end {
                throw WinnowError.invalidTensor(path: path, tensor: b.name, reason: "data overlaps tensor '\(a.name)'")
            }
            self.tensors = tensors
            byName = index
        } catch {
            munmap(m, size)
            throw error
        }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: map), size) }

    /// The tensor named `name`, or nil.
    package func info(_ name: String) -> GGUFTensorInfo? { byName[name].map { tensors[$0] } }

    /// Reads and dequantises a tensor to Float32, shaped slowest-first (PyTorch's order).
    ///
    /// - Throws: `WinnowError.invalidTensor` for a missing tensor or a type Winnow does not read.
    package func tensor(_ name: String) throws -> Tensor {
        guard let info = info(name) else {
            throw WinnowError.invalidTensor(path: url.path, tensor: name, reason: "missing from the file")
        }
        return try tensor(info)
    }

    /// Reads and dequantises `info` to Float32.
    package func tensor(_ info: GGUFTensorInfo) throws -> Tensor {
        guard info.type.isReadable else {
            throw WinnowError.invalidTensor(path: url.path, tensor: info.name, reason:
                "type \(info.type.name) is not supported (F32, F16, BF16, Q8_0, Q4_0 and Q4_1 are)")
        }
        var t = Tensor(uninitializedShape: info.shape)
        let n = info.count, src = map + info.begin, dst = t.mptr
        switch info.type {
        case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * n)
        case .f16: ck_dequant_f16(dst, src, n)
        case .bf16: ck_dequant_bf16(dst, src, n)
        case .q8_0: ck_dequant_q8_0(dst, src, n)
        case .q4_0: ck_dequant_q4_0(dst, src, n)
        case .q4_1: ck_dequant_q4_1(dst, src, n)
        default: preconditionFailure("unreachable: layout checked above")
        }
        return t
    }

    /// A bounds-checked little-endian cursor over the mapped file.
    struct Reader {
        let base: UnsafeRawPointer
        let size: Int
        let path: String
        var offset = 0

        func truncated(_ what: String) -> WinnowError {
            .invalidFile(path: path, line: nil, reason: "truncated: \(what) runs past the end of the file (\(size) bytes)")
        }

        mutating func bytes(_ n: Int) -> [UInt8] {
            guard n <= size - offset else { return [] }
            defer { offset += n }
            return Array(UnsafeRawBufferPointer(start: base + offset, count: n))
        }

        mutating func load<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
            guard MemoryLayout<T>.size <= size - offset else { throw truncated(what) }
            defer { offset += MemoryLayout<T>.size }
            return T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
        }

        mutating func u32(_ what: String) throws -> UInt32 { try load(UInt32.self, what) }
        mutating func u64(_ what: String) throws -> UInt64 { try load(UInt64.self, what) }

        /// A count of items at least `each` bytes long: refused when the file could not hold them.
        mutating func count(_ what: String, each: Int) throws -> Int {
            let n = try u64(what)
            guard n <= UInt64((size - offset) / max(1, each)) else {
                throw WinnowError.invalidFile(path: path, line: nil, reason: "truncated or damaged: \(what) \(n) is more than the file can hold")
            }
            return Int(n)
        }

        mutating func string(_ what: String) throws -> String {
            let n = try u64("\(what): length")
            guard n <= UInt64(size - offset) else { throw truncated("\(what) (\(n) bytes)") }
            let s = String(decoding: UnsafeRawBufferPointer(start: base + offset, count: Int(n)), as: UTF8.self)
            offset += Int(n)
            return s
        }

        mutating func value(_ type: UInt32, key: String, depth: Int) throws -> GGUFValue {
            let what = "key '\(key)'"
            switch type {
            case 0: return .uint(UInt64(try load(UInt8.self, what)))
            case 1: return .int(Int64(try load(Int8.self, what)))
            case 2: return .uint(UInt64(try load(UInt16.self, what)))
            case 3: return .int(Int64(try load(Int16.self, what)))
            case 4: return .uint(UInt64(try load(UInt32.self, what)))
            case 5: return .int(Int64(try load(Int32.self, what)))
            case 6: return .float(Double(Float(bitPattern: try load(UInt32.self, what))))
            case 7:
                let b = try load(UInt8.self, what)
                guard b <= 1 else { throw WinnowError.invalidFile(path: path, line: nil, reason: "\(what): bool value \(b)") }
                return .bool(b == 1)
            case 8: return .string(try string(what))
            case 9:
                guard depth < 2 else { throw WinnowError.invalidFile(path: path, line: nil, reason: "\(what): arrays nested too deep") }
                let elementType = try u32("\(what): array type")
                guard elementType <= 12 else {
                    throw WinnowError.invalidFile(path: path, line: nil, reason: "\(what): unknown array element type \(elementType)")
                }
                let n = try count("\(what): array length", each: [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8][Int(elementType)])
                var values: [GGUFValue] = []
                values.reserveCapacity(n)
                for _ in 0..<n { values.append(try value(elementType, key: key, depth: depth + 1)) }
                return .array(elementType, values)
            case 10: return .uint(try load(UInt64.self, what))
            case 11: return .int(try load(Int64.self, what))
            case 12: return .float(Double(bitPattern: try load(UInt64.self, what)))
            default:
                throw WinnowError.invalidFile(path: path, line: nil, reason: "\(what): unknown value type \(type)")
            }
        }
    }
}
