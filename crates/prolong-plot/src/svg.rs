//! The pieces every chart is drawn with, so that each opens, escapes text and draws
//! its lines alike.

use std::fmt::Write;

/// `text` with the characters XML gives a meaning replaced by entities.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chart's opening: the `<svg>` element, `width` × `height` in sans-serif
/// 12, a white background, and `title` (escaped) centred on `title_x`.
/// [`end`] closes it.
pub fn begin(width: f64, height: f64, title_x: f64, title: &str) -> String {
    let (w, h) = (width, height);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{title_x}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        escape(title)
    );
    s
}

/// Closes a chart opened by [`begin`].
pub fn end(mut s: String) -> String {
    s.push_str("</svg>\n");
    s
}

/// Points `x,y` to a tenth, space-separated: a polyline's `points`.
pub fn points(pts: &[(f64, f64)]) -> String {
    pts.iter()
        .map(|&(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A series' line through `pts` (already in chart coordinates); `extra`
/// adds attributes (a dash pattern).
pub fn polyline(s: &mut String, color: &str, extra: &str, pts: &[(f64, f64)]) {
    let _ = writeln!(
        s,
        r#"<polyline fill="none" stroke="{color}" stroke-width="1.5"{extra} points="{}"/>"#,
        points(pts)
    );
}

/// A series' dot at `(x, y)`.
pub fn dot(s: &mut String, x: f64, y: f64, color: &str) {
    let _ = writeln!(
        s,
        r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{color}"/>"#
    );
}

/// `[lo, hi]` widened by 5% of its span (at least 0.001) on each side, so
/// the extreme points do not sit on the frame.
pub fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

/// The plot area of a line chart, inside the chart's margins.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl Frame {
    /// The plot area of a `width` × `height` line chart: 64 on the left for the y
    /// labels, 36 on top for the title, 20 on the right, `bottom` below for the x
    /// labels and title.
    pub fn line_chart(width: f64, height: f64, bottom: f64) -> Self {
        Self {
            left: 64.0,
            top: 36.0,
            width: width - 64.0 - 20.0,
            height: height - 36.0 - bottom,
        }
    }

    /// The y coordinate of value `v` on a y axis running from `y0` (bottom)
    /// to `y1` (top).
    pub fn y(&self, v: f64, (y0, y1): (f64, f64)) -> f64 {
        self.top + (1.0 - (v - y0) / (y1 - y0)) * self.height
    }

    /// The area's grey outline and five horizontal grid lines over the y
    /// range, each labelled with its value to three decimals.
    pub fn outline_and_grid(&self, s: &mut String, y_range: (f64, f64)) {
        let Frame {
            left: ml,
            top: mt,
            width: pw,
            height: ph,
        } = *self;
        let _ = writeln!(
            s,
            r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##
        );
        let (y0, y1) = y_range;
        for i in 0..=4 {
            let v = y0 + (y1 - y0) * i as f64 / 4.0;
            let y = self.y(v, y_range);
            let _ = writeln!(
                s,
                r##"<line x1="{ml}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.3}</text>"##,
                ml + pw,
                ml - 6.0,
                y + 4.0
            );
        }
    }

    /// A label under the x axis, centred on `x`.
    pub fn x_tick(&self, s: &mut String, x: f64, label: &str) {
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            self.top + self.height + 18.0
        );
    }

    /// The axis titles: `x_title` centred at height `x_title_y`, `y_title`
    /// turned upright along the left edge.
    pub fn axis_titles(&self, s: &mut String, x_title: &str, x_title_y: f64, y_title: &str) {
        let mid_y = self.top + self.height / 2.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{x_title}</text><text x="16" y="{mid_y:.1}" transform="rotate(-90 16 {mid_y:.1})" text-anchor="middle">{y_title}</text>"#,
            self.left + self.width / 2.0,
            x_title_y,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_points_are_written_as_svg_reads_them() {
        assert_eq!(
            escape(r#"a "b" <c> & d"#),
            "a &quot;b&quot; &lt;c&gt; &amp; d"
        );
        assert_eq!(points(&[(1.0, 2.25), (3.96, -0.04)]), "1.0,2.2 4.0,-0.0");
        let chart = end(begin(10.0, 20.0, 5.0, "t&"));
        assert!(chart.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" width="10""#));
        assert!(chart.contains(">t&amp;</text>") && chart.ends_with("</svg>\n"));
    }

    #[test]
    fn the_y_axis_runs_bottom_up_over_a_padded_range() {
        assert_eq!(padded(1.0, 3.0), (0.9, 3.1));
        assert_eq!(padded(2.0, 2.0), (2.0 - 1e-3, 2.0 + 1e-3));
        let frame = Frame {
            left: 0.0,
            top: 10.0,
            width: 100.0,
            height: 50.0,
        };
        assert_eq!(frame.y(0.0, (0.0, 1.0)), 60.0);
        assert_eq!(frame.y(1.0, (0.0, 1.0)), 10.0);
    }
}
