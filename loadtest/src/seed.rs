//! The seed-script workload's setup and its end-of-run atomicity check.

use crate::client::Client;
use crate::resp::Value;
use crate::slot;
use crate::workload::SEED_SCRIPT;

/// Loads the seed script and returns its SHA1 as the server reports it.
pub fn load_script(client: &mut Client) -> Result<String, String> {
    match client.call_str(&["SCRIPT", "LOAD", SEED_SCRIPT])? {
        Value::Bulk(sha) => Ok(String::from_utf8_lossy(&sha).into_owned()),
        Value::Error(e) => Err(format!("SCRIPT LOAD failed: {e}")),
        other => Err(format!("SCRIPT LOAD replied {other:?}")),
    }
}

#[derive(Debug, Default, Clone)]
pub struct Verification {
    pub lists_checked: usize,
    /// Pairs whose list does not match its counter.
    pub mismatches: usize,
    /// Total elements over all lists (how much the run really wrote).
    pub elements: u64,
    /// A few mismatches, described, for the report.
    pub examples: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.mismatches == 0
    }
}

/// Checks every `{t<n>}list`/`{t<n>}sum` pair: the list's elements must sum to
/// the counter, and its length must be a whole number of script calls
/// (`args_per_call` elements each). A torn script shows up as either.
pub fn verify(client: &mut Client, tags: &[u32], args_per_call: usize) -> Result<Verification, String> {
    let mut v = Verification::default();
    for chunk in tags.chunks(256) {
        let names: Vec<(String, String)> = chunk
            .iter()
            .map(|&n| {
                let tag = slot::tag_text(n);
                (format!("{{{tag}}}list"), format!("{{{tag}}}sum"))
            })
            .collect();
        let cmds: Vec<Vec<&[u8]>> = names
            .iter()
            .flat_map(|(l, s)| [vec![&b"LRANGE"[..], l.as_bytes(), b"0", b"-1"], vec![&b"GET"[..], s.as_bytes()]])
            .collect();
        let replies = client.pipeline(&cmds)?;
        for (i, pair) in replies.chunks(2).enumerate() {
            let (list, counter) = (&pair[0], &pair[1]);
            v.lists_checked += 1;
            if let Some(problem) = check_pair(list, counter, args_per_call, &mut v.elements) {
                v.mismatches += 1;
                if v.examples.len() < 5 {
                    v.examples.push(format!("{}: {problem}", names[i].0));
                }
            }
        }
    }
    Ok(v)
}

fn check_pair(list: &Value, counter: &Value, args_per_call: usize, elements: &mut u64) -> Option<String> {
    let items = match list {
        Value::Array(items) => items,
        other => return Some(format!("LRANGE replied {other:?}")),
    };
    let mut sum: i64 = 0;
    for it in items {
        let Some(n) = it.as_text().and_then(|t| t.parse::<i64>().ok()) else {
            return Some(format!("non-integer element {it:?}"));
        };
        sum = sum.saturating_add(n);
    }
    *elements += items.len() as u64;
    let count = match counter {
        Value::Nil => 0,
        c => match c.as_text().and_then(|t| t.parse::<i64>().ok()) {
            Some(n) => n,
            None => return Some(format!("counter is {c:?}")),
        },
    };
    if sum != count {
        return Some(format!("list sums to {sum}, counter says {count}"));
    }
    if args_per_call > 0 && items.len() % args_per_call != 0 {
        return Some(format!("list has {} elements, not a multiple of {args_per_call}", items.len()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_checks() {
        let list = |xs: &[&str]| Value::Array(xs.iter().map(|x| Value::Bulk(x.as_bytes().to_vec())).collect());
        let mut n = 0;
        assert_eq!(check_pair(&list(&[]), &Value::Nil, 3, &mut n), None);
        assert_eq!(check_pair(&list(&["1", "2", "3"]), &Value::Bulk(b"6".to_vec()), 3, &mut n), None);
        assert!(check_pair(&list(&["1", "2", "3"]), &Value::Bulk(b"7".to_vec()), 3, &mut n).is_some());
        assert!(check_pair(&list(&["1", "2"]), &Value::Bulk(b"3".to_vec()), 3, &mut n).is_some());
        assert_eq!(n, 8);
    }
}
