//! Charts as standalone SVG: titles, labelled axes with ticks, legends.
//! Plain text output, no fonts or native libraries needed; any browser or
//! Markdown viewer shows them.

use std::fmt::Write;

const W: f64 = 900.0;
const H: f64 = 480.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 90.0;
const COLORS: [&str; 4] = ["#3b6fb6", "#e08a2c", "#4c9a5b", "#b64a4a"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" axis maximum and tick step covering `max`.
fn nice(max: f64) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 0.2);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

/// Short number for tick labels.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn frame(out: &mut String, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-family=\"Helvetica, Arial, sans-serif\">\n\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"32\" font-size=\"20\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" font-size=\"14\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"22\" y=\"{}\" font-size=\"14\" text-anchor=\"middle\" \
         transform=\"rotate(-90 22 {})\">{}</text>\n",
        W / 2.0,
        esc(title),
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 12.0,
        esc(x_label),
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0,
        esc(y_label),
    );
}

fn y_axis(out: &mut String, max: f64) -> f64 {
    let (top, step) = nice(max);
    let plot_h = H - TOP - BOTTOM;
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = H - BOTTOM - v / top * plot_h;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>\n",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            short(v)
        );
        v += step;
    }
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        H - BOTTOM,
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM
    );
    top
}

fn x_label_at(out: &mut String, x: f64, label: &str, rotate: bool) {
    let y = H - BOTTOM + 16.0;
    if rotate {
        let _ = writeln!(
            out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"11\" text-anchor=\"end\" \
             transform=\"rotate(-40 {x:.1} {y:.1})\">{}</text>",
            esc(label)
        );
    } else {
        let _ = writeln!(
            out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            esc(label)
        );
    }
}

fn legend(out: &mut String, names: &[&str]) {
    if names.len() < 2 {
        return;
    }
    for (i, name) in names.iter().enumerate() {
        let x = W - RIGHT - 220.0;
        let y = TOP + 8.0 + i as f64 * 20.0;
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/>\n\
             <text x=\"{}\" y=\"{}\" font-size=\"13\">{}</text>",
            y - 11.0,
            COLORS[i % COLORS.len()],
            x + 20.0,
            y,
            esc(name)
        );
    }
}

/// A line chart of `values` over `labels` (every n-th label shown).
pub fn line(
    title: &str,
    x_label: &str,
    y_label: &str,
    labels: &[String],
    values: &[f64],
) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_label, y_label);
    let max = values.iter().copied().fold(0.0, f64::max);
    let top = y_axis(&mut out, max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = values.len().max(2);
    let x_of = |i: usize| LEFT + i as f64 / (n - 1) as f64 * plot_w;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), H - BOTTOM - v / top * plot_h))
        .collect();
    let _ = writeln!(
        out,
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
        COLORS[0],
        points.join(" ")
    );
    let every = labels.len().div_ceil(12).max(1);
    for (i, l) in labels.iter().enumerate().step_by(every) {
        x_label_at(&mut out, x_of(i), l, true);
    }
    out.push_str("</svg>\n");
    out
}

/// Vertical bars, one group per label, one bar per series.
pub fn bars(
    title: &str,
    x_label: &str,
    y_label: &str,
    labels: &[String],
    series: &[(&str, Vec<f64>)],
) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_label, y_label);
    let max = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0, f64::max);
    let top = y_axis(&mut out, max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let groups = labels.len().max(1) as f64;
    let group_w = plot_w / groups;
    let k = series.len().max(1) as f64;
    let bar_w = group_w * 0.8 / k;
    let rotate = labels.len() > 8 || labels.iter().any(|l| l.len() > 14);
    for (g, label) in labels.iter().enumerate() {
        let gx = LEFT + g as f64 * group_w + group_w * 0.1;
        for (s, (_, values)) in series.iter().enumerate() {
            let v = values.get(g).copied().unwrap_or(0.0);
            let h = v / top * plot_h;
            let x = gx + s as f64 * bar_w;
            let _ = writeln!(
                out,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                H - BOTTOM - h,
                bar_w * 0.95,
                COLORS[s % COLORS.len()]
            );
            if labels.len() <= 12 {
                let _ = writeln!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                    x + bar_w * 0.475,
                    H - BOTTOM - h - 4.0,
                    short(v)
                );
            }
        }
        x_label_at(&mut out, gx + group_w * 0.4, label, rotate);
    }
    let names: Vec<&str> = series.iter().map(|s| s.0).collect();
    legend(&mut out, &names);
    out.push_str("</svg>\n");
    out
}

/// A histogram of the positive `values` in bins that grow 1-2-5 per
/// decade (1-2, 2-5, 5-10, 10-20, ...), from the decade of the smallest
/// value to the bin of the largest: for heavy-tailed values (what customers
/// spend), where equal-width bins put nearly everyone in the first.
pub fn log_histogram(title: &str, x_label: &str, y_label: &str, values: &[f64]) -> String {
    let (labels, counts) = log_bins(values);
    bars(title, x_label, y_label, &labels, &[("customers", counts)])
}

/// The bins of [`log_histogram`]: their labels and counts.
fn log_bins(values: &[f64]) -> (Vec<String>, Vec<f64>) {
    let positive: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0, f64::max);
    let mut edges = Vec::new();
    if lo.is_finite() {
        let mut decade = 10f64.powi(lo.log10().floor() as i32);
        'grow: loop {
            for step in [1.0, 2.0, 5.0] {
                let edge = decade * step;
                edges.push(edge);
                if edge > hi {
                    break 'grow;
                }
            }
            decade *= 10.0;
        }
    }
    let bins = edges.len().saturating_sub(1);
    let mut counts = vec![0.0; bins];
    for v in &positive {
        // The last edge is above the largest value: every value has a bin.
        let i = edges.partition_point(|e| e <= v).saturating_sub(1);
        if let Some(c) = counts.get_mut(i.min(bins.saturating_sub(1))) {
            *c += 1.0;
        }
    }
    let labels: Vec<String> = edges
        .windows(2)
        .map(|w| format!("{}-{}", short(w[0]), short(w[1])))
        .collect();
    (labels, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axis_covers_the_maximum_with_round_steps() {
        assert_eq!(nice(87.0), (100.0, 20.0));
        assert_eq!(nice(1234.0), (1250.0, 250.0));
        assert_eq!(nice(0.0), (1.0, 0.2));
    }

    #[test]
    fn charts_have_title_axes_and_escaped_labels() {
        let svg = bars(
            "Units <sold>",
            "product",
            "units",
            &["a&b".to_string(), "c".to_string()],
            &[("units", vec![3.0, 5.0])],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("Units &lt;sold&gt;"));
        assert!(svg.contains("a&amp;b"));
        assert!(svg.contains(">units</text>"));
        assert_eq!(svg.matches("<rect x=").count(), 2);
        // 1-2-5 bins from the decade of 1.5 up to the bin of 700: nine bins,
        // one value in each of 1-2, 2-5, 20-50 and 500-1k; 0 is left out.
        let (labels, counts) = log_bins(&[1.5, 3.0, 700.0, 40.0, 0.0, 2.0]);
        assert_eq!(
            labels,
            ["1-2", "2-5", "5-10", "10-20", "20-50", "50-100", "100-200", "200-500", "500-1.0k"]
        );
        assert_eq!(counts, [1.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    }
}
