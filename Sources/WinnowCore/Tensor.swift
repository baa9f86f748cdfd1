import Foundation

/// Reference-counted Float storage behind `Tensor`. Copy-on-write is done by `Tensor`.
@usableFromInline
package final class TensorBuffer: @unchecked Sendable {
    @usableFromInline package let base: UnsafeMutablePointer<Float>
    @usableFromInline package let count: Int

    @usableFromInline
    init(count: Int) {
        self.count = count
        // 64-byte alignment keeps SIMD loads aligned in the C kernels.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    @usableFromInline
    func copy() -> TensorBuffer {
        let b = TensorBuffer(count: count)
        b.base.update(from: base, count: count)
        return b
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }
}

/// A dense row-major Float32 tensor with value semantics (copy-on-write).
///
///     var t = Tensor(shape: [2, 3])          // zeros
///     t[1, 2] = 5
///     let u = Tensor(shape: [3], values: [1, 2, 3])
public struct Tensor: Sendable, CustomStringConvertible {
    /// Sizes of each dimension, outermost first.
    public private(set) var shape: [Int]
    @usableFromInline package var buffer: TensorBuffer

    /// Number of elements (the storage may be larger after `resize`).
    public private(set) var count: Int

    /// A zero-filled tensor of the given shape.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        self.shape = shape
        let n = shape.reduce(1, *)
        count = n
        buffer = TensorBuffer(count: n)
        buffer.base.initialize(repeating: 0, count: n)
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(shape: shape)
        buffer.base.update(repeating: value, count: count)
    }

    /// A tensor holding `values` in row-major order; `values.count` must equal the shape's product.
    public init(shape: [Int], values: [Float]) {
        let n = shape.reduce(1, *)
        precondition(values.count == n, "Tensor: \(values.count) values for shape \(shape) (\(n) elements)")
        self.shape = shape
        count = n
        buffer = TensorBuffer(count: n)
        values.withUnsafeBufferPointer { buffer.base.initialize(from: $0.baseAddress!, count: n) }
    }

    /// A tensor copied from raw memory.
    public init(shape: [Int], copying source: UnsafePointer<Float>) {
        self.shape = shape
        let n = shape.reduce(1, *)
        count = n
        buffer = TensorBuffer(count: n)
        buffer.base.initialize(from: source, count: n)
    }

    /// A tensor whose elements the caller overwrites before reading (no zero-fill pass over large buffers).
    package init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        self.shape = shape
        count = shape.reduce(1, *)
        buffer = TensorBuffer(count: count)
    }

    /// Row-major values as an array.
    public var values: [Float] { Array(UnsafeBufferPointer(start: buffer.base, count: count)) }

    public var description: String { "Tensor\(shape)" }

    /// Same storage, new shape with the same number of elements.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "reshape: \(shape) -> \(newShape) changes the element count")
        var t = self
        t.shape = newShape
        return t
    }

    @inlinable
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&buffer) { buffer = buffer.copy() }
    }

    /// Read access to the contiguous storage.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(buffer) { try body(UnsafeBufferPointer(start: buffer.base, count: count)) }
    }

    /// Write access to the contiguous storage (copies first if the storage is shared).
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeUnique()
        return try withExtendedLifetime(buffer) {
            try body(UnsafeMutableBufferPointer(start: buffer.base, count: count))
        }
    }

    /// Raw read pointer for kernel calls inside the library. Valid while this tensor value is alive and
    /// unmodified; the model code keeps parameters and workspaces alive for the whole call.
    @inlinable package var ptr: UnsafePointer<Float> { UnsafePointer(buffer.base) }

    /// Raw write pointer (after copy-on-write) for kernel calls inside the library.
    @inlinable package var mptr: UnsafeMutablePointer<Float> {
        mutating get {
            makeUnique()
            return buffer.base
        }
    }

    /// Element access by a full index.
    public subscript(_ index: Int...) -> Float {
        get { buffer.base[flatIndex(index)] }
        set {
            let i = flatIndex(index)
            makeUnique()
            buffer.base[i] = newValue
        }
    }

    @usableFromInline
    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor\(shape): index \(index) has the wrong rank")
        var flat = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "Tensor\(shape): index \(index) out of range")
            flat = flat * d + i
        }
        return flat
    }

    /// Sets every element to zero.
    public mutating func zero() {
        makeUnique()
        buffer.base.update(repeating: 0, count: count)
    }

    /// Makes this tensor hold `shape`, reusing the storage when it is large enough (contents undefined).
    package mutating func resize(_ newShape: [Int]) {
        let n = newShape.reduce(1, *)
        if n > buffer.count || !isKnownUniquelyReferenced(&buffer) {
            buffer = TensorBuffer(count: n)
            buffer.base.initialize(repeating: 0, count: n)
        }
        shape = newShape
        count = n
    }
}

extension Tensor: Equatable {
    public static func == (a: Tensor, b: Tensor) -> Bool {
        a.shape == b.shape && memcmp(a.buffer.base, b.buffer.base, a.count * 4) == 0
    }
}
