//! `client-output-buffer-limit`: its classes' limits as the connections read
//! them, and its value's syntax.

use std::sync::atomic::AtomicU64;

/// One class (normal, pubsub) of `client-output-buffer-limit` in bytes/seconds (0 = none).
#[derive(Default)]
pub struct Limits {
    pub hard: AtomicU64,
    pub soft: AtomicU64,
    pub soft_secs: AtomicU64,
}

/// Parses one class of `client-output-buffer-limit` ("pubsub") out of the
/// full value: (hard, soft, soft seconds).
pub fn output_limits(value: &str, class: &str) -> Option<(u64, u64, u64)> {
    let words: Vec<&str> = value.split_whitespace().collect();
    for w in words.chunks(4) {
        if w.len() == 4 && w[0].eq_ignore_ascii_case(class) {
            let hard = super::parse_memory(w[1])?;
            let soft = super::parse_memory(w[2])?;
            let secs: i64 = w[3].parse().ok()?;
            return Some((hard.max(0) as u64, soft.max(0) as u64, secs.max(0) as u64));
        }
    }
    None
}

/// Validates a `CONFIG SET client-output-buffer-limit` value and merges it
/// into the current one (classes not named keep their limits), as Redis does.
pub fn merge_output_limits(current: &str, new: &str) -> Result<String, String> {
    let words: Vec<&str> = new.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut classes: Vec<(String, [i64; 3])> = Vec::new();
    for w in current.split_whitespace().collect::<Vec<_>>().chunks(4) {
        if w.len() == 4 {
            let n = |s: &str| super::parse_memory(s).unwrap_or(0);
            classes.push((w[0].to_string(), [n(w[1]), n(w[2]), w[3].parse().unwrap_or(0)]));
        }
    }
    for w in words.chunks(4) {
        let class = match w[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string();
        let hard = super::parse_memory(w[1]).filter(|v| *v >= 0).ok_or_else(bad)?;
        let soft = super::parse_memory(w[2]).filter(|v| *v >= 0).ok_or_else(bad)?;
        let secs = crate::util::parse_i64(w[3].as_bytes()).filter(|v| *v >= 0).ok_or_else(bad)?;
        match classes.iter_mut().find(|(c, _)| c == class) {
            Some((_, v)) => *v = [hard, soft, secs],
            None => classes.push((class.to_string(), [hard, soft, secs])),
        }
    }
    Ok(classes.iter().map(|(c, v)| format!("{c} {} {} {}", v[0], v[1], v[2])).collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_limits_merge_like_redis() {
        let def = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
        assert_eq!(
            merge_output_limits(def, "pubsub 1mb 512kb 1").unwrap(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 524288 1"
        );
        assert!(merge_output_limits(def, "pubsub 1mb 512kb").unwrap_err().contains("Wrong number"));
        assert!(merge_output_limits(def, "foo 1 1 1").unwrap_err().contains("Invalid client class"));
        assert!(merge_output_limits(def, "master 1 1 1").unwrap_err().contains("Invalid client class"));
        assert!(merge_output_limits(def, "pubsub x 1 1").unwrap_err().contains("hard, soft"));
        assert!(merge_output_limits(def, "pubsub -1 1 1").unwrap_err().contains("hard, soft"));
        assert_eq!(output_limits(def, "pubsub"), Some((33554432, 8388608, 60)));
    }
}
