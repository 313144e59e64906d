//! What each request says. Commands are encoded once into templates; per
//! request only fixed-width digit fields are overwritten in place (as
//! redis-benchmark does with `__rand_int__`), so generating load costs a copy
//! and a few digit writes, never an allocation or a re-encode.

use crate::resp;
use crate::slot;
use rand::rngs::SmallRng;
use rand::Rng;
use std::sync::Arc;

/// The placeholder a custom command uses for a random key number.
pub const RAND_INT: &str = "__rand_int__";
/// Digits written for `__rand_int__` (the placeholder's own length, so the
/// request has the same size as redis-benchmark's).
pub const RAND_WIDTH: usize = 12;

/// The seed script of measuring.md: pushes every ARGV onto KEYS[1] and adds
/// their sum to the counter KEYS[2], atomically.
pub const SEED_SCRIPT: &str = "-- KEYS[1] a list, KEYS[2] a counter; ARGV integers
local sum = 0
for _, v in ipairs(ARGV) do sum = sum + tonumber(v); redis.call('LPUSH', KEYS[1], v) end
return redis.call('INCRBY', KEYS[2], sum)";

#[derive(Clone, Copy, Debug, PartialEq)]
enum FieldKind {
    /// An independent random key number in the key space.
    Rand,
    /// The request's hash tag number (shared by every Tag field of a request).
    Tag,
    /// A random digit 1..=9 (seed script arguments).
    Digit,
}

#[derive(Clone, Debug)]
struct Field {
    offset: usize,
    width: usize,
    kind: FieldKind,
}

/// One encoded command plus the positions to rewrite per request.
#[derive(Clone, Debug)]
pub struct Template {
    bytes: Vec<u8>,
    fields: Vec<Field>,
}

impl Template {
    /// Encodes `args`; in each argument every `marker` becomes a field of
    /// `width` digits of `kind`.
    fn build(args: &[Vec<u8>], marks: &[(&str, usize, FieldKind)]) -> Template {
        let mut bytes = Vec::new();
        let mut fields = Vec::new();
        bytes.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            let mut arg = Vec::with_capacity(a.len());
            let mut local = Vec::new();
            let mut i = 0;
            'outer: while i < a.len() {
                for &(marker, width, kind) in marks {
                    if a[i..].starts_with(marker.as_bytes()) {
                        local.push(Field { offset: arg.len(), width, kind });
                        arg.extend(std::iter::repeat_n(b'0', width));
                        i += marker.len();
                        continue 'outer;
                    }
                }
                arg.push(a[i]);
                i += 1;
            }
            bytes.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            let base = bytes.len();
            fields.extend(local.into_iter().map(|f| Field { offset: base + f.offset, ..f }));
            bytes.extend_from_slice(&arg);
            bytes.extend_from_slice(b"\r\n");
        }
        Template { bytes, fields }
    }

    pub fn is_constant(&self) -> bool {
        self.fields.is_empty()
    }

    fn append(&self, out: &mut Vec<u8>, rng: &mut SmallRng, keys: &KeyPicker, tag: u64) {
        let base = out.len();
        out.extend_from_slice(&self.bytes);
        for f in &self.fields {
            let n = match f.kind {
                FieldKind::Rand => keys.pick(rng),
                FieldKind::Tag => tag,
                FieldKind::Digit => rng.gen_range(1..=9),
            };
            write_digits(&mut out[base + f.offset..base + f.offset + f.width], n);
        }
    }
}

/// Writes `n` zero-padded into `dst` (keeping the low digits if it is too wide).
fn write_digits(dst: &mut [u8], mut n: u64) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Chooses key numbers in `0..space`, uniformly or zipfian.
#[derive(Clone, Debug)]
pub enum KeyPicker {
    Uniform(u64),
    /// Cumulative probabilities of ranks 0..space (rank 0 hottest).
    Zipf(Arc<Vec<f64>>),
}

impl KeyPicker {
    pub fn new(space: u64, zipf: Option<f64>) -> Result<KeyPicker, String> {
        if space == 0 {
            return Err("key space must be at least 1".into());
        }
        let Some(s) = zipf else {
            return Ok(KeyPicker::Uniform(space));
        };
        if !(s > 0.0 && s.is_finite()) {
            return Err("--zipf exponent must be a positive number".into());
        }
        // A table of the CDF: exact, and a binary search per pick is cheap
        // next to a network round trip. Bounded so the table stays small.
        if space > 10_000_000 {
            return Err("--zipf supports key spaces up to 10,000,000".into());
        }
        let mut cdf = Vec::with_capacity(space as usize);
        let mut total = 0.0;
        for rank in 1..=space {
            total += 1.0 / (rank as f64).powf(s);
            cdf.push(total);
        }
        for c in cdf.iter_mut() {
            *c /= total;
        }
        Ok(KeyPicker::Zipf(Arc::new(cdf)))
    }

    pub fn pick(&self, rng: &mut SmallRng) -> u64 {
        match self {
            KeyPicker::Uniform(n) => rng.gen_range(0..*n),
            KeyPicker::Zipf(cdf) => {
                let u: f64 = rng.gen();
                (cdf.partition_point(|&c| c < u) as u64).min(cdf.len() as u64 - 1)
            }
        }
    }
}

/// A fully prepared workload, cloned into every connection.
#[derive(Clone, Debug)]
pub enum Workload {
    /// GET with probability `get_ratio`, else SET, on `key:<n>`.
    GetSet { get_ratio: f64, get: Template, set: Template, keys: KeyPicker },
    /// EVALSHA of the seed script over `{t<n>}list`/`{t<n>}sum`.
    Seed { tpl: Template, tags: Arc<Vec<u32>> },
    /// A user command; `__rand_int__` fields draw from `keys`.
    Command { tpl: Template, keys: KeyPicker },
}

impl Workload {
    pub fn get_set(get_ratio: f64, value_size: usize, keys: KeyPicker) -> Workload {
        let marks = [(RAND_INT, RAND_WIDTH, FieldKind::Rand)];
        let key = format!("key:{RAND_INT}").into_bytes();
        let get = Template::build(&[b"GET".to_vec(), key.clone()], &marks);
        let set = Template::build(&[b"SET".to_vec(), key, vec![b'x'; value_size]], &marks);
        Workload::GetSet { get_ratio, get, set, keys }
    }

    pub fn seed(sha: &str, args_per_call: usize, tags: Arc<Vec<u32>>) -> Workload {
        let tag = format!("{{t{}}}", "\u{1}".repeat(slot::TAG_WIDTH));
        let mut args = vec![
            b"EVALSHA".to_vec(),
            sha.as_bytes().to_vec(),
            b"2".to_vec(),
            format!("{tag}list").into_bytes(),
            format!("{tag}sum").into_bytes(),
        ];
        args.extend((0..args_per_call).map(|_| b"\x02".to_vec()));
        // Each \x01 byte is one tag digit, each \x02 one argument digit.
        let marks = [("\u{1}", 1, FieldKind::Tag), ("\u{2}", 1, FieldKind::Digit)];
        let mut tpl = Template::build(&args, &marks);
        merge_tag_digits(&mut tpl);
        Workload::Seed { tpl, tags }
    }

    pub fn command(words: &[String], keys: KeyPicker) -> Result<Workload, String> {
        if words.is_empty() {
            return Err("--command needs at least one word".into());
        }
        let args: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        let tpl = Template::build(&args, &[(RAND_INT, RAND_WIDTH, FieldKind::Rand)]);
        Ok(Workload::Command { tpl, keys })
    }

    /// True when every request is identical, so one batch can be reused.
    pub fn is_constant(&self) -> bool {
        matches!(self, Workload::Command { tpl, .. } if tpl.is_constant())
    }

    /// Appends `count` requests to `out`.
    pub fn fill(&self, rng: &mut SmallRng, out: &mut Vec<u8>, count: u64) {
        for _ in 0..count {
            match self {
                Workload::GetSet { get_ratio, get, set, keys } => {
                    let tpl = if rng.gen::<f64>() < *get_ratio { get } else { set };
                    tpl.append(out, rng, keys, 0);
                }
                Workload::Seed { tpl, tags } => {
                    let tag = tags[rng.gen_range(0..tags.len())] as u64;
                    tpl.append(out, rng, &KeyPicker::Uniform(1), tag);
                }
                Workload::Command { tpl, keys } => tpl.append(out, rng, keys, 0),
            }
        }
    }

    /// One example request, for the report.
    pub fn describe(&self) -> String {
        let tpl = match self {
            Workload::GetSet { get_ratio, set, .. } => {
                let size = set.bytes.len();
                return format!("GET/SET mix, {:.0}% GET ({}-byte SET request)", get_ratio * 100.0, size);
            }
            Workload::Seed { tpl, .. } | Workload::Command { tpl, .. } => tpl,
        };
        let mut rng = <SmallRng as rand::SeedableRng>::seed_from_u64(1);
        let mut out = Vec::new();
        tpl.append(&mut out, &mut rng, &KeyPicker::Uniform(1), 0);
        match crate::resp::parse(&out, 0) {
            Ok(Some((crate::resp::Value::Array(words), _))) => {
                words.iter().filter_map(|w| w.as_text()).collect::<Vec<_>>().join(" ")
            }
            _ => String::from_utf8_lossy(&out).into_owned(),
        }
    }
}

/// The tag marker made one single-digit field per digit; fold each run of
/// adjacent Tag digits into one field so the whole tag number is written at once.
fn merge_tag_digits(tpl: &mut Template) {
    let mut merged: Vec<Field> = Vec::new();
    for f in tpl.fields.drain(..) {
        if let Some(last) = merged.last_mut() {
            if last.kind == FieldKind::Tag && f.kind == FieldKind::Tag && last.offset + last.width == f.offset {
                last.width += 1;
                continue;
            }
        }
        merged.push(f);
    }
    tpl.fields = merged;
}

/// Splits a command line into words, honouring double and single quotes.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unbalanced quotes in --command".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Encodes a plain command (for tests and tools).
pub fn encode_words(words: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let mut out = Vec::new();
    resp::encode(&args, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{parse, Value};
    use rand::SeedableRng;

    fn words(buf: &[u8], pos: usize) -> (Vec<String>, usize) {
        match parse(buf, pos).unwrap().unwrap() {
            (Value::Array(v), end) => (v.iter().map(|w| w.as_text().unwrap()).collect(), end),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn command_template_fills_rand_int() {
        let w =
            Workload::command(&split_words("HSET h:__rand_int__ f 'a b'").unwrap(), KeyPicker::Uniform(1000)).unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut out = Vec::new();
        w.fill(&mut rng, &mut out, 2);
        let (first, end) = words(&out, 0);
        assert_eq!(first[0], "HSET");
        assert_eq!(first[1].len(), "h:".len() + RAND_WIDTH);
        assert!(first[1][2..].parse::<u64>().unwrap() < 1000);
        assert_eq!(&first[2..], &["f", "a b"]);
        let (second, end2) = words(&out, end);
        assert_eq!(second[0], "HSET");
        assert_eq!(end2, out.len());
    }

    #[test]
    fn seed_template_shares_the_tag() {
        let tags = Arc::new(vec![1234567, 42]);
        let w = Workload::seed("abc", 3, tags);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut out = Vec::new();
        w.fill(&mut rng, &mut out, 20);
        let mut pos = 0;
        for _ in 0..20 {
            let (req, end) = words(&out, pos);
            pos = end;
            assert_eq!(&req[..3], &["EVALSHA", "abc", "2"]);
            let tag = req[3].strip_suffix("list").unwrap();
            assert!(tag == "{t1234567}" || tag == "{t0000042}", "{tag}");
            assert_eq!(req[4], format!("{tag}sum"));
            assert_eq!(req.len(), 8);
            assert!(req[5..].iter().all(|d| (1..=9).contains(&d.parse::<u32>().unwrap())));
        }
    }

    #[test]
    fn zipf_prefers_low_ranks() {
        let k = KeyPicker::new(1000, Some(1.0)).unwrap();
        let mut rng = SmallRng::seed_from_u64(3);
        let picks: Vec<u64> = (0..10_000).map(|_| k.pick(&mut rng)).collect();
        let hot = picks.iter().filter(|&&p| p < 10).count();
        assert!(hot > 3000, "{hot}");
        assert!(picks.iter().all(|&p| p < 1000));
    }

    #[test]
    fn get_set_mix_encodes_both() {
        let w = Workload::get_set(0.5, 8, KeyPicker::Uniform(10));
        let mut rng = SmallRng::seed_from_u64(9);
        let mut out = Vec::new();
        w.fill(&mut rng, &mut out, 50);
        let mut pos = 0;
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let (req, end) = words(&out, pos);
            pos = end;
            if req[0] == "SET" {
                assert_eq!(req[2], "xxxxxxxx");
            }
            kinds.insert(req[0].clone());
        }
        assert_eq!(kinds.len(), 2);
    }
}
