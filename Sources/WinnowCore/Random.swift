import Foundation

/// A small, fast, seedable generator (SplitMix64). Every random choice in Winnow (initialisation,
/// shuffling, dropout seeds, masking, sampling) flows from one `--seed` through generators like this,
/// so runs are reproducible bit for bit.
///
///     var rng = SeededGenerator(seed: 42)
///     let x = rng.nextNormal()
package struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    /// Derives an independent stream from a seed and a purpose label (e.g. "init", "shuffle").
    package init(seed: UInt64, stream: String) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in stream.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        state = SeededGenerator.mix(seed ^ h)
    }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SeededGenerator.mix(state)
    }

    /// SplitMix64's finaliser: a bijective 64-bit hash.
    package static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    package mutating func nextUniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal (Box-Muller).
    package mutating func nextNormal() -> Double {
        let u1 = max(nextUniform(), 0x1.0p-60)
        let u2 = nextUniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
