import CKernels
import Foundation

// Naive Double-precision forwards: the oracle every C kernel is checked against, written as
// directly from the formulas as possible (no strides tricks, no fusion, no float).

enum Naive {
    // MARK: - Linear

    /// out[N,OC] = inp[N,C] (row stride ldInp) @ w[OC,C]^T + b.
    static func linear(_ inp: [Double], ldInp: Int, _ w: [Double], _ b: [Double]?,
                       n: Int, c: Int, oc: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * oc)
        for r in 0..<n {
            for o in 0..<oc {
                var s = b?[o] ?? 0
                for i in 0..<c { s += inp[r * ldInp + i] * w[o * c + i] }
                out[r * oc + o] = s
            }
        }
        return out
    }

    // MARK: - Activations

    /// 0.5 x (1 + erf(x / sqrt 2)).
    static func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }

    /// Inverted dropout with the kernel's counter RNG: keep(i) = u(seed, offset + i) >= p.
    static func dropout(_ x: [Double], p: Float, seed: UInt64, offset: UInt64) -> [Double] {
        x.indices.map { i in
            ck_rng_uniform(seed, offset + UInt64(i)) >= p ? x[i] / (1 - Double(p)) : 0
        }
    }

    // MARK: - LayerNorm

    /// Per row of x[N,C]: (x - mean) / sqrt(var + eps) * w + b, biased variance.
    static func layerNorm(_ x: [Double], _ w: [Double], _ b: [Double], n: Int, c: Int, eps: Double) -> [Double] {
        var out = [Double](repeating: 0, count: n * c)
        for r in 0..<n {
            let row = x[(r * c)..<(r * c + c)]
            let mean = row.reduce(0, +) / Double(c)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(c)
            let rstd = 1 / (variance + eps).squareRoot()
            for i in 0..<c { out[r * c + i] = (x[r * c + i] - mean) * rstd * w[i] + b[i] }
        }
        return out
    }

    // MARK: - Softmax and cross-entropy

    /// probs[N,V] = softmax(logits); losses[n] = logsumexp - logits[t] (0 where t < 0).
    static func softmaxXent(_ logits: [Double], _ targets: [Int32], n: Int, v: Int) -> (probs: [Double], losses: [Double]) {
        var probs = [Double](repeating: 0, count: n * v)
        var losses = [Double](repeating: 0, count: n)
        for r in 0..<n {
            let row = Array(logits[(r * v)..<(r * v + v)])
            let mx = row.max()!
            let sum = row.reduce(0) { $0 + exp($1 - mx) }
            for i in 0..<v { probs[r * v + i] = exp(row[i] - mx) / sum }
            let t = Int(targets[r])
            losses[r] = t >= 0 ? log(sum) + mx - row[t] : 0
        }
        return (probs, losses)
    }

    // MARK: - Attention

    /// Multi-head attention over a fused qkv[B*T, 3C] (q at column 0, k at C, v at 2C; row stride
    /// 3C). Returns out[B*T, C] and att[B,NH,T,T] (probabilities before dropout). Masked keys
    /// (causal j > i) are left out of the softmax; keyMask is added to the scores.
    static func attention(_ qkv: [Double], keyMask: [Float]?, b nb: Int, t nt: Int, nh: Int, hs: Int,
                          causal: Bool, window: Int = 0, scale: Double, pDrop: Float, seed: UInt64) -> (out: [Double], att: [Double]) {
        let c = nh * hs, ld = 3 * c
        var out = [Double](repeating: 0, count: nb * nt * c)
        var att = [Double](repeating: 0, count: nb * nh * nt * nt)
        var p = [Double](repeating: 0, count: nt)
        for b in 0..<nb {
            for h in 0..<nh {
                for i in 0..<nt {
                    var mx = -Double.infinity
                    for j in 0..<nt {
                        if causal && (j > i || (window > 1 && j <= i - window)) {
                            p[j] = -.infinity
                            continue
                        }
                        var dot = 0.0
                        for e in 0..<hs { dot += qkv[(b * nt + i) * ld + h * hs + e] * qkv[(b * nt + j) * ld + c + h * hs + e] }
                        p[j] = scale * dot + Double(keyMask?[b * nt + j] ?? 0)
                        mx = max(mx, p[j])
                    }
                    var sum = 0.0
                    for j in 0..<nt {
                        p[j] = p[j] == -.infinity ? 0 : exp(p[j] - mx)
                        sum += p[j]
                    }
                    for j in 0..<nt {
                        p[j] /= sum
                        att[((b * nh + h) * nt + i) * nt + j] = p[j]
                        if pDrop > 0 {
                            let counter = UInt64(((b * nh + h) * nt + i) * nt + j)
                            p[j] = ck_rng_uniform(seed, counter) >= pDrop ? p[j] / (1 - Double(pDrop)) : 0
                        }
                    }
                    for e in 0..<hs {
                        var acc = 0.0
                        for j in 0..<nt { acc += p[j] * qkv[(b * nt + j) * ld + 2 * c + h * hs + e] }
                        out[(b * nt + i) * c + h * hs + e] = acc
                    }
                }
            }
        }
        return (out, att)
    }
}
