import CKernels

/// A PyTorch `nn.Linear`: weight [out, in] and bias [out], addressed by index in a `ParameterStore`.
/// Forward: out[N, out] = inp[N, in] @ W^T + b.  Backward: dinp += dout @ W, dW += dout^T inp, db += sum dout.
struct Linear: Sendable {
    let weight: Int
    let bias: Int
    let inDim: Int
    let outDim: Int

    init(_ store: inout ParameterStore, _ name: String, in inDim: Int, out outDim: Int) {
        weight = store.add("\(name).weight", Tensor(shape: [outDim, inDim]))
        bias = store.add("\(name).bias", Tensor(shape: [outDim]))
        self.inDim = inDim
        self.outDim = outDim
    }

    /// out (row stride ldOut) = inp (row stride ldInp) @ W^T + b over N rows.
    func forward(_ p: ParameterStore, out: UnsafeMutablePointer<Float>, ldOut: Int,
                 inp: UnsafePointer<Float>, ldInp: Int, rows n: Int) {
        ck_linear_forward(out, Int32(ldOut), inp, Int32(ldInp), p[weight].ptr, p[bias].ptr,
                          Int32(n), Int32(inDim), Int32(outDim))
    }

    /// Accumulates dinp (nullable), and, when `grads` is given, dW and db.
    func backward(_ p: ParameterStore, grads: inout ParameterStore?, dinp: UnsafeMutablePointer<Float>?, ldDinp: Int,
                  dout: UnsafePointer<Float>, ldDout: Int, inp: UnsafePointer<Float>, ldInp: Int, rows n: Int) {
        let dw = grads != nil ? grads![weight].mptr : nil
        let db = grads != nil ? grads![bias].mptr : nil
        ck_linear_backward(dinp, Int32(ldDinp), dw, db, dout, Int32(ldDout), inp, Int32(ldInp), p[weight].ptr,
                           Int32(n), Int32(inDim), Int32(outDim))
    }
}

/// A LayerNorm over the last dimension with weight and bias (Hugging Face names `.weight/.bias`).
struct LayerNorm: Sendable {
    let weight: Int
    let bias: Int
    let dim: Int
    let eps: Float

    init(_ store: inout ParameterStore, _ name: String, dim: Int, eps: Float) {
        weight = store.add("\(name).weight", Tensor(shape: [dim], repeating: 1))
        bias = store.add("\(name).bias", Tensor(shape: [dim]))
        self.dim = dim
        self.eps = eps
    }

    func forward(_ p: ParameterStore, out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                 rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, rows n: Int) {
        ck_layernorm_forward(out, mean, rstd, inp, p[weight].ptr, p[bias].ptr, Int32(n), Int32(dim), eps)
    }

    func backward(_ p: ParameterStore, grads: inout ParameterStore?, dinp: UnsafeMutablePointer<Float>,
                  dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                  rstd: UnsafePointer<Float>, rows n: Int) {
        let dw = grads != nil ? grads![weight].mptr : nil
        let db = grads != nil ? grads![bias].mptr : nil
        ck_layernorm_backward(dinp, dw, db, dout, inp, p[weight].ptr, mean, rstd, Int32(n), Int32(dim))
    }
}

/// Dropout with a counter-based mask: the backward recomputes the mask from (seed, offset).
enum Dropout {
    static func forward(_ x: UnsafeMutablePointer<Float>, count: Int, p: Float, seed: UInt64) {
        if p > 0 { ck_dropout_forward(x, x, count, p, seed, 0) }
    }

    /// dinp += mask * dout / (1-p); with p == 0 a plain accumulate.
    static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, count: Int, p: Float, seed: UInt64) {
        ck_dropout_backward(dinp, dout, count, p, seed, 0)
    }
}
