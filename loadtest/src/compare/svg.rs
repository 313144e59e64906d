//! Two small hand-written SVG charts: per-test throughput ratios, and the
//! scaling series. Plain shapes and text, readable in any browser or viewer.

use std::fmt::Write;

const COLORS: &[&str] = &["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One bar group per test; one bar per series (e.g. `-P 1`, `-P 16`).
/// `None` values are drawn as a red "error" mark.
pub fn ratio_chart(title: &str, tests: &[String], series: &[(String, Vec<Option<f64>>)]) -> String {
    let (left, top, bar_h, gap, width) = (260.0, 58.0, 12.0, 8.0, 520.0);
    let group_h = bar_h * series.len() as f64 + gap;
    let height = top + group_h * tests.len() as f64 + 60.0;
    let max = series.iter().flat_map(|(_, v)| v.iter().flatten()).fold(1.2f64, |m, &x| m.max(x)).min(10.0) * 1.05;
    let x = |v: f64| left + v.min(max) / max * width;
    let mut s = String::new();
    let total_w = left + width + 40.0;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="20" font-size="14" font-weight="bold">{}</text>"#, 10, esc(title));
    for (i, (name, _)) in series.iter().enumerate() {
        let lx = left + 160.0 * i as f64;
        let _ = writeln!(s, r#"<rect x="{lx}" y="30" width="10" height="10" fill="{}"/>"#, COLORS[i % COLORS.len()]);
        let _ = writeln!(s, r#"<text x="{}" y="39">{}</text>"#, lx + 14.0, esc(name));
    }
    for (ti, test) in tests.iter().enumerate() {
        let gy = top + group_h * ti as f64;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 6.0,
            gy + group_h / 2.0,
            esc(test)
        );
        for (si, (_, values)) in series.iter().enumerate() {
            let y = gy + bar_h * si as f64;
            match values.get(ti).copied().flatten() {
                Some(v) => {
                    let _ = writeln!(
                        s,
                        r#"<rect x="{left}" y="{y}" width="{:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{}">{v:.2}</text>"#,
                        x(v) - left,
                        bar_h - 1.0,
                        COLORS[si % COLORS.len()],
                        x(v) + 3.0,
                        y + bar_h - 2.0
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        r##"<text x="{}" y="{}" fill="#d62728">error / not run</text>"##,
                        left + 3.0,
                        y + bar_h - 2.0
                    );
                }
            }
        }
    }
    let bottom = top + group_h * tests.len() as f64;
    // 1.0 is labelled below the bars, 0.8 above them, so the two never overlap.
    for (v, dash, label, ly) in [(1.0, "", "1.0 (= redis-server)", bottom + 14.0), (0.8, "4,3", "0.8", top - 3.0)] {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{bottom}" stroke="#333" stroke-dasharray="{dash}"/><text x="{0:.1}" y="{ly}" text-anchor="middle">{label}</text>"##,
            x(v),
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">throughput ratio moonshard / redis-server (median over rounds)</text>"#,
        left + width / 2.0,
        bottom + 34.0
    );
    s.push_str("</svg>\n");
    s
}

/// One test in the scaling chart: its name, throughput per shard count (None
/// where the run failed), and redis-server's throughput.
pub type ScalingLine = (String, Vec<Option<f64>>, Option<f64>);

/// Throughput against shard count, one line per test, with redis-server's
/// throughput for the same test as a dashed horizontal line.
pub fn scaling_chart(title: &str, shards: &[usize], lines: &[ScalingLine]) -> String {
    let (left, top, w, h) = (80.0, 50.0, 480.0, 280.0);
    let max =
        lines.iter().flat_map(|(_, v, r)| v.iter().flatten().chain(r.iter())).fold(1.0f64, |m, &x| m.max(x)) * 1.1;
    let n = shards.len().max(1);
    let px = |i: usize| {
        if n == 1 {
            left + w / 2.0
        } else {
            left + w * i as f64 / (n - 1) as f64
        }
    };
    let py = |v: f64| top + h - v / max * h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        left + w + 180.0,
        top + h + 60.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="10" y="20" font-size="14" font-weight="bold">{}</text>"#, esc(title));
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{0}" stroke="#333"/><line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#333"/>"##,
        top + h,
        left + w
    );
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{:.0}k</text>"#,
            left - 4.0,
            py(v) + 4.0,
            v / 1000.0
        );
    }
    for (i, sh) in shards.iter().enumerate() {
        let _ = writeln!(s, r#"<text x="{:.1}" y="{}" text-anchor="middle">{sh}</text>"#, px(i), top + h + 14.0);
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">moonshard --shards (requests/s on the y axis)</text>"#,
        left + w / 2.0,
        top + h + 34.0
    );
    for (li, (name, values, redis)) in lines.iter().enumerate() {
        let color = COLORS[li % COLORS.len()];
        let pts: Vec<String> =
            values.iter().enumerate().filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", px(i), py(v)))).collect();
        let _ = writeln!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, pts.join(" "));
        for p in &pts {
            let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>"#);
        }
        if let Some(r) = redis {
            let _ = writeln!(
                s,
                r#"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="{color}" stroke-dasharray="5,4"/>"#,
                py(*r),
                left + w
            );
        }
        let ly = top + 16.0 * li as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{2}" y="{3}">{4} (dashed: redis-server)</text>"#,
            left + w + 10.0,
            left + w + 30.0,
            left + w + 34.0,
            ly + 4.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn charts_are_wellformed_enough() {
        let r = super::ratio_chart("t", &["SET".into(), "GET".into()], &[("-P 1".into(), vec![Some(1.1), None])]);
        assert!(r.starts_with("<svg") && r.trim_end().ends_with("</svg>"));
        assert!(r.contains("error / not run"));
        let s = super::scaling_chart("s", &[1, 2], &[("SET".into(), vec![Some(1000.0), Some(1800.0)], Some(1500.0))]);
        assert_eq!(s.matches("<circle").count(), 2);
    }
}
