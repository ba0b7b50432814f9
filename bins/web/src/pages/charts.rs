//! Charts as server-rendered SVG: no script, nothing for the CSP to allow.

use crate::render::escape;

/// A horizontal bar chart: one labelled bar per `(label, value)`, scaled to the largest.
pub fn bars(title: &str, data: &[(String, i64)]) -> String {
    let row = 24;
    let label_w = 230;
    let bar_w = 300;
    let height = row * data.len().max(1) + 8;
    let max = data.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{t}\" viewBox=\"0 0 {w} {height}\" \
         class=\"w-full max-w-2xl\"><title>{t}</title>",
        t = escape(title),
        w = label_w + bar_w + 80
    );
    for (i, (label, value)) in data.iter().enumerate() {
        let y = i * row + 4;
        let len = ((*value).max(0) as f64 / max as f64 * bar_w as f64).round() as i64;
        svg.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" class=\"fill-slate-700 text-xs\">{label}</text>\
             <rect x=\"{bx}\" y=\"{y}\" width=\"{len}\" height=\"16\" rx=\"2\" class=\"fill-sky-600\"></rect>\
             <text x=\"{vx}\" y=\"{ty}\" class=\"fill-slate-900 text-xs\">{value}</text>",
            lx = label_w - 8,
            ty = y + 12,
            bx = label_w,
            vx = label_w as i64 + len + 6,
            label = escape(label),
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let svg = bars("t", &[("<a>".into(), 10), ("b".into(), 5)]);
        assert!(svg.contains("&lt;a&gt;"));
        assert!(svg.contains("width=\"300\""));
        assert!(svg.contains("width=\"150\""));
        assert!(!svg.contains("<a>"));
    }
}
