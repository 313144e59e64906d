//! Differential test of the geo commands against a real redis-server 7.0:
//! random points all over the globe (the latitude limits, the
//! antimeridian, clusters of near-identical and identical points), every
//! query form with random centres, radii from 0.1 m to 5000 km and boxes,
//! in every unit and option combination, the STORE forms, zsets written
//! with ZADD read as geo sets, and the error texts. Replies are compared
//! exactly, order included: moonshard scans and sorts as Redis does, ties
//! and unsorted results included.

mod common;

use common::{read_quiet, run_str, Diff};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use redis::Value;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const LAT_LIMIT: f64 = 85.05112878;
const BIG: &str = "{g}big";
const SMALL: &str = "{g}small";
const ODD: &str = "{g}odd";
const DST: &str = "{g}dst";
const UNITS: [(&str, f64); 4] = [("m", 1.0), ("km", 1000.0), ("mi", 1609.34), ("ft", 0.3048)];

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Number text in one of several styles (both servers parse the same text).
fn num(rng: &mut StdRng, x: f64) -> String {
    match rng.gen_range(0..4) {
        0 => format!("{x:.6}"),
        1 => format!("{x:.2}"),
        _ => format!("{x}"),
    }
}

/// Cluster centres: ordinary places, the latitude limits, the antimeridian.
fn hotspots(rng: &mut StdRng) -> Vec<(f64, f64)> {
    let mut h = vec![
        (13.361389, 38.115556),
        (-179.9999, 10.0),
        (179.9999, -10.0),
        (180.0, 0.0),
        (-180.0, 45.0),
        (0.0, LAT_LIMIT),
        (45.0, -LAT_LIMIT),
        (-120.0, 84.9),
        (0.0, 0.0),
        (2.35, 48.85),
    ];
    for _ in 0..6 {
        h.push((rng.gen_range(-180.0..=180.0), rng.gen_range(-LAT_LIMIT..=LAT_LIMIT)));
    }
    h
}

fn clamp_point(lon: f64, lat: f64) -> (f64, f64) {
    (lon.clamp(-180.0, 180.0), lat.clamp(-LAT_LIMIT, LAT_LIMIT))
}

/// A point: uniform over the globe, near a hotspot at some scale, or
/// exactly on one.
fn point(rng: &mut StdRng, hot: &[(f64, f64)]) -> (f64, f64) {
    let &(hl, ha) = hot.choose(rng).unwrap();
    match rng.gen_range(0..10) {
        0..=2 => (rng.gen_range(-180.0..=180.0), rng.gen_range(-LAT_LIMIT..=LAT_LIMIT)),
        3 => (hl, ha),
        4 => clamp_point(hl + rng.gen_range(-1e-7..1e-7), ha + rng.gen_range(-1e-7..1e-7)),
        _ => {
            let scale = 10f64.powf(rng.gen_range(-6.0..1.5));
            clamp_point(hl + rng.gen_range(-scale..scale), ha + rng.gen_range(-scale..scale))
        }
    }
}

/// Member names: `m0`..`m<space>`, some integers, some long names.
fn member(rng: &mut StdRng, space: usize) -> String {
    match rng.gen_range(0..20) {
        0 => rng.gen_range(0..space / 10 + 1).to_string(),
        1 => format!("long-{}-{}", rng.gen_range(0..space / 30 + 1), "x".repeat(70)),
        _ => format!("m{}", rng.gen_range(0..space)),
    }
}

/// The name space of a key's members (a small key stays a listpack).
fn space(key: &str) -> usize {
    if key.contains("small") {
        100
    } else if key.contains("odd") {
        60
    } else {
        1000
    }
}

/// GEOADDs in random batches (with NX/XX/CH now and then) until `key`
/// holds about `n` members.
fn fill(d: &mut Diff, rng: &mut StdRng, key: &str, n: usize, hot: &[(f64, f64)], long_members: bool) {
    for _ in 0..n / 10 {
        let opts = ["", "", "", "CH", "NX", "XX", "XX CH", "NX CH", "CH NX"][rng.gen_range(0..9)];
        let mut line = format!("GEOADD {key} {opts}");
        for _ in 0..rng.gen_range(1..20) {
            let (lon, lat) = point(rng, hot);
            let mut m = member(rng, space(key));
            if !long_members && m.starts_with("long") {
                m = "short".into();
            }
            line += &format!(" {} {} {m}", num(rng, lon), num(rng, lat));
        }
        d.check(&words(&line)).ok();
    }
    d.check(&["ZRANGE", key, "0", "-1", "WITHSCORES"]).ok();
    d.check(&["OBJECT", "ENCODING", key]).ok();
}

/// A search centre: near the data, anywhere, or at the limits.
fn centre(rng: &mut StdRng, hot: &[(f64, f64)]) -> (f64, f64) {
    match rng.gen_range(0..6) {
        0 => (rng.gen_range(-180.0..=180.0), rng.gen_range(-LAT_LIMIT..=LAT_LIMIT)),
        1 => {
            let lon = [-180.0, 180.0, 179.99999, -179.99999, 0.0][rng.gen_range(0..5)];
            let lat = [LAT_LIMIT, -LAT_LIMIT, 85.0, -84.99, 0.0, 66.5][rng.gen_range(0..6)];
            (lon, lat)
        }
        _ => point(rng, hot),
    }
}

/// A distance in meters, log-uniform from 0.1 m to 5000 km (sometimes 0).
fn meters(rng: &mut StdRng) -> f64 {
    if rng.gen_range(0..40) == 0 {
        return 0.0;
    }
    10f64.powf(rng.gen_range(-1.0..6.7))
}

/// `factor` times a random distance, in a unit of `f` meters, as text.
fn dist_text(rng: &mut StdRng, factor: f64, f: f64) -> String {
    let m = meters(rng);
    num(rng, factor * m / f)
}

fn unit(rng: &mut StdRng) -> (&'static str, f64) {
    let (u, f) = UNITS[rng.gen_range(0..4)];
    if rng.gen_bool(0.2) {
        (["M", "KM", "Mi", "FT"][rng.gen_range(0..4)], f)
    } else {
        (u, f)
    }
}

/// Random reply options, shuffled.
fn options(rng: &mut StdRng, store: bool) -> String {
    let mut o: Vec<String> = Vec::new();
    if !store {
        for w in ["WITHDIST", "WITHHASH", "WITHCOORD"] {
            if rng.gen_bool(0.4) {
                o.push(w.into());
            }
        }
    }
    match rng.gen_range(0..3) {
        0 => o.push("ASC".into()),
        1 => o.push("DESC".into()),
        _ => {}
    }
    if rng.gen_bool(0.4) {
        let n = [1, 2, 3, 5, 10, 50][rng.gen_range(0..6)];
        if rng.gen_bool(0.3) {
            o.push(format!("COUNT {n} ANY"));
        } else {
            o.push(format!("COUNT {n}"));
        }
    }
    o.shuffle(rng);
    o.join(" ")
}

/// The search part of a GEOSEARCH: FROM... and BY..., either order.
fn search_spec(rng: &mut StdRng, key: &str, hot: &[(f64, f64)]) -> String {
    let from = if rng.gen_bool(0.3) {
        format!("FROMMEMBER {}", member(rng, space(key)))
    } else {
        let (lon, lat) = centre(rng, hot);
        format!("FROMLONLAT {} {}", num(rng, lon), num(rng, lat))
    };
    let (u, f) = unit(rng);
    let by = if rng.gen_bool(0.5) {
        format!("BYRADIUS {} {u}", dist_text(rng, 1.0, f))
    } else {
        format!("BYBOX {} {} {u}", dist_text(rng, 2.0, f), dist_text(rng, 2.0, f))
    };
    if rng.gen_bool(0.5) {
        format!("{from} {by}")
    } else {
        format!("{by} {from}")
    }
}

fn random_query(rng: &mut StdRng, key: &str, hot: &[(f64, f64)]) -> String {
    let (lon, lat) = centre(rng, hot);
    let (u, f) = unit(rng);
    let r = dist_text(rng, 1.0, f);
    let (lon, lat) = (num(rng, lon), num(rng, lat));
    match rng.gen_range(0..12) {
        0..=4 => format!("GEOSEARCH {key} {} {}", search_spec(rng, key, hot), options(rng, false)),
        5 | 6 => format!("GEORADIUS {key} {lon} {lat} {r} {u} {}", options(rng, false)),
        7 => format!("GEORADIUS_RO {key} {lon} {lat} {r} {u} {}", options(rng, false)),
        8 | 9 => format!("GEORADIUSBYMEMBER {key} {} {r} {u} {}", member(rng, space(key)), options(rng, false)),
        10 => format!("GEORADIUSBYMEMBER_RO {key} {} {r} {u} {}", member(rng, space(key)), options(rng, false)),
        _ => {
            let ms: Vec<String> = (0..rng.gen_range(1..5)).map(|_| member(rng, space(key))).collect();
            let ms = ms.join(" ");
            match rng.gen_range(0..3) {
                0 => format!("GEOPOS {key} {ms}"),
                1 => format!("GEOHASH {key} {ms}"),
                _ => {
                    let unit = if rng.gen_bool(0.7) { u } else { "" };
                    format!("GEODIST {key} {} {} {unit}", member(rng, space(key)), member(rng, space(key)))
                }
            }
        }
    }
}

fn random_store(rng: &mut StdRng, key: &str, hot: &[(f64, f64)]) -> String {
    let (lon, lat) = centre(rng, hot);
    let (u, f) = unit(rng);
    let r = dist_text(rng, 1.0, f);
    let (lon, lat) = (num(rng, lon), num(rng, lat));
    let store = if rng.gen_bool(0.5) { "STORE" } else { "STOREDIST" };
    match rng.gen_range(0..3) {
        0 => {
            let dist = if rng.gen_bool(0.5) { "STOREDIST" } else { "" };
            format!("GEOSEARCHSTORE {DST} {key} {} {} {dist}", search_spec(rng, key, hot), options(rng, true))
        }
        1 => format!("GEORADIUS {key} {lon} {lat} {r} {u} {} {store} {DST}", options(rng, true)),
        _ => {
            format!("GEORADIUSBYMEMBER {key} {} {r} {u} {store} {DST} {}", member(rng, space(key)), options(rng, true))
        }
    }
}

#[test]
fn random_geo_sets_and_queries_match_redis() {
    let Some(mut d) = Diff::start(&["--shards", "2"]) else { return };
    let mut rng = StdRng::seed_from_u64(0x9e0);
    let hot = hotspots(&mut rng);
    fill(&mut d, &mut rng, BIG, 1800, &hot, true);
    fill(&mut d, &mut rng, SMALL, 120, &hot, false);
    // A zset written with ZADD: stored positions plus arbitrary scores.
    let mut line = format!("ZADD {ODD}");
    let odd =
        ["-1", "1.5", "1e30", "-1e30", "inf", "-inf", "9007199254740993", "4503599627370496", "0", "-0.5", "123.75"];
    for (i, s) in odd.iter().enumerate() {
        line += &format!(" {s} m{i}");
    }
    for i in odd.len()..60 {
        line += &format!(" {} m{i}", rng.gen_range(0u64..(1 << 52)));
    }
    d.check(&words(&line)).unwrap();
    // Replies: empty arrays, non-empty arrays, their elements, anything else.
    let mut stats = [0usize; 4];
    for step in 0..2500 {
        let key = [BIG, BIG, BIG, SMALL, SMALL, ODD, "{g}missing"][rng.gen_range(0..7)];
        if step % 10 == 9 {
            let q = random_store(&mut rng, key, &hot);
            d.check(&words(&q)).ok();
            d.check(&["ZRANGE", DST, "0", "-1", "WITHSCORES"]).ok();
            if step % 30 == 29 {
                d.check(&["OBJECT", "ENCODING", DST]).ok();
            }
        } else {
            let q = random_query(&mut rng, key, &hot);
            match d.check(&words(&q)) {
                Ok(Value::Array(v)) if v.is_empty() => stats[0] += 1,
                Ok(Value::Array(v)) => {
                    stats[1] += 1;
                    stats[2] += v.len();
                }
                _ => stats[3] += 1,
            }
        }
        if step % 500 == 499 {
            // More points, so later queries see edits too.
            fill(&mut d, &mut rng, SMALL, 30, &hot, false);
        }
    }
    // The queries must mostly find something, or they test little.
    let [empty, found, items, other] = stats;
    assert!(found > 600 && items > 5000 && empty > 300 && other > 200, "{stats:?}");
}

/// Queries that tie: many identical points (equal distances), cut by COUNT
/// (Redis's partial quicksort) or sorted whole (a stable sort).
#[test]
fn ties_sort_as_redis_does() {
    let Some(mut d) = Diff::start(&["--shards", "1"]) else { return };
    let mut rng = StdRng::seed_from_u64(5);
    for key in ["{t}small", "{t}big"] {
        let n = if key == "{t}small" { 100 } else { 900 };
        let mut line = format!("GEOADD {key}");
        for i in 0..n {
            let (lon, lat) = match rng.gen_range(0..4) {
                0 => (10.0, 10.0),
                1 => (10.001, 10.0),
                2 => (9.999, 10.0),
                _ => (10.0 + rng.gen_range(-0.01..0.01), 10.0 + rng.gen_range(-0.01..0.01)),
            };
            line += &format!(" {lon} {lat} p{i}");
        }
        d.check(&words(&line)).unwrap();
        for count in [1, 2, 3, 6, 7, 8, 40, 41, 100, 300, 899, 900, 2000] {
            for order in ["ASC", "DESC", ""] {
                for any in ["", "ANY"] {
                    let q =
                        format!("GEOSEARCH {key} FROMLONLAT 10 10 BYRADIUS 5 km {order} COUNT {count} {any} WITHDIST");
                    d.check(&words(&q)).ok();
                }
            }
            let q = format!("GEORADIUS {key} 10 10 5 km COUNT {count} STOREDIST {{t}}dst");
            d.check(&words(&q)).ok();
            d.check(&["ZRANGE", "{t}dst", "0", "-1", "WITHSCORES"]).ok();
        }
        d.check(&words(&format!("GEOSEARCH {key} FROMLONLAT 10 10 BYBOX 3 3 km"))).ok();
        d.check(&words(&format!("GEOSEARCH {key} FROMMEMBER p0 BYBOX 3 3 km DESC"))).ok();
    }
}

#[test]
fn geoadd_and_errors_match_redis() {
    let Some(mut d) = Diff::start(&["--shards", "2"]) else { return };
    let k = "{e}geo";
    let setup = [
        "GEOADD {e}geo 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
        "SET {e}str x",
        "GEOADD {e}geo NX 1 1 Palermo 2 2 new",
        "GEOADD {e}geo XX CH 1 1 Palermo 3 3 other",
        "GEOADD {e}geo CH XX 1 1 Palermo",
        "GEOADD {e}geo xx 13.361389 38.115556 Palermo",
        "GEOADD {e}geo ch nx 13.361389 38.115556 Palermo 4 4 four",
        "GEOADD {e}none XX 1 1 a",
        "EXISTS {e}none",
        "GEOADD {e}geo 180 85.05112878 corner -180 -85.05112878 corner2 0 0 zero",
        "ZRANGE {e}geo 0 -1 WITHSCORES",
    ];
    for line in setup {
        d.check(&words(line)).ok();
    }
    let errors = [
        "GEOADD {e}geo 181 0 a",
        "GEOADD {e}geo 0 85.06 a",
        "GEOADD {e}geo 0 -85.05112879 a",
        "GEOADD {e}geo inf 0 a",
        "GEOADD {e}geo 0 -1e300 a",
        "GEOADD {e}geo 180.0078125 0 a",
        "GEOADD {e}geo abc 0 a",
        "GEOADD {e}geo 0 nan a",
        "GEOADD {e}geo 1 2",
        "GEOADD {e}geo 1 2 a 3",
        "GEOADD {e}geo NX XX 1 2 a",
        "GEOADD {e}geo GT 1 2 a",
        "GEOADD {e}geo ch ch ch",
        "GEOADD {e}geo nx ch xx",
        "GEOADD {e}str 1 2 a",
        "GEOADD {e}str 1 200 a",
        "GEOADD {e}geo",
        "GEOPOS {e}str a",
        "GEOHASH {e}str a",
        "GEODIST {e}str a b",
        "GEODIST {e}str a b furlong",
        "GEODIST {e}geo Palermo Catania furlong",
        "GEODIST {e}geo Palermo Catania km extra",
        "GEODIST {e}missing a b",
        "GEODIST {e}geo Palermo nosuch",
        "GEODIST {e}geo Palermo Palermo",
        "GEODIST {e}geo Palermo Catania MI",
        "GEODIST {e}geo corner corner2 ft",
        "GEOPOS {e}missing a b",
        "GEOHASH {e}missing a b",
        "GEOPOS {e}geo",
        "GEOHASH {e}geo",
        "GEORADIUS {e}str 0 0 1 km",
        "GEORADIUS {e}str bad bad 1 km",
        "GEORADIUS {e}geo 200 0 1 km",
        "GEORADIUS {e}geo x 0 1 km",
        "GEORADIUS {e}geo 0 0 x km",
        "GEORADIUS {e}geo 0 0 -1 km",
        "GEORADIUS {e}geo 0 0 1 parsec",
        "GEORADIUS {e}geo 0 0 1 km COUNT",
        "GEORADIUS {e}geo 0 0 1 km COUNT 0",
        "GEORADIUS {e}geo 0 0 1 km COUNT -1",
        "GEORADIUS {e}geo 0 0 1 km COUNT 1.5",
        "GEORADIUS {e}geo 0 0 1 km ANY",
        "GEORADIUS {e}geo 0 0 1 km ANY COUNT 0",
        "GEORADIUS {e}geo 0 0 1 km BADOPT",
        "GEORADIUS {e}geo 0 0 1 km STORE",
        "GEORADIUS {e}geo 0 0 1 km STORE {e}d WITHDIST",
        "GEORADIUS {e}geo 0 0 1 km WITHHASH STOREDIST {e}d",
        "GEORADIUS {e}geo 0 0 1 km FROMMEMBER Palermo",
        "GEORADIUS {e}geo 0 0 1 km BYRADIUS 1 km",
        "GEORADIUS_RO {e}geo 0 0 1 km STORE {e}d",
        "GEORADIUS_RO {e}geo 0 0 1 km STOREDIST {e}d",
        "GEORADIUSBYMEMBER {e}geo nosuch 1 km",
        "GEORADIUSBYMEMBER {e}geo Palermo x km",
        "GEORADIUSBYMEMBER {e}geo Palermo 1 xx",
        "GEORADIUSBYMEMBER {e}missing nosuch x xx",
        "GEORADIUSBYMEMBER {e}missing nosuch 1 km BADOPT",
        "GEORADIUSBYMEMBER {e}missing nosuch 1 km WITHDIST",
        "GEORADIUSBYMEMBER {e}missing nosuch 1 km ANY",
        "GEORADIUSBYMEMBER_RO {e}geo Palermo 1 km STORE {e}d",
        "GEOSEARCH {e}str FROMLONLAT 0 0 BYRADIUS 1 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0",
        "GEOSEARCH {e}geo BYRADIUS 1 km ASC",
        "geosearch {e}geo BYBOX 1 1 km WITHDIST",
        "GeoSearch {e}geo FROMLONLAT 0 0 WITHDIST",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 FROMMEMBER Palermo BYRADIUS 1 km",
        "GEOSEARCH {e}geo FROMMEMBER Palermo FROMLONLAT 0 0 BYRADIUS 1 km",
        "GEOSEARCH {e}geo FROMMEMBER Palermo FROMMEMBER Catania BYRADIUS 200 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 FROMLONLAT 15 37 BYRADIUS 200 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYRADIUS 1 km BYBOX 1 1 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYBOX 1 1 km BYRADIUS 1 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYRADIUS 1 km BYRADIUS 400 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYBOX 1 1",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYBOX -1 1 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYBOX 1 -1 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYBOX x 1 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYBOX 1 x km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYBOX 1 1 yd",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYRADIUS 1 yd",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYRADIUS -0 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 95 BYRADIUS 1 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 BYRADIUS 1 km",
        "GEOSEARCH {e}geo FROMMEMBER nosuch BYRADIUS 1 km",
        "GEOSEARCH {e}geo FROMMEMBER Palermo BYRADIUS 1 km STORE {e}d",
        "GEOSEARCH {e}geo FROMMEMBER Palermo BYRADIUS 1 km STOREDIST",
        "GEOSEARCH {e}geo FROMMEMBER Palermo BYRADIUS 1 km COUNT 2 ANY ANY",
        "GEOSEARCH {e}geo FROMMEMBER Palermo BYRADIUS 1 km ANY",
        "GEOSEARCH {e}missing FROMMEMBER nosuch BYRADIUS 1 km",
        "GEOSEARCH {e}missing FROMMEMBER nosuch BYRADIUS x km",
        "GEOSEARCH {e}missing FROMLONLAT 0 0 BYRADIUS 1 km",
        "GEOSEARCHSTORE {e}d {e}geo FROMLONLAT 15 37 BYRADIUS 200 km WITHCOORD",
        "GEOSEARCHSTORE {e}d {e}geo FROMLONLAT 15 37 BYRADIUS 200 km STORE {e}x",
        "GEOSEARCHSTORE {e}d {e}geo FROMLONLAT 15 37",
        "GEOSEARCHSTORE {e}d {e}str FROMLONLAT 15 37 BYRADIUS 200 km",
        "GEOSEARCHSTORE {e}d {e}geo FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST STOREDIST",
        "ZRANGE {e}d 0 -1 WITHSCORES",
        "GEOSEARCHSTORE {e}d {e}missing FROMLONLAT 15 37 BYRADIUS 200 km",
        "EXISTS {e}d",
        "GEORADIUS {e}geo 15 37 200 km STORE {e}d",
        "GEORADIUS {e}geo 15 37 200 km STORE {e}d STOREDIST {e}d2",
        "EXISTS {e}d {e}d2",
        "ZRANGE {e}d2 0 -1 WITHSCORES",
        "GEORADIUS {e}geo 0 0 1 m STORE {e}d2",
        "EXISTS {e}d2",
        "GEORADIUS {e}missing 0 0 1 m STORE {e}d",
        "EXISTS {e}d",
        "GEORADIUS {e}geo 15 37 200 km",
        "GEORADIUS {e}geo 15 37 200 KM ANY COUNT 1",
        "GEORADIUS {e}geo 15 37 200 Km WITHDIST WITHHASH WITHCOORD COUNT 1 DESC",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYBOX 40000 40000 km",
        "GEOSEARCH {e}geo FROMLONLAT 0 0 BYRADIUS 40000 km WITHDIST",
        "GEOSEARCH {e}geo FROMLONLAT 180 85.05112878 BYRADIUS 10 m WITHCOORD WITHHASH",
        "EVAL \"return redis.call('geopos', KEYS[1], 'Palermo')\" 1 {e}geo",
        "EVAL \"return redis.call('geosearch', KEYS[1], 'FROMLONLAT', 15, 37, 'BYRADIUS', 200, 'km', 'WITHCOORD')\" 1 {e}geo",
        "EVAL \"return redis.pcall('geoadd', KEYS[1], 500, 0, 'x')\" 1 {e}geo",
        "EVAL \"redis.setresp(3); return redis.call('geopos', KEYS[1], 'Palermo', 'x')\" 1 {e}geo",
        "EVAL \"redis.setresp(3); return tostring(redis.call('geopos', KEYS[1], 'Palermo')[1][2]['double'])\" 1 {e}geo",
    ];
    for line in errors {
        let args: Vec<String> = shell_words(line);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        d.check(&args).ok();
    }
    d.check(&["ZRANGE", k, "0", "-1", "WITHSCORES"]).ok();
}

/// Splits a line on spaces, keeping "double quoted" parts whole.
fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Sends RESP3 commands on one connection and returns the raw replies
/// (after HELLO's, which differs between the servers).
fn resp3_raw(port: u16, cmds: &[&str]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n").unwrap();
    read_quiet(&mut s, Duration::from_millis(150));
    let mut out = Vec::new();
    for c in cmds {
        let w = words(c);
        out.extend_from_slice(format!("*{}\r\n", w.len()).as_bytes());
        for a in w {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    s.write_all(&out).unwrap();
    read_quiet(&mut s, Duration::from_millis(300))
}

#[test]
fn resp3_replies_match_redis_byte_for_byte() {
    let Some(mut d) = Diff::start(&["--shards", "2"]) else { return };
    d.check(&words("GEOADD {r}geo 13.361389 38.115556 Palermo 15.087269 37.502669 Catania 0 0 zero -0.0000001 0 tiny"))
        .unwrap();
    let cmds = [
        "GEOPOS {r}geo Palermo nosuch zero tiny",
        "GEOHASH {r}geo Palermo nosuch",
        "GEODIST {r}geo Palermo Catania",
        "GEODIST {r}geo Palermo nosuch",
        "GEODIST {r}missing a b",
        "GEOSEARCH {r}geo FROMLONLAT 15 37 BYRADIUS 200 km WITHCOORD WITHDIST WITHHASH ASC",
        "GEORADIUS {r}geo 0 0 1 km WITHCOORD",
        "GEOSEARCH {r}missing FROMLONLAT 15 37 BYRADIUS 200 km",
        "GEOPOS {r}missing a",
    ];
    let ours = resp3_raw(d.ours.port, &cmds);
    let theirs = resp3_raw(d.theirs.port, &cmds);
    assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
    assert!(ours.windows(21).any(|w| w == b",13.36138933897018433"), "RESP3 doubles with Redis's digits");
}

#[test]
fn command_info_and_keys_match_redis() {
    let Some(mut d) = Diff::start(&["--shards", "2"]) else { return };
    for c in [
        "geoadd",
        "geodist",
        "geohash",
        "geopos",
        "geosearch",
        "geosearchstore",
        "georadius",
        "georadiusbymember",
        "georadius_ro",
        "georadiusbymember_ro",
    ] {
        d.check(&["COMMAND", "INFO", c]).unwrap();
    }
    for line in [
        "COMMAND GETKEYS georadius {c}a 0 0 1 m STORE {c}b STOREDIST {c}c",
        "COMMAND GETKEYS georadius {c}a 0 0 1 m COUNT 1 STORE",
        "COMMAND GETKEYS georadiusbymember {c}a m 1 m store {c}b",
        "COMMAND GETKEYS geosearchstore {c}d {c}s FROMLONLAT 0 0 BYRADIUS 1 m",
        "COMMAND GETKEYS geosearch {c}s FROMLONLAT 0 0 BYRADIUS 1 m",
    ] {
        d.check(&words(line)).unwrap();
    }
    let names = |filter: &str, d: &mut Diff| {
        let (a, b) = d.both(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", filter]);
        let sort = |v: Result<Value, String>| match v {
            Ok(Value::Array(mut items)) => {
                items.sort_by_key(|i| format!("{i:?}"));
                items
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(sort(a), sort(b));
    };
    names("geo", &mut d);
}

/// The STORE destinations must share the source's slot, as on Redis
/// Cluster; within a slot they work with any shard count.
#[test]
fn store_keys_share_the_source_slot() {
    let mut ms = common::moonshard(&["--shards", "4"]);
    let mut c = ms.client();
    let q = |c: &mut redis::Connection, line: &str| common::show(run_str(c, &words(line)));
    assert_eq!(q(&mut c, "GEOADD {s}src 13.361389 38.115556 Palermo 15.087269 37.502669 Catania"), "2");
    let cross = "CROSSSLOT Keys in request don't hash to the same slot";
    assert_eq!(q(&mut c, "GEORADIUS {s}src 15 37 200 km STORE other"), cross);
    assert_eq!(q(&mut c, "GEORADIUS {s}src 15 37 200 km STOREDIST other"), cross);
    assert_eq!(q(&mut c, "GEORADIUSBYMEMBER {s}src Palermo 200 km STORE other"), cross);
    assert_eq!(q(&mut c, "GEOSEARCHSTORE other {s}src FROMLONLAT 15 37 BYRADIUS 200 km"), cross);
    // A second STORE the key specs do not name is still checked.
    assert_eq!(q(&mut c, "GEORADIUS {s}src 15 37 200 km STORE {s}a STORE other"), cross);
    assert_eq!(q(&mut c, "GEORADIUS {s}src 15 37 200 km STORE {s}dst ASC"), "2");
    assert_eq!(q(&mut c, "ZRANGE {s}dst 0 -1"), "[Palermo,Catania]");
    assert_eq!(q(&mut c, "GEOSEARCHSTORE {s}dst2 {s}src FROMMEMBER Palermo BYRADIUS 10 km STOREDIST"), "1");
    assert_eq!(q(&mut c, "ZRANGE {s}dst2 0 -1 WITHSCORES"), "[Palermo,0]");
    // Read-only forms run anywhere the source is.
    assert_eq!(q(&mut c, "GEORADIUS_RO {s}src 15 37 200 km COUNT 1"), "[Catania]");
    assert!(ms.alive());
}

/// Keyspace events: GEOADD reports zadd; the STORE forms report
/// georadiusstore / geosearchstore, or del when the result is empty.
#[test]
fn keyspace_events_match_redis() {
    let Some(mut d) = Diff::start(&["--shards", "2"]) else { return };
    d.check(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]).unwrap();
    let watch = |port: u16| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$15\r\n__keyevent@0__*\r\n").unwrap();
        read_quiet(&mut s, Duration::from_millis(150));
        s
    };
    let (mut sa, mut sb) = (watch(d.ours.port), watch(d.theirs.port));
    for line in [
        "GEOADD {n}g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
        "GEOADD {n}g 13.361389 38.115556 Palermo",
        "GEORADIUS {n}g 15 37 200 km STORE {n}d",
        "GEOSEARCHSTORE {n}d2 {n}g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
        "GEOSEARCHSTORE {n}d2 {n}g FROMLONLAT 0 0 BYRADIUS 1 km",
        "GEORADIUSBYMEMBER {n}missing x 1 km STORE {n}d",
        "GEOSEARCH {n}g FROMLONLAT 15 37 BYRADIUS 200 km",
    ] {
        d.check(&words(line)).unwrap();
    }
    let (ea, eb) = (read_quiet(&mut sa, Duration::from_millis(300)), read_quiet(&mut sb, Duration::from_millis(300)));
    assert_eq!(String::from_utf8_lossy(&ea), String::from_utf8_lossy(&eb));
    assert!(String::from_utf8_lossy(&ea).contains("georadiusstore"));
}
