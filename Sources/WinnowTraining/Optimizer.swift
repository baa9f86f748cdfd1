import CKernels
import WinnowCore
import WinnowData
import WinnowModels

/// AdamW (PyTorch semantics: decoupled weight decay, bias correction) or SGD with momentum, over a
/// `ParameterStore`. Biases and LayerNorm weights get no weight decay, as in Hugging Face Trainer.
///
///     var opt = Optimizer(kind: .adamw, parameters: model.parameters, weightDecay: 0.01)
///     opt.step(&model.parameters, grads: grads, lr: 5e-5)
public struct Optimizer: Sendable {
    /// The update rule: AdamW, or SGD with momentum.
    public enum Kind: String, Sendable, CaseIterable { case adamw, sgd }

    /// The update rule.
    public let kind: Kind
    /// AdamW: decay rates of the first and second moments, and epsilon added to the denominator.
    public var beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
    /// SGD momentum (dampening 0; 0 gives plain SGD); unused by AdamW.
    public var momentum: Float = 0.9
    /// Weight decay: decoupled for AdamW (p *= 1 - lr * wd), added to the gradient (wd * p) for SGD;
    /// skipped for biases and LayerNorm weights unless the optimizer was made with `decayAll`.
    public var weightDecay: Float
    /// Steps taken so far.
    public private(set) var t = 0
    var m: ParameterStore
    var v: ParameterStore
    /// Per tensor: does weight decay apply?
    let decays: [Bool]

    /// An optimizer with zero state for the tensors of `parameters`; their names decide which get weight
    /// decay (`decayAll`: every tensor).
    /// `trainable` (nil: all) names the tensors the optimizer updates; the others keep no state and are
    /// left as they are (a LoRA adapter's frozen base).
    public init(kind: Kind, parameters: ParameterStore, weightDecay: Float, momentum: Float = 0.9,
                decayAll: Bool = false, trainable: ((String) -> Bool)? = nil) {
        self.kind = kind
        self.weightDecay = weightDecay
        self.momentum = momentum
        let keep = trainable ?? { _ in true }
        m = parameters.zeros(keeping: keep)
        v = kind == .adamw ? parameters.zeros(keeping: keep) : ParameterStore()
        decays = parameters.names.map { decayAll || Optimizer.decaysWeight(of: $0) }
    }

    /// Whether Hugging Face Trainer decays the tensor named `name`: not a bias, nor a normalisation's
    /// weight (its `get_decay_parameter_names`: the lower-cased name matches none of `bias`, `layernorm`,
    /// `rmsnorm`, `(^|.)norm($|.)`, `_norm($|.)`; BERT's `LayerNorm`, Llama's `input_layernorm` and `model.norm`).
    public static func decaysWeight(of name: String) -> Bool {
        let n = name.lowercased()
        if n.contains("bias") || n.contains("layernorm") || n.contains("rmsnorm") { return false }
        let parts = n.split(separator: ".", omittingEmptySubsequences: false)
        return !parts.contains { $0 == "norm" || $0.hasSuffix("_norm") }
    }

    /// One update with learning rate `lr`.
    public mutating func step(_ params: inout ParameterStore, grads: ParameterStore, lr: Float) {
        t += 1
        for i in params.tensors.indices where m[i].count == params[i].count {     // frozen tensors have no state
            let wd = decays[i] ? weightDecay : 0
            let n = params[i].count
            // Elementwise updates: split across cores (each element's update is the same either way).
            let p = params.tensors[i].mptr, mm = m.tensors[i].mptr, g = grads[i].ptr
            let (b1, b2, e, mom, step) = (beta1, beta2, eps, momentum, t)
            switch kind {
            case .adamw:
                let vv = v.tensors[i].mptr
                Parallel.elements(n) { o, c in
                    ck_adamw_update(p + o, mm + o, vv + o, g + o, c, lr, b1, b2, e, wd, Int32(step))
                }
            case .sgd:
                Parallel.elements(n) { o, c in ck_sgd_update(p + o, mm + o, g + o, c, lr, mom, wd, step == 1 ? 1 : 0) }
            }
        }
    }

    /// Restores the state written by `state` (a checkpoint's optimizer.safetensors).
    package mutating func restore(from file: SafeTensorsFile) throws {
        let step = try file.tensor("step").values
        guard step.count == 1, step[0] >= 0 else {
            throw WinnowError.invalidTensor(path: file.url.path, tensor: "step", reason: "expected one non-negative value")
        }
        for i in m.tensors.indices {
            let name = "m.\(m.names[i])"
            guard let e = file.entry(name), e.shape == m[i].shape else {
                throw WinnowError.invalidTensor(path: file.url.path, tensor: name, reason: "missing, or its shape differs from the model's \(m[i].shape)")
            }
            m[i] = try file.tensor(e)
        }
        for i in v.tensors.indices {
            let name = "v.\(v.names[i])"
            guard let e = file.entry(name), e.shape == v[i].shape else {
                throw WinnowError.invalidTensor(path: file.url.path, tensor: name, reason: "missing, or its shape differs from the model's \(v[i].shape)")
            }
            v[i] = try file.tensor(e)
        }
        t = Int(step[0])
    }

    /// Optimizer state for checkpoints (first and second moments, step count).
    public var state: [(String, Tensor)] {
        var out: [(String, Tensor)] = [("step", Tensor(shape: [1], values: [Float(t)]))]
        out += m.named.map { ("m.\($0.0)", $0.1) }
        out += v.named.map { ("v.\($0.0)", $0.1) }
        return out
    }
}

/// Linear warm-up then linear decay to zero (Hugging Face `get_linear_schedule_with_warmup`).
package struct LinearSchedule: Sendable {
    /// Peak learning rate, reached at the end of the warm-up.
    public let baseLR: Float
    /// Steps of linear warm-up from 0.
    public let warmupSteps: Int
    /// Step count at which the rate has decayed to 0.
    public let totalSteps: Int

    /// A schedule from its peak rate, warm-up length and total steps.
    public init(baseLR: Float, warmupSteps: Int, totalSteps: Int) {
        self.baseLR = baseLR
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// Multiplier after `step` scheduler steps (the rate used by update step+1).
    public func lr(afterSteps step: Int) -> Float {
        if step < warmupSteps { return baseLR * Float(step) / Float(max(1, warmupSteps)) }
        return baseLR * max(0, Float(totalSteps - step) / Float(max(1, totalSteps - warmupSteps)))
    }
}

/// Global L2 norm of a gradient store (double accumulation).
package func gradientNorm(_ g: ParameterStore) -> Double {
    g.tensors.reduce(0.0) { acc, t in acc + ck_sum_squares(t.ptr, t.count) }.squareRoot()
}
