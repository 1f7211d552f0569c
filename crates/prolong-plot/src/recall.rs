//! prolong-eval's recall heat map.

use std::fmt::Write;

use crate::svg;

/// A row of [`heat_map`]: its label, a score (0–100, NaN for none) per column, and
/// whether it is drawn bold (a summary row).
pub struct Row<'a> {
    pub label: &'a str,
    pub scores: &'a [f64],
    pub bold: bool,
}

/// A heat map: a cell per (row, column), coloured by score (0 red, 50 yellow,
/// 100 green, grey for NaN), its value printed in it to one decimal.
pub fn heat_map(title: &str, columns: &[String], rows: &[Row]) -> String {
    let (cw, ch, left, top) = (72.0f64, 32.0f64, 150.0f64, 64.0f64);
    let w = left + cw * columns.len() as f64 + 20.0;
    let h = top + ch * rows.len() as f64 + 20.0;
    let mut s = svg::begin(w, h, w / 2.0, title);
    for (j, column) in columns.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{column}</text>"#,
            left + cw * (j as f64 + 0.5),
            top - 10.0,
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + ch * i as f64;
        let bold = if row.bold {
            r#" font-weight="bold""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end"{bold}>{}</text>"#,
            left - 8.0,
            y + ch / 2.0 + 4.0,
            svg::escape(row.label)
        );
        for (j, &v) in row.scores.iter().enumerate() {
            let x = left + cw * j as f64;
            let _ = writeln!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{cw}" height="{ch}" fill="{}" stroke="#fff"/><text x="{:.1}" y="{:.1}" text-anchor="middle"{bold}>{}</text>"##,
                colour(v),
                x + cw / 2.0,
                y + ch / 2.0 + 4.0,
                if v.is_nan() {
                    "–".to_owned()
                } else {
                    format!("{v:.1}")
                }
            );
        }
    }
    svg::end(s)
}

/// Red (0) → yellow (50) → green (100); grey for NaN.
fn colour(score: f64) -> String {
    if score.is_nan() {
        return "#ccc".to_owned();
    }
    let t = (score / 100.0).clamp(0.0, 1.0);
    let (r, g) = if t < 0.5 {
        (230.0, 80.0 + 300.0 * t)
    } else {
        (230.0 - 320.0 * (t - 0.5), 230.0)
    };
    format!("rgb({:.0},{:.0},90)", r, g)
}
