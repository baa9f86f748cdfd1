import CKernels
import Foundation
import Testing

// Optimizer steps against the PyTorch formulas written out by hand in Double, and the Double
// reductions against a naive sum. Several steps, so bias correction and momentum are exercised.

struct AdamWCase: Sendable, CustomTestStringConvertible {
    var lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    var testDescription: String { "lr \(lr) b1 \(beta1) b2 \(beta2) eps \(eps) wd \(weightDecay)" }
}

struct SGDCase: Sendable, CustomTestStringConvertible {
    var lr: Float, momentum: Float, weightDecay: Float
    var testDescription: String { "lr \(lr) momentum \(momentum) wd \(weightDecay)" }
}

@Suite("Optimizers and reductions")
struct OptimizerTests {
    @Test(arguments: [AdamWCase(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0),
                      AdamWCase(lr: 2e-5, beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01),
                      AdamWCase(lr: 0.5, beta1: 0.3, beta2: 0.99, eps: 1e-8, weightDecay: 0.1)])
    func adamW(_ h: AdamWCase) {
        let n = 37
        var rng = SeededGenerator(seed: 81)
        var p = randomFloats(n, using: &rng), m = [Float](repeating: 0, count: n), v = m
        var pD = p.asDouble, mD = [Double](repeating: 0, count: n), vD = mD
        let (lr, b1, b2, eps, wd) = (Double(h.lr), Double(h.beta1), Double(h.beta2), Double(h.eps), Double(h.weightDecay))
        for t in 1...4 {
            var g = randomFloats(n, using: &rng)
            g[0] = 0  // a zero gradient still decays and moves by momentum
            p.withUnsafeMutableBufferPointer { pp in
                m.withUnsafeMutableBufferPointer { mp in
                    v.withUnsafeMutableBufferPointer { vp in
                        ck_adamw_update(pp.baseAddress, mp.baseAddress, vp.baseAddress, g, n, h.lr, h.beta1, h.beta2, h.eps,
                                        h.weightDecay, Int32(t))
                    }
                }
            }
            // torch.optim.AdamW: decoupled decay, then moments, then the bias-corrected step
            for i in 0..<n {
                let gi = Double(g[i])
                pD[i] *= 1 - lr * wd
                mD[i] = b1 * mD[i] + (1 - b1) * gi
                vD[i] = b2 * vD[i] + (1 - b2) * gi * gi
                let bc1 = 1 - pow(b1, Double(t)), bc2 = 1 - pow(b2, Double(t))
                pD[i] -= lr / bc1 * mD[i] / (vD[i].squareRoot() / bc2.squareRoot() + eps)
            }
            expectClose("adamw param (step \(t))", p, pD, .forward)
            expectClose("adamw exp_avg (step \(t))", m, mD, .forward)
            expectClose("adamw exp_avg_sq (step \(t))", v, vD, .forward)
        }
    }

    @Test(arguments: [SGDCase(lr: 0.1, momentum: 0, weightDecay: 0), SGDCase(lr: 0.1, momentum: 0.9, weightDecay: 0),
                      SGDCase(lr: 0.05, momentum: 0.9, weightDecay: 0.05), SGDCase(lr: 0.1, momentum: 0, weightDecay: 0.01)])
    func sgd(_ h: SGDCase) {
        let n = 37
        var rng = SeededGenerator(seed: 82)
        var p = randomFloats(n, using: &rng), buf = [Float](repeating: .nan, count: n)  // first step must not read buf
        var pD = p.asDouble, bufD = [Double](repeating: 0, count: n)
        let (lr, mom, wd) = (Double(h.lr), Double(h.momentum), Double(h.weightDecay))
        for t in 1...4 {
            let g = randomFloats(n, using: &rng)
            p.withUnsafeMutableBufferPointer { pp in
                buf.withUnsafeMutableBufferPointer { bp in
                    // buf is nullable when momentum == 0
                    ck_sgd_update(pp.baseAddress, h.momentum == 0 ? nil : bp.baseAddress, g, n, h.lr, h.momentum,
                                  h.weightDecay, t == 1 ? 1 : 0)
                }
            }
            // torch.optim.SGD (dampening 0, no Nesterov)
            for i in 0..<n {
                var gi = Double(g[i]) + wd * pD[i]
                if mom != 0 {
                    bufD[i] = t == 1 ? gi : mom * bufD[i] + gi
                    gi = bufD[i]
                }
                pD[i] -= lr * gi
            }
            expectClose("sgd param (step \(t))", p, pD, .forward)
            if h.momentum != 0 { expectClose("sgd momentum_buffer (step \(t))", buf, bufD, .forward) }
        }
    }

    @Test(arguments: [0, 1, 7, 33, 100_003])
    func reductions(n: Int) {
        var rng = SeededGenerator(seed: 83)
        let x = randomFloats(n, using: &rng), y = randomFloats(n, using: &rng)
        var squares = 0.0, dot = 0.0
        for i in 0..<n {
            squares += Double(x[i]) * Double(x[i])
            dot += Double(x[i]) * Double(y[i])
        }
        let gotSquares = x.withUnsafeBufferPointer { ck_sum_squares($0.baseAddress, n) }
        let gotDot = x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { ck_dot(xp.baseAddress, $0.baseAddress, n) } }
        // double accumulation: agreement far beyond float precision
        #expect(abs(gotSquares - squares) <= 1e-12 * max(1, squares), "sum_squares n \(n): \(gotSquares) vs \(squares)")
        #expect(abs(gotDot - dot) <= 1e-12 * max(1, Double(n)), "dot n \(n): \(gotDot) vs \(dot)")
    }
}
