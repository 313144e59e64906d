//! LATENCY LATEST | HISTORY | RESET | GRAPH | DOCTOR | HISTOGRAM | HELP, over
//! `stats::latency_monitor` (events past `latency-monitor-threshold`) and
//! `stats::latency` (per-command latency histograms).

use crate::commands::registry;
use crate::commands::spec::prelude::*;
use crate::commands::ConnCtx;
use crate::protocol::Reply;
use crate::stats::latency_monitor::Sample;
use bytes::Bytes;
use std::fmt::Write;

// ------------------------------------------------------------ declarations

pub static LATENCY_SUBS: &[CommandSpec] = &[
    cmd("latency|latest", 2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(latency_latest))
        .doc("2.8.13", "Returns the latest latency sample of every event.")
        .tips(&["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"]),
    cmd("latency|history", 3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(latency_history))
        .syntax("event")
        .doc("2.8.13", "Returns the latency samples kept for an event.")
        .tips(&["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"]),
    cmd("latency|reset", -2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(latency_reset))
        .syntax("[event [event ...]]")
        .doc("2.8.13", "Forgets the latency samples of some or all events.")
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd("latency|graph", 3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(latency_graph))
        .syntax("event")
        .doc("2.8.13", "Draws an event's latency samples as an ASCII graph.")
        .tips(&["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"]),
    cmd("latency|doctor", 2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(latency_doctor))
        .doc("2.8.13", "Explains the latency events observed, in words.")
        .tips(&["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"]),
    cmd("latency|histogram", -2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G::Server, C(latency_histogram))
        .syntax("[command [command ...]]")
        .doc("7.0.0", "Returns the latency distribution of commands.")
        .tips(&["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"]),
    cmd("latency|help", 2, LOADING | STALE, NOKEYS, G::Server, C(latency_help))
        .doc("2.8.13", "Lists the LATENCY subcommands."),
];

// ---------------------------------------------------------------- handlers

fn latency_latest(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    ctx.server.observers.latency_monitor.with_events(|events| {
        Reply::Array(
            events
                .iter()
                .filter_map(|(name, e)| {
                    let last = e.samples.back()?;
                    Some(Reply::Array(vec![
                        Reply::bulk_str(name),
                        Reply::Int(last.time as i64),
                        Reply::Int(last.latency as i64),
                        Reply::Int(e.max as i64),
                    ]))
                })
                .collect(),
        )
    })
}

fn samples_of(ctx: &ConnCtx, event: &[u8]) -> Option<(Vec<Sample>, u64)> {
    let name = String::from_utf8_lossy(event);
    ctx.server
        .observers
        .latency_monitor
        .with_events(|events| events.get(name.as_ref()).map(|e| (e.samples.iter().copied().collect(), e.max)))
}

fn latency_history(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let samples = samples_of(ctx, &args[2]).map(|(s, _)| s).unwrap_or_default();
    Reply::Array(
        samples.iter().map(|s| Reply::Array(vec![Reply::Int(s.time as i64), Reply::Int(s.latency as i64)])).collect(),
    )
}

fn latency_reset(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let names: Vec<String> = args[2..].iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    Reply::Int(ctx.server.observers.latency_monitor.reset(&names) as i64)
}

/// An ASCII chart of the samples: one column per sample, oldest on the
/// left, bar height proportional to the latency, with each sample's age.
fn latency_graph(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let Some((samples, all_time_max)) = samples_of(ctx, &args[2]).filter(|(s, _)| !s.is_empty()) else {
        let name = crate::protocol::c_str(&args[2]);
        return Reply::error_concat(&[b"ERR No samples available for event '", name, b"'"]);
    };
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    let high = samples.iter().map(|s| s.latency).max().unwrap_or(0);
    let low = samples.iter().map(|s| s.latency).min().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "{name} - high {high} ms, low {low} ms (all time high {all_time_max} ms)");
    out.push_str(&"-".repeat(80));
    out.push('\n');
    const ROWS: u64 = 4;
    for row in (1..=ROWS).rev() {
        for s in &samples {
            let height = if high == 0 { 0 } else { (s.latency * ROWS).div_ceil(high) };
            out.push(if height >= row { '#' } else { ' ' });
        }
        out.push('\n');
    }
    // Ages, one character column per sample: seconds (s), minutes (m) or hours (h) ago.
    let now = crate::storage::now_ms() / 1000;
    for s in &samples {
        let age = now.saturating_sub(s.time);
        out.push(match age {
            0..=59 => 's',
            60..=3599 => 'm',
            _ => 'h',
        });
    }
    out.push('\n');
    Reply::Verbatim("txt", Bytes::from(out))
}

/// A plain-words report on the recorded events.
fn latency_doctor(ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    let threshold = ctx.server.observers.latency_monitor.threshold.load(std::sync::atomic::Ordering::Relaxed);
    let mut out = String::new();
    if threshold == 0 {
        out.push_str(
            "The latency monitor is off, so there is nothing to report. Turn it on with \
             CONFIG SET latency-monitor-threshold <milliseconds>: events that take at least that long are then \
             recorded and explained here.\n",
        );
        return Reply::Verbatim("txt", Bytes::from(out));
    }
    ctx.server.observers.latency_monitor.with_events(|events| {
        if events.is_empty() {
            let _ = writeln!(out, "No event has reached the threshold of {threshold} ms since the monitor started.");
            return;
        }
        let _ = writeln!(out, "Latency events of at least {threshold} ms, by class:\n");
        for (i, (name, e)) in events.iter().enumerate() {
            let n = e.samples.len() as u64;
            let avg = e.samples.iter().map(|s| s.latency).sum::<u64>() / n.max(1);
            let _ =
                writeln!(out, "{}. {name}: {n} latency spikes recorded (average {avg} ms, worst {} ms).", i + 1, e.max);
            let advice = match *name {
                "command" => {
                    "Slow commands ran: see SLOWLOG GET for which ones, and avoid O(N) commands on big values."
                }
                "fast-command" => {
                    "Commands of constant or logarithmic cost were slow: the machine may be overloaded or swapping."
                }
                "expire-cycle" => "Many keys expired at once: spread the expiry times of keys set together.",
                "eviction-cycle" => "Eviction had much to remove: raise maxmemory or lower the write rate.",
                _ => "See LATENCY HISTORY for when they happened.",
            };
            let _ = writeln!(out, "   {advice}");
        }
    });
    Reply::Verbatim("txt", Bytes::from(out))
}

fn latency_histogram(ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let tracker = &ctx.server.observers.latency;
    let specs: Vec<registry::Command> = if args.len() == 2 {
        registry::all().iter().enumerate().map(|(id, &spec)| registry::Command { id, spec }).collect()
    } else {
        // A container named brings its subcommands along, as in Redis
        // (`LATENCY HISTOGRAM client` gives client|id, client|list, ...).
        let mut named = Vec::new();
        for cmd in args[2..].iter().filter_map(|n| resolve_name(n)) {
            named.push(cmd);
            if !cmd.spec.subcommands.is_empty() {
                let prefix = format!("{}|", cmd.spec.name);
                named.extend(
                    registry::all()
                        .iter()
                        .enumerate()
                        .filter(|(_, spec)| spec.name.starts_with(&prefix))
                        .map(|(id, &spec)| registry::Command { id, spec }),
                );
            }
        }
        named
    };
    let s = |t: &str| Reply::bulk_str(t);
    let mut out = Vec::new();
    for cmd in specs {
        let Some((calls, buckets)) = tracker.power_buckets(cmd.id) else {
            continue;
        };
        let hist = buckets.into_iter().map(|(b, c)| (Reply::Int(b as i64), Reply::Int(c as i64))).collect();
        out.push((
            s(cmd.spec.name),
            Reply::Map(vec![(s("calls"), Reply::Int(calls as i64)), (s("histogram_usec"), Reply::Map(hist))]),
        ));
    }
    Reply::Map(out)
}

/// A command or `container|sub` name as LATENCY HISTOGRAM takes it.
fn resolve_name(name: &[u8]) -> Option<registry::Command> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    registry::all()
        .iter()
        .enumerate()
        .find(|(_, spec)| spec.name == lower)
        .map(|(id, &spec)| registry::Command { id, spec })
}

fn latency_help(_ctx: &mut ConnCtx, _args: &[Bytes]) -> Reply {
    crate::commands::help::reply("LATENCY", crate::commands::help::LATENCY)
}
