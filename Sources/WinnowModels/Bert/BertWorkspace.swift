import CKernels
import WinnowCore
import WinnowData

/// Activations and gradient buffers of one BERT forward/backward, reused across batches of the same or
/// smaller shape so the training loop does not allocate. N = B*T token rows, C hidden, I intermediate.
package final class BertWorkspace {
    /// Per-layer saved activations (forward) and output gradients (backward).
    package final class Layer {
        var qkv = Tensor(shape: [0])        // [N, 3C] query|key|value
        var wqkv = Tensor(shape: [0])       // [3C, C] query|key|value weights stacked (copied each forward)
        var bqkv = Tensor(shape: [0])       // [3C] their biases
        var att = Tensor(shape: [0])        // [B, NH, T, T] softmax probabilities
        var attDrop = Tensor(shape: [0])    // [B, NH, T, T] after dropout (training only, read by the backward)
        var attnOut = Tensor(shape: [0])    // [N, C] merged heads (input of attention.output.dense)
        var r1 = Tensor(shape: [0])         // [N, C] residual sum before attention LayerNorm
        var h1 = Tensor(shape: [0])         // [N, C] attention LayerNorm output
        var mean1 = Tensor(shape: [0]), rstd1 = Tensor(shape: [0])
        var interPre = Tensor(shape: [0])   // [N, I] intermediate.dense output (before GELU); after a kept forward, GELU's derivative there
        var interPreIsDerivative = false    // set by the forward: a kept forward keeps gelu'(x) instead of x
        var inter = Tensor(shape: [0])      // [N, I] GELU output
        var r2 = Tensor(shape: [0])         // [N, C] residual sum before output LayerNorm
        var out = Tensor(shape: [0])        // [N, C] layer output
        var mean2 = Tensor(shape: [0]), rstd2 = Tensor(shape: [0])
        // Output gradients of the linear layers (kept per layer for per-example gradient work).
        var dqkv = Tensor(shape: [0])       // [N, 3C]
        var dproj = Tensor(shape: [0])      // [N, C] grad at attention.output.dense output
        var dInterPre = Tensor(shape: [0])  // [N, I] grad at intermediate.dense output
        var dOut2 = Tensor(shape: [0])      // [N, C] grad at output.dense output
        var dOut = Tensor(shape: [0])       // [N, C] grad at the layer output (output LayerNorm's dout)
        var dh1 = Tensor(shape: [0])        // [N, C] grad at the attention LayerNorm output
    }

    var B = 0, T = 0
    /// False after an inference forward (`keepForBackward: false`), which keeps neither the attention
    /// probabilities nor the GELU inputs: a backward then has nothing to read.
    var backwardReady = false
    /// Row stride of the [CLS] rows in the encoder's top output: T*C after a full forward, C after a
    /// `clsOnly` one (the last layer then ran on the B [CLS] rows only, stored first and contiguous).
    var clsRowStride = 0
    var ids: [Int32] = [], types: [Int32] = [], positions: [Int32] = []
    var keyMask = Tensor(shape: [0])        // [B, T] additive
    var eSum = Tensor(shape: [0])           // [N, C] word + position + type embeddings
    var x0 = Tensor(shape: [0])             // [N, C] embedding LayerNorm output (after dropout)
    var mean0 = Tensor(shape: [0]), rstd0 = Tensor(shape: [0])
    var layers: [Layer] = []
    var scratch = Tensor(shape: [0])        // [N, C] projection / output-dense before residual
    var attWork = Tensor(shape: [0])        // attention scratch: one slice of attWorkSize floats per part
    var attWorkSize = 0
    var pooledPre = Tensor(shape: [0]), pooled = Tensor(shape: [0]), pooledDrop = Tensor(shape: [0])  // [B, C]
    var headPre: [Tensor] = [], headAct: [Tensor] = []   // paper head hidden layers [B, 64]
    package var logits = Tensor(shape: [0])         // [B, L]
    var probs = Tensor(shape: [0])
    var losses = Tensor(shape: [0])         // [B]
    // backward scratch
    var dX = Tensor(shape: [0]), dr2 = Tensor(shape: [0]), dr1 = Tensor(shape: [0])
    var dinter = Tensor(shape: [0]), dAttnOut = Tensor(shape: [0])
    var dPooledDrop = Tensor(shape: [0]), dPooled = Tensor(shape: [0]), dPooledPre = Tensor(shape: [0])
    var dHeadPre: [Tensor] = [], dHeadAct: [Tensor] = []
    var dlogits = Tensor(shape: [0])
    var dELN = Tensor(shape: [0])
    var dWqkv = Tensor(shape: [0])          // [3C, C] stacked Q/K/V weight gradient of one layer
    /// d loss / d inputs_embeds [N, C] (the word-embedding rows fed to the encoder).
    package var dInputsEmbeds = Tensor(shape: [0])

    func prepare(B: Int, T: Int, config c: BertConfig, headWidths: [Int], labels L: Int) {
        self.B = B
        self.T = T
        let N = B * T, C = c.hiddenSize, I = c.intermediateSize, NH = c.numAttentionHeads, HS = C / NH
        keyMask.resize([B, T])
        for t in [\BertWorkspace.eSum, \.x0, \.scratch, \.dX, \.dr2, \.dr1, \.dAttnOut, \.dELN, \.dInputsEmbeds] {
            self[keyPath: t].resize([N, C])
        }
        mean0.resize([N]); rstd0.resize([N])
        dinter.resize([N, I])
        dWqkv.resize([3 * C, C])
        while layers.count < c.numHiddenLayers { layers.append(Layer()) }
        for l in layers {
            l.qkv.resize([N, 3 * C]); l.dqkv.resize([N, 3 * C])
            l.wqkv.resize([3 * C, C]); l.bqkv.resize([3 * C])
            l.att.resize([B, NH, T, T])
            for t in [\Layer.attnOut, \.r1, \.h1, \.r2, \.out, \.dproj, \.dOut2, \.dOut, \.dh1] { l[keyPath: t].resize([N, C]) }
            for t in [\Layer.mean1, \.rstd1, \.mean2, \.rstd2] { l[keyPath: t].resize([N]) }
            l.interPre.resize([N, I]); l.inter.resize([N, I]); l.dInterPre.resize([N, I])
        }
        attWorkSize = max(1, Int(ck_attention_work_size(Int32(T), Int32(HS))))
        attWork.resize([attWorkSize * Parallel.parts(B * NH, minChunk: Parallel.minChunk(width: T * T))])
        for t in [\BertWorkspace.pooledPre, \.pooled, \.pooledDrop, \.dPooledDrop, \.dPooled, \.dPooledPre] {
            self[keyPath: t].resize([B, C])
        }
        while headPre.count < headWidths.count {
            headPre.append(Tensor(shape: [0])); headAct.append(Tensor(shape: [0]))
            dHeadPre.append(Tensor(shape: [0])); dHeadAct.append(Tensor(shape: [0]))
        }
        for (i, w) in headWidths.enumerated() {
            headPre[i].resize([B, w]); headAct[i].resize([B, w]); dHeadPre[i].resize([B, w]); dHeadAct[i].resize([B, w])
        }
        logits.resize([B, L]); probs.resize([B, L]); dlogits.resize([B, L]); losses.resize([B])
    }
}
