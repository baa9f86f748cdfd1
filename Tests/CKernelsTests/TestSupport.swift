import Testing

// Shared helpers for the CKernels suites: a seeded generator, random fills, central finite
// differences on Double functions, and the tolerance comparison used by every test.

// MARK: - Random numbers

/// SplitMix64: small, seedable and a value type, so every test draws the same numbers on every run
/// and no generator state is shared between concurrently running tests.
struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` floats uniform in `range`.
func randomFloats(_ count: Int, in range: ClosedRange<Float> = -1...1,
                  using rng: inout SeededGenerator) -> [Float] {
    (0..<count).map { _ in Float.random(in: range, using: &rng) }
}

extension Array where Element == Float {
    /// The same values widened to Double (the naive forwards run in Double).
    var asDouble: [Double] { map { Double($0) } }
}

/// after - before, elementwise: what a backward kernel added to an accumulator.
func increments(_ after: [Float], _ before: [Float]) -> [Float] {
    zip(after, before).map { $0 - $1 }
}

/// Rows `0..<rows`, columns `0..<cols` of a row-major buffer with leading dimension `ld`, packed.
func packed<T>(_ x: [T], rows: Int, cols: Int, ld: Int, offset: Int = 0) -> [T] {
    var out: [T] = []
    out.reserveCapacity(rows * cols)
    for r in 0..<rows {
        out.append(contentsOf: x[(offset + r * ld)..<(offset + r * ld + cols)])
    }
    return out
}

// MARK: - Finite differences

/// Central finite differences of `f` at `x`: g[i] = (f(x + h e_i) - f(x - h e_i)) / 2h with
/// h = 1e-5 * max(1, |x_i|). In Double the truncation error (~h^2) and the rounding error
/// (~1e-16 / h) both stay below 1e-9, far under the float kernels' own error.
func centralDifferences(at x: [Double], of f: ([Double]) -> Double) -> [Double] {
    var x = x
    var g = [Double](repeating: 0, count: x.count)
    for i in x.indices {
        let x0 = x[i]
        let h = 1e-5 * max(1, abs(x0))
        x[i] = x0 + h
        let plus = f(x)
        x[i] = x0 - h
        let minus = f(x)
        x[i] = x0
        g[i] = (plus - minus) / (2 * h)
    }
    return g
}

/// sum_i a[i] * r[i]: the scalar loss whose gradient with respect to the output is `r`.
func weightedSum(_ a: [Double], _ r: [Double]) -> Double {
    var s = 0.0
    for i in a.indices { s += a[i] * r[i] }
    return s
}

// MARK: - Comparison

/// Tolerances for |x - y| <= atol + rtol * |y|.
struct Tolerance: Sendable {
    var atol: Double
    var rtol: Double

    /// Forward values against a Double oracle.
    static let forward = Tolerance(atol: 1e-5, rtol: 1e-4)
    /// Float backward against finite differences of a Double forward.
    static let backward = Tolerance(atol: 1e-4, rtol: 1e-3)
    /// Optimised kernel against its plain-loop twin (both Float, different summation order).
    static let twin = Tolerance(atol: 1e-5, rtol: 1e-4)
}

/// Checks |got - want| <= atol + rtol * |want| elementwise. A failure names the tensor, the first bad
/// index, both values and the largest difference (NaN counts as bad).
@discardableResult
func expectClose(_ name: String, _ got: [Float], _ want: [Double], _ tol: Tolerance,
                 sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    guard got.count == want.count else {
        Issue.record("\(name): \(got.count) values, expected \(want.count)", sourceLocation: sourceLocation)
        return false
    }
    var firstBad: Int? = nil
    var maxDiff = 0.0
    var maxAt = 0
    for i in got.indices {
        let d = abs(Double(got[i]) - want[i])
        if d > maxDiff || d.isNaN && !maxDiff.isNaN {
            maxDiff = d
            maxAt = i
        }
        if firstBad == nil && !(d <= tol.atol + tol.rtol * abs(want[i])) { firstBad = i }
    }
    if let i = firstBad {
        Issue.record("""
            \(name): first bad index \(i) of \(got.count): got \(got[i]), expected \(want[i]) \
            (atol \(tol.atol), rtol \(tol.rtol)); largest |difference| \(maxDiff) at index \(maxAt)
            """, sourceLocation: sourceLocation)
        return false
    }
    return true
}

/// Float-against-Float form of `expectClose`.
@discardableResult
func expectClose(_ name: String, _ got: [Float], _ want: [Float], _ tol: Tolerance,
                 sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    expectClose(name, got, want.asDouble, tol, sourceLocation: sourceLocation)
}
