//! The RESP parser fuzz property (fuzz/harness/resp.rs) on stable: every seed
//! of fuzz/corpus/resp_parser under several parser settings and read sizes,
//! then a bounded, seeded mutation run over the seeds (a CI-sized fuzz).

#[path = "../fuzz/harness/resp.rs"]
mod resp;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/resp_parser");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn every_seed_under_every_setting() {
    let seeds = corpus();
    assert!(seeds.len() >= 40, "the seed corpus is missing");
    for (name, data) in &seeds {
        for cfg in 0u8..=63 {
            let mut input = data.clone();
            if let Some(first) = input.first_mut() {
                *first = cfg;
            }
            if std::panic::catch_unwind(|| resp::check(&input)).is_err() {
                panic!("seed {name} with settings byte {cfg} failed");
            }
        }
    }
}

#[test]
fn seeds_parse_as_intended() {
    let seeds = corpus();
    let get = |prefix: &str| &seeds.iter().find(|(n, _)| n.starts_with(prefix)).unwrap().1[1..];
    let ok = |out: &resp::Outcome| out.iter().filter(|r| r.is_ok()).count();
    let max = 512 * 1024 * 1024;
    assert_eq!(ok(&resp::parse(get("set_get_"), 1, max, true)), 2);
    assert_eq!(ok(&resp::parse(get("pipeline_"), 3, max, true)), 5);
    let giant = resp::parse(get("giant_bulk_"), 1, max, true);
    assert_eq!(giant.last(), Some(&Err("ERR Protocol error: invalid bulk length".to_string())));
    let count = resp::parse(get("count_over_i32_"), 1, max, true);
    assert_eq!(count, vec![Err("ERR Protocol error: invalid multibulk length".to_string())]);
    // Before AUTH only small requests are accepted.
    let unauth = resp::parse(get("unauth_big_count_"), 7, max, false);
    assert_eq!(unauth, vec![Err("ERR Protocol error: unauthenticated multibulk length".to_string())]);
    // A declared 2^31-1 arguments is accepted and then waited for, not allocated.
    assert!(resp::parse(get("giant_count_"), 1, max, true).is_empty());
}

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"*",
    b"$",
    b"*2147483647\r\n",
    b"$999999999999\r\n",
    b"$-1\r\n",
    b"*0\r\n",
    b"*-5\r\n",
    b"$0\r\n\r\n",
    b"\"",
    b"'",
    b"\\x4",
    b"\n",
    b"\r",
    b"*1\r\n$4\r\nPING\r\n",
    b"$536870912\r\n",
    b"*10\r\n",
];

fn mutate(rng: &mut StdRng, seeds: &[(String, Vec<u8>)], data: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..5) {
        let at = if data.is_empty() { 0 } else { rng.gen_range(0..=data.len()) };
        match rng.gen_range(0..6) {
            0 if at < data.len() => data[at] ^= 1 << rng.gen_range(0..8),
            1 => data.insert(at.min(data.len()), rng.gen()),
            2 => {
                let t = TOKENS[rng.gen_range(0..TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            3 => data.truncate(at),
            4 if at < data.len() => {
                let end = rng.gen_range(at..=data.len());
                data.drain(at..end);
            }
            _ => {
                let other = &seeds[rng.gen_range(0..seeds.len())].1;
                let from = rng.gen_range(0..other.len().max(1));
                data.splice(at..at, other.iter().skip(from).take(64).copied());
            }
        }
    }
}

#[test]
fn seeded_mutations() {
    let seeds: Vec<_> = corpus().into_iter().filter(|(_, d)| d.len() < 4096).collect();
    let mut rng = StdRng::seed_from_u64(0x5eed7);
    for i in 0..4000 {
        let mut data = seeds[i % seeds.len()].1.clone();
        mutate(&mut rng, &seeds, &mut data);
        if std::panic::catch_unwind(|| resp::check(&data)).is_err() {
            panic!("mutation {i} failed: {:?}", String::from_utf8_lossy(&data));
        }
    }
}
