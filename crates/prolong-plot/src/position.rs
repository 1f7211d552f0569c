//! prolong-eval's `ppl.svg`: loss by token position.

use std::fmt::Write;

use crate::svg;

/// One line of [`loss_by_position`]: its legend name, colour and a loss per bucket
/// (`None`: the bucket is empty and has no point).
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub losses: Vec<Option<f64>>,
}

/// A line chart of loss per position bucket, one line per series, the buckets evenly
/// spaced and labelled `labels` (buckets that double in width make the x axis a log₂
/// position axis).
pub fn loss_by_position(title: &str, labels: &[String], series: &[Series]) -> String {
    let (w, h) = (720.0f64, 400.0f64);
    let frame = svg::Frame::line_chart(w, h, 56.0);
    let n = labels.len().max(1);
    let losses = series.iter().flat_map(|s| s.losses.iter().flatten());
    let (lo, hi) = losses.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &l| {
        (lo.min(l), hi.max(l))
    });
    let mut s = svg::begin(w, h, w / 2.0, title);
    if lo > hi {
        return svg::end(s);
    }
    let y_range = svg::padded(lo, hi);
    let sx = |i: usize| frame.left + (i as f64 + 0.5) / n as f64 * frame.width;
    frame.outline_and_grid(&mut s, y_range);
    for (i, label) in labels.iter().enumerate() {
        frame.x_tick(&mut s, sx(i), label);
    }
    frame.axis_titles(&mut s, "token position (log scale)", h - 12.0, "loss");
    let right = frame.left + frame.width;
    for (k, line) in series.iter().enumerate() {
        let (name, color) = (line.name, line.color);
        let pts: Vec<(f64, f64)> = line
            .losses
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((sx(i), frame.y((*l)?, y_range))))
            .collect();
        svg::polyline(&mut s, color, "", &pts);
        for &(x, y) in &pts {
            svg::dot(&mut s, x, y, color);
        }
        let ly = frame.top + 16.0 + 16.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}" text-anchor="end">{name}</text>"#,
            right - 30.0,
            ly - 4.0,
            right - 10.0,
            ly - 4.0,
            right - 36.0,
            ly
        );
    }
    svg::end(s)
}
