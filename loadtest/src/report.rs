//! Results as a Markdown table and as JSON (hand-written: the shape is small
//! and fixed, not worth a serialization dependency).

use crate::run::RunResult;
use crate::seed::Verification;

pub struct Report {
    pub addr: String,
    pub workload: String,
    pub connections: usize,
    pub pipeline: u64,
    pub threads: usize,
    pub result: RunResult,
    pub verification: Option<Verification>,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Report {
    fn latency(&self) -> [(&'static str, f64); 5] {
        let h = &self.result.hist;
        [
            ("p50", ms(h.value_at_quantile(0.50))),
            ("p99", ms(h.value_at_quantile(0.99))),
            ("p99_9", ms(h.value_at_quantile(0.999))),
            ("max", ms(h.max())),
            ("mean", h.mean() / 1e6),
        ]
    }

    /// True when every request got a non-error reply and verification (if any) held.
    pub fn clean(&self) -> bool {
        self.result.failures() == 0 && self.verification.as_ref().is_none_or(|v| v.ok())
    }

    pub fn markdown(&self) -> String {
        let r = &self.result;
        let lat = self.latency();
        let mut s = format!("Workload: `{}` against {}\n\n", self.workload, self.addr);
        s += "| conns | pipeline | threads | replies | errors | lost | seconds | req/s | p50 ms | p99 ms | p99.9 ms | max ms |\n";
        s += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            self.connections,
            self.pipeline,
            self.threads,
            r.replies,
            r.errors,
            r.lost,
            r.elapsed.as_secs_f64(),
            r.throughput(),
            lat[0].1,
            lat[1].1,
            lat[2].1,
            lat[3].1
        );
        if let Some(e) = &r.first_error {
            s += &format!("\nFirst error: `{e}`\n");
        }
        if let Some(v) = &self.verification {
            s += &format!(
                "\nSeed check: {} list/counter pairs, {} elements, {} mismatches{}\n",
                v.lists_checked,
                v.elements,
                v.mismatches,
                if v.ok() { " (atomicity held)" } else { "" }
            );
            for e in &v.examples {
                s += &format!("- {e}\n");
            }
        }
        s
    }

    pub fn json(&self) -> String {
        let r = &self.result;
        let lat: Vec<String> = self.latency().iter().map(|(k, v)| format!("\"{k}\": {v:.4}")).collect();
        let verification = match &self.verification {
            None => "null".to_string(),
            Some(v) => format!(
                "{{\"lists_checked\": {}, \"elements\": {}, \"mismatches\": {}, \"examples\": [{}]}}",
                v.lists_checked,
                v.elements,
                v.mismatches,
                v.examples.iter().map(|e| json_str(e)).collect::<Vec<_>>().join(", ")
            ),
        };
        format!(
            "{{\n  \"addr\": {},\n  \"workload\": {},\n  \"connections\": {},\n  \"pipeline\": {},\n  \"threads\": {},\n  \
             \"replies\": {},\n  \"errors\": {},\n  \"lost\": {},\n  \"first_error\": {},\n  \"seconds\": {:.4},\n  \
             \"requests_per_sec\": {:.1},\n  \"latency_ms\": {{{}}},\n  \"verification\": {},\n  \"slow\": [{}],\n  \"clean\": {}\n}}\n",
            json_str(&self.addr),
            json_str(&self.workload),
            self.connections,
            self.pipeline,
            self.threads,
            r.replies,
            r.errors,
            r.lost,
            r.first_error.as_deref().map(json_str).unwrap_or_else(|| "null".into()),
            r.elapsed.as_secs_f64(),
            r.throughput(),
            lat.join(", "),
            verification,
            r.slow.iter().map(|(at, us)| format!("[{at}, {us}]")).collect::<Vec<_>>().join(", "),
            self.clean()
        )
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::json_str("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
    }
}
