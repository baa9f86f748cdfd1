import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Element types of the safetensors format.
package enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
    case u16 = "U16", u32 = "U32", u64 = "U64", f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"

    /// Bytes per element.
    package var size: Int {
        switch self {
        case .f64, .i64, .u64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: 1
        }
    }
}

/// One entry of a safetensors header.
package struct SafeTensorsEntry: Sendable {
    package let name: String
    package let dtype: SafeTensorsDType
    package let shape: [Int]
    /// Byte range inside the data section (after the header).
    package let begin: Int, end: Int
}

/// A read-only, memory-mapped safetensors file. The header is fully validated when opened: its length,
/// JSON form, dtypes, shapes, and that the byte ranges lie inside the file, match the shapes and do
/// not overlap. Nothing read from the header can make it allocate more than the file's size.
///
///     let file = try SafeTensorsFile(url: dir.appendingPathComponent("model.safetensors"))
///     let w = try file.tensor("classifier.weight")     // F32, F16 and BF16 arrive as Float32
package final class SafeTensorsFile: @unchecked Sendable {
    package let url: URL
    /// Entries in the order of their data offsets.
    package let entries: [SafeTensorsEntry]
    /// The `__metadata__` map (string to string), if any.
    package let metadata: [String: String]
    private let byName: [String: Int]
    private let map: UnsafeRawPointer?
    private let mapLength: Int
    private let dataStart: Int

    package init(url: URL) throws {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw exists
                ? WinnowError.invalidFile(path: path, line: nil, reason: "cannot open: \(String(cString: strerror(errno)))")
                : WinnowError.missingFile(path: path, reason: "no such file")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "cannot stat")
        }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "not a safetensors file: \(size) bytes, too short for the 8-byte header length")
        }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "cannot memory-map: \(String(cString: strerror(errno)))")
        }
        map = UnsafeRawPointer(m)
        mapLength = size
        do {
            let headerLen = UInt64(littleEndian: m.loadUnaligned(as: UInt64.self))
            guard headerLen <= UInt64(size - 8) else {
                throw WinnowError.invalidFile(path: path, line: nil, reason: "header length \(headerLen) runs past the end of the file (\(size) bytes)")
            }
            let hl = Int(headerLen)
            dataStart = 8 + hl
            let headerData = Data(bytes: m + 8, count: hl)
            (entries, metadata) = try SafeTensorsFile.parseHeader(headerData, dataLength: size - dataStart, path: path)
            var idx: [String: Int] = [:]
            for (i, e) in entries.enumerated() { idx[e.name] = i }
            byName = idx
        } catch {
            munmap(m, size)
            throw error
        }
    }

    deinit { if let map { munmap(UnsafeMutableRawPointer(mutating: map), mapLength) } }

    static func parseHeader(_ data: Data, dataLength: Int, path: String) throws -> ([SafeTensorsEntry], [String: String]) {
        func bad(_ why: String) -> WinnowError { .invalidFile(path: path, line: nil, reason: "safetensors header: \(why)") }
        guard let obj = try? JSONSerialization.jsonObject(with: data), let dict = obj as? [String: Any] else {
            throw bad("not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [SafeTensorsEntry] = []
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let md = value as? [String: Any] else { throw bad("__metadata__ is not an object") }
                for (k, v) in md {
                    guard let s = v as? String else { throw bad("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            func badT(_ why: String) -> WinnowError { .invalidTensor(path: path, tensor: name, reason: why) }
            guard let info = value as? [String: Any] else { throw badT("header entry is not an object") }
            guard let dt = info["dtype"] as? String else { throw badT("missing dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dt) else { throw badT("unknown dtype '\(dt)'") }
            guard let shapeAny = info["shape"] as? [Any] else { throw badT("missing shape") }
            var shape: [Int] = []
            var numel = 1
            for s in shapeAny {
                guard let n = s as? NSNumber, let d = Int(exactly: n.doubleValue), d >= 0 else {
                    throw badT("shape \(shapeAny) has a dimension that is not a non-negative integer")
                }
                shape.append(d)
                let (p, o) = numel.multipliedReportingOverflow(by: d)
                guard !o, p <= dataLength else { throw badT("shape \(shape) is larger than the file") }
                numel = p
            }
            guard let offs = info["data_offsets"] as? [Any], offs.count == 2,
                  let b = (offs[0] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }),
                  let e = (offs[1] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }) else {
                throw badT("data_offsets must be two integers")
            }
            guard b >= 0, e >= b, e <= dataLength else {
                throw badT("data_offsets [\(b), \(e)] lie outside the data section (\(dataLength) bytes)")
            }
            guard e - b == numel * dtype.size else {
                throw badT("data_offsets span \(e - b) bytes but shape \(shape) of \(dt) needs \(numel * dtype.size)")
            }
            entries.append(SafeTensorsEntry(name: name, dtype: dtype, shape: shape, begin: b, end: e))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        for i in entries.indices.dropFirst() where entries[i].begin < entries[i - 1].end {
            throw WinnowError.invalidTensor(path: path, tensor: entries[i].name,
                                            reason: "data overlaps tensor '\(entries[i - 1].name)'")
        }
        return (entries, metadata)
    }

    /// Tensor names in file order.
    package var names: [String] { entries.map(\.name) }

    /// The entry for `name`, or nil.
    package func entry(_ name: String) -> SafeTensorsEntry? { byName[name].map { entries[$0] } }

    /// Reads a floating-point tensor (F32, F16, BF16 or F64) as Float32.
    package func tensor(_ name: String) throws -> Tensor {
        guard let e = entry(name) else {
            throw WinnowError.invalidTensor(path: url.path, tensor: name, reason: "missing from the file")
        }
        return try tensor(e)
    }

    /// Reads an entry as Float32.
    package func tensor(_ e: SafeTensorsEntry) throws -> Tensor {
        guard [.f32, .f16, .bf16, .f64].contains(e.dtype) else {
            throw WinnowError.invalidTensor(path: url.path, tensor: e.name, reason: "dtype \(e.dtype.rawValue) is not a floating-point type (expected F32, F16 or BF16)")
        }
        let src = map! + dataStart + e.begin
        let n = e.shape.reduce(1, *)
        var t = Tensor(shape: e.shape)
        t.withUnsafeMutableBufferPointer { dst in
            switch e.dtype {
            case .f32:
                // Little-endian hosts: the bytes are already Float32 (the source may be unaligned).
                memcpy(dst.baseAddress!, src, 4 * n)
            case .f16:
                for i in 0..<n { dst[i] = Float(Float16(bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
            case .bf16:
                for i in 0..<n {
                    let h = UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    dst[i] = Float(bitPattern: h << 16)
                }
            case .f64:
                for i in 0..<n { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            default:
                break
            }
        }
        return t
    }

    /// Reads an integer tensor (I64, I32, I16, I8, U8, BOOL) as Int64 values.
    package func integers(_ name: String) throws -> [Int64] {
        guard let e = entry(name) else {
            throw WinnowError.invalidTensor(path: url.path, tensor: name, reason: "missing from the file")
        }
        let src = map! + dataStart + e.begin
        let n = e.shape.reduce(1, *)
        switch e.dtype {
        case .i64: return (0..<n).map { Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
        case .i32: return (0..<n).map { Int64(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        case .i16: return (0..<n).map { Int64(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
        case .i8: return (0..<n).map { Int64(src.load(fromByteOffset: $0, as: Int8.self)) }
        case .u8, .bool: return (0..<n).map { Int64(src.load(fromByteOffset: $0, as: UInt8.self)) }
        default:
            throw WinnowError.invalidTensor(path: url.path, tensor: name, reason: "dtype \(e.dtype.rawValue) is not an integer type")
        }
    }

    /// Writes F32 tensors as a safetensors file, atomically. Names keep the given order.
    package static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = ["format": "pt"], to url: URL) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            precondition(header[name] == nil, "safetensors write: duplicate tensor name \(name)")
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]] as [String: Any]
            offset += 4 * t.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }   // pad with spaces to 8-byte alignment
        try AtomicFile.write(to: url) { fd in
            var len = UInt64(json.count).littleEndian
            try withUnsafeBytes(of: &len) { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
            try json.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
            for (_, t) in tensors {
                // Little-endian hosts only (x86_64, arm64): Float32 storage is already the file's byte order.
                try t.withUnsafeBufferPointer { try AtomicFile.writeAll(fd: fd, UnsafeRawBufferPointer($0), path: url.path) }
            }
        }
    }
}
