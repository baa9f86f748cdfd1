import Foundation
import WinnowCore
import WinnowData

/// Named tensors in a fixed order: model parameters, their gradients, or optimizer moments.
/// Layers address tensors by index (fast); files and users address them by Hugging Face name.
///
///     var grads = model.parameters.zeros()
///     grads[model.parameters.index(of: "classifier.weight")!]   // same layout as the parameters
public struct ParameterStore: Sendable {
    /// Tensor names (Hugging Face names), in index order.
    public private(set) var names: [String] = []
    /// The tensors, in the order of `names`.
    public var tensors: [Tensor] = []
    private var lookup: [String: Int] = [:]

    /// An empty store.
    public init() {}

    /// Appends a tensor and returns its index.
    @discardableResult
    public mutating func add(_ name: String, _ tensor: Tensor) -> Int {
        precondition(lookup[name] == nil, "ParameterStore: duplicate name \(name)")
        lookup[name] = tensors.count
        names.append(name)
        tensors.append(tensor)
        return tensors.count - 1
    }

    /// Index of the tensor named `name`, or nil when the store has none.
    public func index(of name: String) -> Int? { lookup[name] }
    /// Number of tensors.
    public var count: Int { tensors.count }

    /// In-place access (`_modify`): `grads[i].mptr` writes into the stored tensor. With only get/set,
    /// the getter's temporary made the buffer shared, so every write through the subscript copied the
    /// whole tensor first (62 MB of word-embedding gradient per training step).
    public subscript(i: Int) -> Tensor {
        get { tensors[i] }
        _modify { yield &tensors[i] }
    }

    /// The tensor named `name` (read-only), or nil when the store has none.
    public subscript(name: String) -> Tensor? { lookup[name].map { tensors[$0] } }

    /// Total number of scalars.
    public var scalarCount: Int { tensors.reduce(0) { $0 + $1.count } }

    /// A store with the same names and shapes, all zeros.
    public func zeros() -> ParameterStore {
        var s = ParameterStore()
        for (n, t) in zip(names, tensors) { s.add(n, Tensor(shape: t.shape)) }
        return s
    }

    /// Zero tensors of the same names, with the shapes of those `keep` accepts (the others empty: the
    /// gradients of a frozen tensor).
    public func zeros(keeping keep: (String) -> Bool) -> ParameterStore {
        var s = ParameterStore()
        for (n, t) in zip(names, tensors) { s.add(n, Tensor(shape: keep(n) ? t.shape : [0])) }
        return s
    }

    /// Sets every tensor to zero.
    public mutating func zeroAll() {
        for i in tensors.indices { Elementwise.zero(tensors[i].mptr, count: tensors[i].count) }
    }

    /// (name, tensor) pairs in order, for writing.
    public var named: [(String, Tensor)] { Array(zip(names, tensors)) }
}
