import Dispatch

/// Wall time per section of the encoder's passes, for `winnow bench --profile`: off by default (one
/// branch per section), never on in training or scoring. Sections are timed on the calling thread
/// and include their parallel regions.
///
///     Profile.enabled = true; ...; print(Profile.report())
package enum Profile {
    nonisolated(unsafe) package static var enabled = false
    nonisolated(unsafe) static var totals: [String: (seconds: Double, calls: Int)] = [:]

    @inline(__always)
    package static func section<T>(_ name: String, _ body: () -> T) -> T {
        guard enabled else { return body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        totals[name, default: (0, 0)].seconds += dt
        totals[name, default: (0, 0)].calls += 1
        return r
    }

    package static func reset() { totals = [:] }

    /// Sections by total time, with their share of `total` seconds.
    package static func report(total: Double) -> String {
        totals.sorted { $0.value.seconds > $1.value.seconds }.map { name, v in
            let share = total > 0 ? 100 * v.seconds / total : 0
            return "  \(name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(String(format: "%8.1f ms  %5.1f %%  (%d call%@)", 1000 * v.seconds, share, v.calls, v.calls == 1 ? "" : "s"))"
        }.joined(separator: "\n")
    }
}
