import Foundation
import WinnowCore
import WinnowData
import WinnowModels
import WinnowScores
import WinnowTraining

/// Small self-contained SVG charts (no scripts, no network) for the experiment report.
package enum SVGChart {
    package struct Series: Sendable {
        package var name: String
        /// (x, y, error bar half-height)
        package var points: [(x: Double, y: Double, err: Double)]
        package var dashed = false
        /// The x values of points drawn hollow (a mean that includes a run that learned nothing).
        package var flagged: Set<Double> = []

        package init(name: String, points: [(x: Double, y: Double, err: Double)], dashed: Bool = false, flagged: Set<Double> = []) {
            self.name = name; self.points = points; self.dashed = dashed; self.flagged = flagged
        }
    }

    /// Twenty distinct colours (matplotlib's tab10, then tab20's light tones); past them a series is told apart
    /// by its stroke (`stroke(_:dashed:)`), which its legend swatch shows.
    package static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
                                  "#aec7e8", "#ff9896", "#98df8a", "#ffbb78", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#393b79"]

    /// The colour and dash pattern of the `i`-th series: dashed series (random) and every series past the
    /// palette's length get their own dashes, so no two of the first 40 series look alike.
    static func stroke(_ i: Int, dashed: Bool) -> (color: String, dash: String?) {
        let round = i / palette.count
        let dash = dashed ? (round == 0 ? "6,4" : "6,2,2,2") : (round == 0 ? nil : "2,3")
        return (palette[i % palette.count], dash)
    }

    static let width = 640.0, height = 360.0
    static let left = 64.0, right = 170.0, top = 30.0, bottom = 48.0

    /// A line chart with optional error bars, axes, ticks and a legend on the right.
    package static func lines(_ series: [Series], title: String, xLabel: String, yLabel: String, xDescending: Bool = false) -> String {
        let pts = series.flatMap(\.points)
        guard !pts.isEmpty else { return "" }
        var x0 = pts.map(\.x).min()!, x1 = pts.map(\.x).max()!
        var y0 = pts.map { $0.y - $0.err }.min()!, y1 = pts.map { $0.y + $0.err }.max()!
        if x1 == x0 { x0 -= 0.5; x1 += 0.5 }
        if y1 == y0 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.08
        y0 -= pad; y1 += pad
        let pw = width - left - right, ph = height - top - bottom
        func sx(_ x: Double) -> Double { xDescending ? left + (x1 - x) / (x1 - x0) * pw : left + (x - x0) / (x1 - x0) * pw }
        func sy(_ y: Double) -> Double { top + (y1 - y) / (y1 - y0) * ph }
        var s = header(title)
        s += axes(x0: x0, x1: x1, y0: y0, y1: y1, sx: sx, sy: sy, xLabel: xLabel, yLabel: yLabel)
        for (i, ser) in series.enumerated() {
            let (c, dash) = stroke(i, dashed: ser.dashed)
            let sorted = ser.points.sorted { $0.x < $1.x }
            let path = sorted.enumerated().map { j, p in (j == 0 ? "M" : "L") + f(sx(p.x)) + "," + f(sy(p.y)) }.joined(separator: " ")
            s += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>"
            for p in sorted {
                if p.err > 0 {
                    let x = f(sx(p.x)), a = f(sy(p.y - p.err)), b = f(sy(p.y + p.err))
                    s += "<path d=\"M\(x),\(a) L\(x),\(b) M\(f(sx(p.x) - 4)),\(a) L\(f(sx(p.x) + 4)),\(a) M\(f(sx(p.x) - 4)),\(b) L\(f(sx(p.x) + 4)),\(b)\" stroke=\"\(c)\" stroke-width=\"1.2\"/>"
                }
                // A flagged point is a hollow ring, larger than the others, so that a copied chart still shows it.
                let flagged = ser.flagged.contains(p.x)
                s += "<circle cx=\"\(f(sx(p.x)))\" cy=\"\(f(sy(p.y)))\" r=\"\(flagged ? 5 : 3)\" "
                    + (flagged ? "fill=\"#fff\" stroke=\"\(c)\" stroke-width=\"2\"" : "fill=\"\(c)\"")
                    + "><title>\(escape(ser.name)): \(String(format: "%.4g", p.y)) ± \(String(format: "%.2g", p.err)) at \(String(format: "%.3g", p.x))"
                    + (flagged ? " (includes a run that learned nothing)" : "") + "</title></circle>"
            }
        }
        var entries = series.enumerated().map { i, ser in (name: ser.name, stroke: stroke(i, dashed: ser.dashed), ring: false) }
        if series.contains(where: { !$0.flagged.isEmpty }) { entries.append((name: "learned nothing in a run", stroke: (color: "#333", dash: nil), ring: true)) }
        s += legend(entries)
        return s + "</svg>"
    }

    /// Overlaid histograms (step outlines with light fill), one per group, over shared bins.
    package static func histogram(_ groups: [(name: String, values: [Double])], bins: Int = 30, title: String, xLabel: String) -> String {
        let all = groups.flatMap(\.values).filter(\.isFinite)
        guard !all.isEmpty else { return "" }
        var lo = all.min()!, hi = all.max()!
        if hi == lo { lo -= 0.5; hi += 0.5 }
        let w = (hi - lo) / Double(bins)
        let counts = groups.map { g -> [Double] in
            var c = [Double](repeating: 0, count: bins)
            for v in g.values where v.isFinite { c[min(bins - 1, Int((v - lo) / w))] += 1 }
            return c.map { $0 / Double(max(1, g.values.count)) }      // fraction of the group
        }
        let ymax = max(counts.flatMap { $0 }.max() ?? 1, 1e-9) * 1.08
        let pw = width - left - right, ph = height - top - bottom
        func sx(_ x: Double) -> Double { left + (x - lo) / (hi - lo) * pw }
        func sy(_ y: Double) -> Double { top + (ymax - y) / ymax * ph }
        var s = header(title)
        s += axes(x0: lo, x1: hi, y0: 0, y1: ymax, sx: sx, sy: sy, xLabel: xLabel, yLabel: "fraction of class")
        for (i, c) in counts.enumerated() {
            let col = palette[i % palette.count]
            var d = "M\(f(sx(lo))),\(f(sy(0)))"
            for b in 0..<bins {
                d += " L\(f(sx(lo + Double(b) * w))),\(f(sy(c[b]))) L\(f(sx(lo + Double(b + 1) * w))),\(f(sy(c[b])))"
            }
            d += " L\(f(sx(hi))),\(f(sy(0))) Z"
            s += "<path d=\"\(d)\" fill=\"\(col)\" fill-opacity=\"0.18\" stroke=\"\(col)\" stroke-width=\"1.5\"/>"
        }
        s += legend(groups.enumerated().map { i, g in (name: "\(g.name) (\(g.values.count))", stroke: (color: palette[i % palette.count], dash: nil), ring: false) })
        return s + "</svg>"
    }

    static func header(_ title: String) -> String {
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escape(title))\">"
            + "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
            + "<text x=\"\(f(left))\" y=\"18\" font-size=\"14\" font-weight=\"bold\">\(escape(title))</text>"
    }

    static func axes(x0: Double, x1: Double, y0: Double, y1: Double, sx: (Double) -> Double, sy: (Double) -> Double,
                     xLabel: String, yLabel: String) -> String {
        let pw = width - left - right, ph = height - top - bottom
        var s = "<g font-size=\"11\" fill=\"#333\">"
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#999\"/>"
        for t in ticks(y0, y1) {
            s += "<line x1=\"\(f(left))\" x2=\"\(f(left + pw))\" y1=\"\(f(sy(t)))\" y2=\"\(f(sy(t)))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(sy(t) + 4))\" text-anchor=\"end\">\(tickLabel(t))</text>"
        }
        for t in ticks(x0, x1) {
            s += "<line x1=\"\(f(sx(t)))\" x2=\"\(f(sx(t)))\" y1=\"\(f(top + ph))\" y2=\"\(f(top + ph + 4))\" stroke=\"#999\"/>"
            s += "<text x=\"\(f(sx(t)))\" y=\"\(f(top + ph + 17))\" text-anchor=\"middle\">\(tickLabel(t))</text>"
        }
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        s += "<text transform=\"translate(16,\(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>"
        return s + "</g>"
    }

    /// The legend: a swatch per entry (a line segment in the series' colour and dashes, or a hollow ring for
    /// the flagged-point key) and its name.
    static func legend(_ entries: [(name: String, stroke: (color: String, dash: String?), ring: Bool)]) -> String {
        var s = "<g font-size=\"11\">"
        var y = top + 8
        for (n, st, ring) in entries {
            let x0 = width - right + 12
            if ring {
                s += "<circle cx=\"\(f(x0 + 7))\" cy=\"\(f(y - 3))\" r=\"5\" fill=\"#fff\" stroke=\"\(st.color)\" stroke-width=\"2\"/>"
            } else {
                s += "<line x1=\"\(f(x0))\" x2=\"\(f(x0 + 16))\" y1=\"\(f(y - 3))\" y2=\"\(f(y - 3))\" stroke=\"\(st.color)\" stroke-width=\"3\""
                    + (st.dash.map { " stroke-dasharray=\"\($0 == "6,4" ? "4,2" : $0)\"" } ?? "") + "/>"
            }
            // A long name takes up to three lines (settings differ at their ends too: `...-epoch1-hard` / `-easy`); the full name is the tooltip.
            let lines = legendLines(n)
            let x = f(width - right + 32)
            s += "<text x=\"\(x)\" y=\"\(f(y + 1))\"><title>\(escape(n))</title>"
                + lines.enumerated().map { k, l in "<tspan x=\"\(x)\" dy=\"\(k == 0 ? 0 : 12)\">\(escape(l))</tspan>" }.joined() + "</text>"
            y += Double(18 + 12 * (lines.count - 1))
        }
        return s + "</g>"
    }

    /// A legend name in at most three lines of 24 characters, each broken after a `+`, `-`, `:`, `.` or space
    /// where one is near; a longer name keeps its start and its end around an ellipsis.
    static func legendLines(_ n: String) -> [String] {
        let width = 24, most = 3
        var lines: [String] = [], rest = Array(n)
        while rest.count > width && lines.count < most - 1 {
            var cut = width
            if let b = (width / 2..<width).reversed().first(where: { "+-:. ".contains(rest[$0 - 1]) }) { cut = b }
            lines.append(String(rest[..<cut]).trimmingCharacters(in: .whitespaces))
            rest = Array(rest[cut...])
        }
        let last = String(rest)
        lines.append(last.count <= width ? last : "…" + String(last.suffix(width - 1)))
        return lines
    }

    /// About five round ticks inside [a, b].
    static func ticks(_ a: Double, _ b: Double) -> [Double] {
        let span = b - a
        guard span > 0, span.isFinite else { return [a] }
        let raw = span / 5
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var t = ceil(a / step) * step
        var out: [Double] = []
        while t <= b + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    static func tickLabel(_ x: Double) -> String { String(format: "%g", (x * 1e6).rounded() / 1e6) }
    static func f(_ x: Double) -> String { String(format: "%.1f", x) }

    /// Escapes text for HTML and SVG.
    package static func escape(_ s: String) -> String {
        var o = ""
        o.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(c)
            }
        }
        return o
    }
}
