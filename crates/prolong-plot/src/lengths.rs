//! `prolong-data stats --plot`: document lengths by domain.

use std::fmt::Write;

use crate::svg;

const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// 1, 2, ..., 512, 1K, ..., 512K, 1M, ...
fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}G", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}

/// Bucket position on x: 0 for length 0, k + 1 for [2^k, 2^(k+1)).
fn slot(min: u64) -> u32 {
    if min == 0 {
        0
    } else {
        64 - min.leading_zeros()
    }
}

/// Documents (and their tokens) of one power-of-two length bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Lengths in `[min, max]`: `[0, 0]`, or `[2^k, 2^(k+1) - 1]`.
    pub min: u64,
    pub max: u64,
    pub documents: u64,
    pub tokens: u64,
}

/// Log2 length buckets on x, documents (or, with `tokens`, tokens) on y, one line per
/// domain of `series` (in the order given) with a point per bucket, a legend and axis
/// labels.
pub fn lengths(series: &[(String, Vec<Bucket>)], tokens: bool, title: &str) -> String {
    let (w, h) = (900.0_f64, 480.0_f64);
    let (left, right, top, bottom) = (80.0, 220.0, 40.0, 60.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let value = |b: &Bucket| if tokens { b.tokens } else { b.documents };
    let slots: Vec<u32> = series
        .iter()
        .flat_map(|(_, h)| h.iter().map(|b| slot(b.min)))
        .collect();
    let lo = slots.iter().copied().min().unwrap_or(0);
    let hi = slots.iter().copied().max().unwrap_or(1).max(lo + 1);
    let ymax = series
        .iter()
        .flat_map(|(_, h)| h.iter().map(value))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |s: u32| left + pw * f64::from(s - lo) / f64::from(hi - lo);
    let y = |v: u64| top + ph - ph * v as f64 / ymax;
    let mut s = svg::begin(
        w,
        h,
        left + pw / 2.0,
        &format!("Document lengths by domain: {title}"),
    );
    // Axes, ticks and grid.
    let _ = writeln!(
        s,
        r#"<path d="M{left},{top} V{} H{}" fill="none" stroke="black"/>"#,
        top + ph,
        left + pw
    );
    for sl in lo..=hi {
        let label = if sl == 0 {
            "0".to_string()
        } else {
            human(1u64 << (sl - 1))
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            x(sl),
            top + ph + 16.0
        );
    }
    for k in 0..=4u64 {
        let v = (ymax * k as f64 / 4.0).round() as u64;
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v}</text>"##,
            left + pw,
            left - 6.0,
            yy + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">document length in tokens (log2 buckets: [2^k, 2^(k+1)) at 2^k)</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        if tokens { "tokens" } else { "documents" }
    );
    // Series and legend.
    for (i, (domain, hist)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = hist.iter().map(|b| (x(slot(b.min)), y(value(b)))).collect();
        let name = svg::escape(domain);
        let _ = writeln!(
            s,
            r#"<g class="series" data-domain="{name}"><polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            svg::points(&points)
        );
        for b in hist {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{name}: {} documents, {} tokens of length {}..{}</title></circle>"#,
                x(slot(b.min)),
                y(value(b)),
                b.documents,
                b.tokens,
                b.min,
                b.max
            );
        }
        let _ = writeln!(s, "</g>");
        let ly = top + 10.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect class="legend" x="{}" y="{:.1}" width="14" height="4" fill="{color}"/><text x="{}" y="{:.1}">{name}</text>"#,
            left + pw + 20.0,
            ly - 4.0,
            left + pw + 40.0,
            ly
        );
    }
    svg::end(s)
}
