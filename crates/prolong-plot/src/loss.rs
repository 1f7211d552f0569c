//! The training chart: loss per optimizer step, and the held-out loss when there is one.

use std::fmt::Write;

use crate::svg;

/// A line chart of the training loss per step (`train`: `(step, loss)`) and, when
/// `held` is not empty, the held-out loss (dots joined by a dashed line, with a
/// legend). Points with a non-finite loss are left out.
pub fn loss(train: &[(f64, f64)], held: &[(f64, f64)], title: &str) -> String {
    let (w, h) = (720.0f64, 400.0f64);
    let frame = svg::Frame::line_chart(w, h, 44.0);
    let finite = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().copied().filter(|p| p.1.is_finite()).collect()
    };
    let (train, held) = (finite(train), finite(held));
    let mut s = svg::begin(w, h, w / 2.0, title);
    let all: Vec<(f64, f64)> = train.iter().chain(&held).copied().collect();
    if all.is_empty() {
        return svg::end(s);
    }
    let first = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let last = all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let (x0, x1) = (first.min(1.0), last.max(first + 1.0));
    let lo = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let y_range = svg::padded(lo, hi);
    let sx = |x: f64| frame.left + (x - x0) / (x1 - x0) * frame.width;
    let sy = |y: f64| frame.y(y, y_range);
    frame.outline_and_grid(&mut s, y_range);
    for i in 0..=4 {
        let xv = (x0 + (x1 - x0) * i as f64 / 4.0).round();
        frame.x_tick(&mut s, sx(xv), &format!("{xv:.0}"));
    }
    frame.axis_titles(&mut s, "optimizer step", h - 8.0, "loss");
    let scaled = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().map(|&(x, y)| (sx(x), sy(y))).collect()
    };
    const TRAIN: &str = "#1f77b4";
    const HELD: &str = "#ff7f0e";
    svg::polyline(&mut s, TRAIN, "", &scaled(&train));
    if !held.is_empty() {
        let held = scaled(&held);
        svg::polyline(&mut s, HELD, r#" stroke-dasharray="5,3""#, &held);
        for &(x, y) in &held {
            svg::dot(&mut s, x, y, HELD);
        }
        let (lx, ly) = (frame.left + frame.width - 150.0, frame.top + 16.0);
        for (i, (color, label)) in [(TRAIN, "training loss"), (HELD, "held-out loss")]
            .iter()
            .enumerate()
        {
            let y = ly + 16.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{label}</text>"#,
                lx + 20.0,
                lx + 26.0,
                y + 4.0
            );
        }
    }
    svg::end(s)
}
