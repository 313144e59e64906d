//! Reports: redis-cli-pasteable reproductions and the final statistics.

use crate::fuzz::{FindingKind, Summary};
use crate::gen::{Step, StepKind};
use crate::resp::{quote, show};
use crate::rules;
use std::fmt::Write as _;

/// A reproduction as lines for `redis-cli` (starting from an empty server).
pub fn repro_script(steps: &[Step]) -> String {
    let mut s = String::from("FLUSHALL\n");
    for st in steps {
        for c in &st.cmds {
            let line: Vec<String> = c.argv.iter().map(|a| quote(a)).collect();
            s.push_str(&line.join(" "));
            s.push('\n');
        }
    }
    s
}

/// Which lines were written together (pipelines, MULTI blocks), if any.
fn batching_note(steps: &[Step]) -> Option<String> {
    let mut line = 2; // after FLUSHALL
    let mut notes = Vec::new();
    for st in steps {
        let n = st.cmds.len();
        if n > 1 && st.kind != StepKind::Seed {
            notes.push(format!("lines {}-{} ({})", line, line + n - 1, st.kind.name()));
        }
        line += n;
    }
    (!notes.is_empty()).then(|| format!("written in one batch: {}", notes.join(", ")))
}

fn kb(v: Option<u64>) -> String {
    v.map(|x| format!("{:.1} MiB", x as f64 / 1024.0)).unwrap_or_else(|| "n/a".into())
}

/// The full markdown report.
pub fn markdown(sum: &Summary) -> String {
    let mut s = String::new();
    let secs = sum.elapsed.as_secs_f64().max(0.001);
    let _ = writeln!(s, "## difffuzz run: seed {}\n", sum.seed);
    let _ = writeln!(
        s,
        "- {} commands in {} sequences, {:.0} s ({:.0} commands/s), {} replays for minimization, {} server restarts",
        sum.counters.commands,
        sum.sequences,
        secs,
        sum.counters.commands as f64 / secs,
        sum.replays,
        sum.restarts
    );
    let steps: Vec<String> = sum.steps.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "- steps: {}", steps.join(", "));
    let _ = writeln!(s, "- distinct commands drawn: {} of {} eligible", sum.drawn.len(), sum.eligible);
    let counts = |k: FindingKind| sum.findings.iter().filter(|f| f.kind == k).count();
    let _ = writeln!(
        s,
        "- findings: {} differences, {} not reproducible, {} crashes, {} hangs, {} RSS growth",
        counts(FindingKind::Difference),
        counts(FindingKind::NotReproducible),
        counts(FindingKind::Crash),
        counts(FindingKind::Hang),
        counts(FindingKind::RssGrowth)
    );
    let _ = writeln!(
        s,
        "- moonshard RSS after FLUSHALL: baseline {}, last {}, peak {} ({} samples); redis-server: {} -> {}",
        kb(sum.rss.baseline_kb),
        kb(sum.rss.last_kb),
        kb(sum.rss.peak_kb),
        sum.rss.samples,
        kb(sum.rss.redis_baseline_kb),
        kb(sum.rss.redis_last_kb)
    );
    let trace = &sum.rss.trace;
    if trace.len() > 2 {
        // At most 10 evenly spaced samples.
        let step = trace.len().div_ceil(10);
        let points: Vec<String> = trace
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i == trace.len() - 1)
            .map(|(_, (seq, ms, rs))| format!("{seq}: {:.1}/{:.1}", *ms as f64 / 1024.0, *rs as f64 / 1024.0))
            .collect();
        let _ = writeln!(s, "- RSS after FLUSHALL by sequence (moonshard/redis-server MiB): {}", points.join(", "));
    }
    if !sum.not_declared.is_empty() {
        let _ = writeln!(s, "- Redis commands moonshard does not declare: {}", sum.not_declared.join(", "));
    }
    if !sum.excluded.is_empty() {
        let _ = writeln!(s, "- excluded by --exclude: {}", sum.excluded.join(", "));
    }

    let _ = writeln!(s, "\n### Rules applied\n");
    let _ = writeln!(s, "| rule | kind | count | reason |\n|---|---|---:|---|");
    for r in rules::COMPARE.iter().map(|r| (r.id, r.reason)).collect::<std::collections::BTreeMap<_, _>>() {
        let n = sum.counters.ruled.get(r.0).copied().unwrap_or(0);
        let _ = writeln!(s, "| `{}` | compared by rule | {} | {} |", r.0, n, r.1);
    }
    for r in rules::ACCEPT {
        let n = sum.counters.filtered.get(r.id).copied().unwrap_or(0);
        let _ = writeln!(s, "| `{}` | documented difference | {} | {} |", r.id, n, r.reason);
    }
    for (id, cmds, reason) in &sum.skipped {
        let _ = writeln!(s, "| `{}` | never generated: {} | - | {} |", id, cmds.join(", "), reason);
    }
    let mut seen = std::collections::BTreeSet::new();
    for d in rules::DOMAINS {
        if seen.insert(d.id) {
            let _ = writeln!(s, "| `{}` | generator domain | - | {} |", d.id, d.reason);
        }
    }
    for r in rules::SLOW {
        let _ =
            writeln!(s, "| `{}` | reply deadline {} s: {} | - | {} |", r.id, r.secs, r.commands.join(", "), r.reason);
    }
    if !sum.counters.diverged.is_empty() {
        let d: Vec<String> = sum.counters.diverged.iter().map(|(k, v)| format!("`{k}` {v}")).collect();
        let _ =
            writeln!(s, "\nSequences ended early after a ruled/filtered write (states may differ): {}", d.join(", "));
    }

    let _ = writeln!(s, "\n### Findings\n");
    if sum.findings.is_empty() {
        let _ = writeln!(s, "None.");
    }
    for (i, f) in sum.findings.iter().enumerate() {
        let _ = writeln!(s, "#### {}. {} — {}\n", i + 1, f.kind.name(), f.cause);
        let _ = writeln!(
            s,
            "seen {} time(s), first in sequence {}; {}{} replays",
            f.count,
            f.first_sequence,
            if f.minimized { "minimized with " } else { "not minimized, " },
            f.replays
        );
        if !f.repro.is_empty() {
            let _ = writeln!(s, "\n```\n{}```", repro_script(&f.repro));
            if let Some(note) = batching_note(&f.repro) {
                let _ = writeln!(s, "{note}");
            }
        }
        if !f.command.is_empty() {
            let cmd: Vec<String> = f.command.iter().map(|a| quote(a)).collect();
            let _ = writeln!(s, "\n- command: `{}`", show(cmd.join(" ").as_bytes(), 300));
            let _ = writeln!(s, "- moonshard:    `{}`", show(&f.ours, 400));
            let _ = writeln!(s, "- redis-server: `{}`", show(&f.theirs, 400));
        }
        if !f.note.trim().is_empty() {
            let _ = writeln!(s, "\n```\n{}\n```", f.note.trim());
        }
        s.push('\n');
    }
    s
}
