//! Geo commands (Redis 7.0's geo.c): positions kept in sorted sets whose
//! scores are 52-bit geohashes (`storage::geohash`), so a geo key is an
//! ordinary zset to every zset command, and the reverse.
//!
//! GEOADD turns its positions into scores and runs ZADD, as Redis does.
//! Searches scan the nine cells around the centre as score ranges, keep
//! what lies inside the shape, and order the matches as Redis does (a
//! stable sort, or Redis's partial quicksort when COUNT cuts the result),
//! so even ties come back in the same order.

use super::keys::lookup_read;
use super::zsets::{parse_score, store_result};
use super::Ctx;
use crate::commands::spec::prelude::*;
use crate::protocol::Reply;
use crate::shard::slot::key_slot;
use crate::storage::geohash::{self, Shape, ShapeKind};
use crate::storage::zset::ZSet;
use crate::storage::Value;
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;

// ------------------------------------------------------------ declarations

/// GEORADIUS and GEORADIUSBYMEMBER: the source, plus the key after the
/// first STORE and after the first STOREDIST found from `from` on (the
/// last argument is never a keyword), as Redis 7.0's key specs give them.
fn radius_store_keys(args: &[Bytes], from: usize) -> Vec<usize> {
    let mut out = vec![1];
    for kw in ["store", "storedist"] {
        if let Some(i) = (from..args.len().saturating_sub(1)).find(|&i| eq_ic(&args[i], kw)) {
            out.push(i + 1);
        }
    }
    out
}

fn georadius_keys(args: &[Bytes]) -> Vec<usize> {
    radius_store_keys(args, 6)
}

fn georadiusbymember_keys(args: &[Bytes]) -> Vec<usize> {
    radius_store_keys(args, 5)
}

const GEORADIUS_KEYS: KeySpec = KeySpec::Custom { find: georadius_keys, legacy: (1, 1, 1) };
const GEORADIUSBYMEMBER_KEYS: KeySpec = KeySpec::Custom { find: georadiusbymember_keys, legacy: (1, 1, 1) };

pub static COMMANDS: &[CommandSpec] = &[
    cmd("geoadd", -5, WRITE | DENYOOM, K1, G::Geo, K(geoadd))
        .syntax("key%k [NX|XX] [CH] longitude%d latitude%d member [longitude latitude member ...]")
        .doc("3.2.0", "Stores members at longitude/latitude positions in a sorted set (scores are geohashes)."),
    cmd("geodist", -4, READONLY, K1, G::Geo, K(geodist))
        .syntax("key%k member1 member2 [M|KM|FT|MI]")
        .doc("3.2.0", "Returns the distance between two members of a geo set."),
    cmd("geohash", -2, READONLY, K1, G::Geo, K(geohash))
        .syntax("key%k member [member ...]")
        .doc("3.2.0", "Returns members' positions as standard 11-character geohash strings."),
    cmd("geopos", -2, READONLY, K1, G::Geo, K(geopos))
        .syntax("key%k member [member ...]").doc("3.2.0", "Returns members' longitude and latitude."),
    cmd("geosearch", -7, READONLY, K1, G::Geo, K(geosearch))
        .syntax("key%k (FROMMEMBER member|FROMLONLAT longitude%d latitude%d) (BYRADIUS radius%d (M|KM|FT|MI)|BYBOX width%d height%d (M|KM|FT|MI)) [ASC|DESC] [COUNT count%i [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]")
        .doc("6.2.0", "Finds the members inside a circle or a box around a member or a position."),
    cmd("geosearchstore", -8, WRITE | DENYOOM, K12, G::Geo, K(geosearchstore))
        .syntax("destination%k source%k (FROMMEMBER member|FROMLONLAT longitude%d latitude%d) (BYRADIUS radius%d (M|KM|FT|MI)|BYBOX width%d height%d (M|KM|FT|MI)) [ASC|DESC] [COUNT count%i [ANY]] [STOREDIST]")
        .doc("6.2.0", "Stores the result of a GEOSEARCH-like query in a sorted set.")
        .key_specs(&[ks(&["OW", "update"], idx(1), range(0, 1, 0)), ks(&["RO", "access"], idx(2), range(0, 1, 0))]),
    cmd("georadius", -6, WRITE | DENYOOM, GEORADIUS_KEYS, G::Geo, K(georadius))
        .syntax("key%k longitude%d latitude%d radius%d (M|KM|FT|MI) [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count%i [ANY]] [ASC|DESC] [STORE key%k] [STOREDIST key%k]")
        .doc("3.2.0", "Finds the members within a radius of a position; can store the result.")
        .key_specs(&[
            ks(&["RO", "access"], idx(1), range(0, 1, 0)),
            ks(&["OW", "update"], kw("STORE", 6), range(0, 1, 0)),
            ks(&["OW", "update"], kw("STOREDIST", 6), range(0, 1, 0)),
        ]),
    cmd("georadiusbymember", -5, WRITE | DENYOOM, GEORADIUSBYMEMBER_KEYS, G::Geo, K(georadiusbymember))
        .syntax("key%k member radius%d (M|KM|FT|MI) [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count%i [ANY]] [ASC|DESC] [STORE key%k] [STOREDIST key%k]")
        .doc("3.2.0", "Finds the members within a radius of a member; can store the result.")
        .key_specs(&[
            ks(&["RO", "access"], idx(1), range(0, 1, 0)),
            ks(&["OW", "update"], kw("STORE", 5), range(0, 1, 0)),
            ks(&["OW", "update"], kw("STOREDIST", 5), range(0, 1, 0)),
        ]),
    cmd("georadius_ro", -6, READONLY, K1, G::Geo, K(georadius_ro))
        .syntax("key%k longitude%d latitude%d radius%d (M|KM|FT|MI) [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count%i [ANY]] [ASC|DESC]")
        .doc("3.2.10", "Read-only GEORADIUS: finds the members within a radius of a position."),
    cmd("georadiusbymember_ro", -5, READONLY, K1, G::Geo, K(georadiusbymember_ro))
        .syntax("key%k member radius%d (M|KM|FT|MI) [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count%i [ANY]] [ASC|DESC]")
        .doc("3.2.10", "Read-only GEORADIUSBYMEMBER: finds the members within a radius of a member."),
];

// ------------------------------------------------------------------ helpers

/// The zset under `key` for a read (counting a keyspace hit or miss):
/// Ok(false) when missing, WRONGTYPE for another type.
fn check_read(ctx: &mut Ctx, key: &[u8]) -> Result<bool, Reply> {
    match lookup_read(ctx, key) {
        None => Ok(false),
        Some(e) => match e.value {
            Value::ZSet(_) => Ok(true),
            _ => Err(Reply::wrong_type()),
        },
    }
}

/// The zset under `key` once `check_read` found it (no second count).
fn zset<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c ZSet> {
    let now = ctx.now;
    match ctx.db(key).value(key, now) {
        Some(Value::ZSet(z)) => Some(z),
        _ => None,
    }
}

/// The decoded position of `member`, if present.
fn member_pos(ctx: &mut Ctx, key: &[u8], member: &[u8]) -> Option<(f64, f64)> {
    zset(ctx, key)?.score(member).map(geohash::decode_score)
}

/// A longitude, latitude pair as GEOADD and FROMLONLAT take them.
fn parse_lonlat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), Reply> {
    let lon = parse_score(lon).ok_or_else(Reply::not_float)?;
    let lat = parse_score(lat).ok_or_else(Reply::not_float)?;
    if !(geohash::LON_MIN..=geohash::LON_MAX).contains(&lon) || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat) {
        return Err(Reply::err(format!("invalid longitude,latitude pair {lon:.6},{lat:.6}")));
    }
    Ok((lon, lat))
}

/// A unit's size in meters.
fn parse_unit(unit: &[u8]) -> Result<f64, Reply> {
    match () {
        _ if eq_ic(unit, "m") => Ok(1.0),
        _ if eq_ic(unit, "km") => Ok(1000.0),
        _ if eq_ic(unit, "ft") => Ok(0.3048),
        _ if eq_ic(unit, "mi") => Ok(1609.34),
        _ => Err(Reply::err("unsupported unit provided. please use M, KM, FT, MI")),
    }
}

/// `<radius> <unit>`: (radius in the unit, the unit in meters).
fn parse_radius(radius: &[u8], unit: &[u8]) -> Result<(f64, f64), Reply> {
    let r = parse_score(radius).ok_or_else(|| Reply::err("need numeric radius"))?;
    if r < 0.0 {
        return Err(Reply::err("radius cannot be negative"));
    }
    Ok((r, parse_unit(unit)?))
}

/// `<width> <height> <unit>`: (width, height, the unit in meters).
fn parse_box(width: &[u8], height: &[u8], unit: &[u8]) -> Result<(f64, f64, f64), Reply> {
    let w = parse_score(width).ok_or_else(|| Reply::err("need numeric width"))?;
    let h = parse_score(height).ok_or_else(|| Reply::err("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(Reply::err("height or width cannot be negative"));
    }
    Ok((w, h, parse_unit(unit)?))
}

// ----------------------------------------------------------------- commands

/// GEOADD key [NX|XX] [CH] lon lat member ...: ZADD with the positions'
/// scores (so its replies, errors and events are ZADD's).
pub fn geoadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx) = (false, false);
    let mut first = 2;
    while let Some(a) = args.get(first) {
        if eq_ic(a, "nx") {
            nx = true;
        } else if eq_ic(a, "xx") {
            xx = true;
        } else if !eq_ic(a, "ch") {
            break;
        }
        first += 1;
    }
    let rest = &args[first..];
    if !rest.len().is_multiple_of(3) || (nx && xx) {
        return Reply::syntax_error();
    }
    let mut zadd_args: Vec<Bytes> = Vec::with_capacity(first + rest.len() / 3 * 2);
    zadd_args.push(Bytes::from_static(b"zadd"));
    zadd_args.extend_from_slice(&args[1..first]);
    for t in rest.chunks_exact(3) {
        let (lon, lat) = match parse_lonlat(&t[0], &t[1]) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let score = geohash::score_of(lon, lat).unwrap_or(0);
        zadd_args.push(Bytes::from(score.to_string()));
        zadd_args.push(t[2].clone());
    }
    super::zsets::zadd(ctx, &zadd_args)
}

/// GEODIST key member1 member2 [unit]
pub fn geodist(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let to_meters = match args.len() {
        4 => 1.0,
        5 => match parse_unit(&args[4]) {
            Ok(u) => u,
            Err(e) => return e,
        },
        _ => return Reply::syntax_error(),
    };
    let key = &args[1];
    match check_read(ctx, key) {
        Ok(true) => {}
        Ok(false) => return Reply::Nil,
        Err(e) => return e,
    }
    let Some(z) = zset(ctx, key) else { return Reply::Nil };
    let (Some(a), Some(b)) = (z.score(&args[2]), z.score(&args[3])) else { return Reply::Nil };
    let (lon1, lat1) = geohash::decode_score(a);
    let (lon2, lat2) = geohash::decode_score(b);
    let d = geohash::distance(lon1, lat1, lon2, lat2) / to_meters;
    Reply::Bulk(Bytes::from(geohash::format_distance(d)))
}

/// GEOHASH key member ...: 11-character standard geohashes.
pub fn geohash(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    if let Err(e) = check_read(ctx, key) {
        return e;
    }
    let z = zset(ctx, key);
    Reply::Array(
        args[2..]
            .iter()
            .map(|m| match z.and_then(|z| z.score(m)) {
                Some(s) => Reply::Bulk(Bytes::copy_from_slice(&geohash::hash_string(s))),
                None => Reply::Nil,
            })
            .collect(),
    )
}

fn coords_reply(lon: f64, lat: f64) -> Reply {
    Reply::Array(vec![Reply::DoubleText(geohash::format_coord(lon)), Reply::DoubleText(geohash::format_coord(lat))])
}

/// GEOPOS key member ...
pub fn geopos(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    if let Err(e) = check_read(ctx, key) {
        return e;
    }
    let z = zset(ctx, key);
    Reply::Array(
        args[2..]
            .iter()
            .map(|m| match z.and_then(|z| z.score(m)) {
                Some(s) => {
                    let (lon, lat) = geohash::decode_score(s);
                    coords_reply(lon, lat)
                }
                None => Reply::NilArray,
            })
            .collect(),
    )
}

// ------------------------------------------------------------------ searches

/// Which search command runs (Redis's flags of georadiusGeneric).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS / GEORADIUS_RO: centre and radius as arguments.
    Coords,
    /// GEORADIUSBYMEMBER / _RO: around a member.
    Member,
    /// GEOSEARCH / GEOSEARCHSTORE: FROM... and BY... options.
    Search,
}

#[derive(Clone, Copy)]
struct Variant {
    form: Form,
    /// The _RO forms refuse STORE and STOREDIST.
    no_store: bool,
    /// GEOSEARCHSTORE: the destination is argument 1, STOREDIST a flag.
    search_store: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A match: where it is, how far from the centre (meters), its score.
#[derive(Clone)]
struct Point {
    lon: f64,
    lat: f64,
    dist: f64,
    score: f64,
    member: Bytes,
}

pub fn georadius(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    search_generic(ctx, args, 1, Variant { form: Form::Coords, no_store: false, search_store: false })
}

pub fn georadiusbymember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    search_generic(ctx, args, 1, Variant { form: Form::Member, no_store: false, search_store: false })
}

pub fn georadius_ro(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    search_generic(ctx, args, 1, Variant { form: Form::Coords, no_store: true, search_store: false })
}

pub fn georadiusbymember_ro(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    search_generic(ctx, args, 1, Variant { form: Form::Member, no_store: true, search_store: false })
}

pub fn geosearch(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    search_generic(ctx, args, 1, Variant { form: Form::Search, no_store: false, search_store: false })
}

pub fn geosearchstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    search_generic(ctx, args, 2, Variant { form: Form::Search, no_store: false, search_store: true })
}

fn search_generic(ctx: &mut Ctx, args: &[Bytes], src_idx: usize, v: Variant) -> Reply {
    match search_inner(ctx, args, src_idx, v) {
        Ok(r) | Err(r) => r,
    }
}

/// The search, its options checked in Redis's order so the same error wins.
fn search_inner(ctx: &mut Ctx, args: &[Bytes], src_idx: usize, v: Variant) -> Result<Reply, Reply> {
    let src = &args[src_idx];
    let exists = check_read(ctx, src)?;

    let mut center: Option<(f64, f64)> = None;
    let mut size: Option<(ShapeKind, f64)> = None;
    let mut storekey: Option<&Bytes> = None;
    let mut storedist = false;
    let base = match v.form {
        Form::Coords => {
            center = Some(parse_lonlat(&args[2], &args[3])?);
            let (r, conv) = parse_radius(&args[4], &args[5])?;
            size = Some((ShapeKind::Radius(r), conv));
            6
        }
        // With no source, the arguments are still parsed to pick the reply.
        Form::Member if !exists => 5,
        Form::Member => {
            let pos = member_pos(ctx, src, &args[2])
                .ok_or_else(|| Reply::err(crate::protocol::errors::ZSET_MEMBER_UNDECODABLE))?;
            center = Some(pos);
            let (r, conv) = parse_radius(&args[3], &args[4])?;
            size = Some((ShapeKind::Radius(r), conv));
            5
        }
        Form::Search if v.search_store => {
            storekey = Some(&args[1]);
            3
        }
        Form::Search => 2,
    };

    let search = v.form == Form::Search;
    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let opts = &args[base.min(args.len())..];
    let remaining = opts.len();
    let mut i = 0;
    while i < remaining {
        let a = &opts[i];
        if eq_ic(a, "withdist") {
            withdist = true;
        } else if eq_ic(a, "withhash") {
            withhash = true;
        } else if eq_ic(a, "withcoord") {
            withcoord = true;
        } else if eq_ic(a, "any") {
            any = true;
        } else if eq_ic(a, "asc") {
            sort = Sort::Asc;
        } else if eq_ic(a, "desc") {
            sort = Sort::Desc;
        } else if eq_ic(a, "count") && i + 1 < remaining {
            count = parse_i64(&opts[i + 1]).ok_or_else(Reply::not_integer)?;
            if count <= 0 {
                return Err(Reply::err(crate::protocol::errors::COUNT_GT_ZERO));
            }
            i += 1;
        } else if (eq_ic(a, "store") || eq_ic(a, "storedist")) && i + 1 < remaining && !v.no_store && !search {
            storekey = Some(&opts[i + 1]);
            storedist = eq_ic(a, "storedist");
            i += 1;
        } else if eq_ic(a, "storedist") && v.search_store {
            storedist = true;
        } else if eq_ic(a, "frommember") && i + 1 < remaining && search && !fromloc {
            if exists {
                let pos = member_pos(ctx, src, &opts[i + 1])
                    .ok_or_else(|| Reply::err(crate::protocol::errors::ZSET_MEMBER_UNDECODABLE))?;
                center = Some(pos);
            }
            frommember = true;
            i += 1;
        } else if eq_ic(a, "fromlonlat") && i + 2 < remaining && search && !frommember {
            center = Some(parse_lonlat(&opts[i + 1], &opts[i + 2])?);
            fromloc = true;
            i += 2;
        } else if eq_ic(a, "byradius") && i + 2 < remaining && search && !bybox {
            let (r, conv) = parse_radius(&opts[i + 1], &opts[i + 2])?;
            size = Some((ShapeKind::Radius(r), conv));
            byradius = true;
            i += 2;
        } else if eq_ic(a, "bybox") && i + 3 < remaining && search && !byradius {
            let (w, h, conv) = parse_box(&opts[i + 1], &opts[i + 2], &opts[i + 3])?;
            size = Some((ShapeKind::Box { width: w, height: h }, conv));
            bybox = true;
            i += 3;
        } else {
            return Err(Reply::syntax_error());
        }
        i += 1;
    }

    if storekey.is_some() && (withdist || withhash || withcoord) {
        let what = if v.search_store { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(Reply::err(format!("{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")));
    }
    let name = || String::from_utf8_lossy(&args[0]).into_owned();
    if search && !(frommember || fromloc) {
        return Err(Reply::err(format!("exactly one of FROMMEMBER or FROMLONLAT can be specified for {}", name())));
    }
    if search && !(byradius || bybox) {
        return Err(Reply::err(format!("exactly one of BYRADIUS and BYBOX can be specified for {}", name())));
    }
    if any && count == 0 {
        return Err(Reply::err("the ANY argument requires COUNT argument"));
    }
    // The destination must live with the source (as on Redis Cluster); the
    // router checked the keys Redis's key specs name, this covers the rest.
    if let Some(dst) = storekey {
        let apart = if ctx.server.standalone { !ctx.holds(dst) } else { key_slot(dst) != key_slot(src) };
        if apart {
            return Err(Reply::crossslot());
        }
    }

    let event = if search { "geosearchstore" } else { "georadiusstore" };
    let (Some((lon, lat)), Some((kind, conversion)), true) = (center, size, exists) else {
        // No source key: an empty result (a STORE deletes its destination).
        return Ok(match storekey {
            Some(dst) => store_result(ctx, dst, Vec::new(), event),
            None => Reply::Array(Vec::new()),
        });
    };
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let shape = Shape { lon, lat, conversion, kind };
    let limit = if any { count as usize } else { 0 };
    let mut points = match zset(ctx, src) {
        Some(z) => collect(z, &shape, limit),
        None => Vec::new(),
    };
    if points.is_empty() && storekey.is_none() {
        return Ok(Reply::Array(Vec::new()));
    }
    let total = points.len();
    let returned = if count == 0 || (total as i64) < count { total } else { count as usize };
    match sort {
        Sort::None => {}
        Sort::Asc | Sort::Desc => {
            let desc = sort == Sort::Desc;
            let cmp = move |a: &Point, b: &Point| {
                let c = geohash::cmp_dist(a.dist, b.dist);
                if desc {
                    -c
                } else {
                    c
                }
            };
            if returned == total {
                geohash::merge_sort(&mut points, &cmp);
            } else {
                geohash::partial_qsort(&mut points, &cmp, 0, returned - 1);
            }
        }
    }
    points.truncate(returned);

    let Some(dst) = storekey else {
        let options = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
        let items = points
            .into_iter()
            .map(|p| {
                if options == 0 {
                    return Reply::Bulk(p.member);
                }
                let mut item = Vec::with_capacity(options + 1);
                item.push(Reply::Bulk(p.member));
                if withdist {
                    item.push(Reply::Bulk(Bytes::from(geohash::format_distance(p.dist / conversion))));
                }
                if withhash {
                    item.push(Reply::Int(geohash::to_i64_like_c(p.score)));
                }
                if withcoord {
                    item.push(coords_reply(p.lon, p.lat));
                }
                Reply::Array(item)
            })
            .collect();
        return Ok(Reply::Array(items));
    };
    let mut items: Vec<(Bytes, f64)> = points
        .into_iter()
        .map(|p| {
            let score = if storedist { p.dist / conversion } else { p.score };
            (p.member, score)
        })
        .collect();
    // One entry per member (a member can only match once; this keeps the
    // zset sound whatever happens), in zset order.
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items.dedup_by(|a, b| a.0 == b.0);
    items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let stored = items.len() as u64;
    let reply = store_result(ctx, dst, items, event);
    if stored > 0 {
        // A change per member stored, as Redis counts.
        ctx.set_dirty(stored);
    }
    Ok(reply)
}

/// The members inside `shape`, cell by cell in Redis's order. A cell equal
/// to the one scanned just before is skipped (very wide searches repeat
/// cells). With `limit`, stops once that many matched (ANY).
fn collect(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    let cells = shape.cells();
    let mut last: Option<usize> = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        if let Some(l) = last {
            if cells[l] == *cell {
                continue;
            }
        }
        if limit != 0 && out.len() >= limit {
            break;
        }
        let (min, max) = cell.score_range();
        let lo = z.count_while_score(|s| s < min);
        let hi = z.count_while_score(|s| s < max);
        // In chunks, so that ANY stops early on a big cell.
        let mut at = lo;
        let mut chunk = 16;
        while at < hi && !(limit != 0 && out.len() >= limit) {
            let end = (at + chunk).min(hi);
            z.for_range(at, end, false, |member, score| {
                if limit != 0 && out.len() >= limit {
                    return;
                }
                let (lon, lat) = geohash::decode_score(score);
                if let Some(dist) = shape.contains(lon, lat) {
                    out.push(Point { lon, lat, dist, score, member: Bytes::copy_from_slice(member) });
                }
            });
            at = end;
            chunk = (chunk * 2).min(4096);
        }
        last = Some(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(words: &str) -> Vec<Bytes> {
        words.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn store_keys_follow_redis_key_specs() {
        assert_eq!(georadius_keys(&b("georadius s 0 0 1 m store d")), vec![1, 7]);
        assert_eq!(georadius_keys(&b("georadius s 0 0 1 m store d storedist e")), vec![1, 7, 9]);
        // The last argument is never taken for a keyword.
        assert_eq!(georadius_keys(&b("georadius s 0 0 1 m count store")), vec![1]);
        // Only the first STORE counts.
        assert_eq!(georadius_keys(&b("georadius s 0 0 1 m STORE a STORE b")), vec![1, 7]);
        assert_eq!(georadiusbymember_keys(&b("georadiusbymember s store 1 m store d")), vec![1, 6]);
        assert_eq!(georadiusbymember_keys(&b("georadiusbymember s m 1 m")), vec![1]);
    }

    #[test]
    fn units() {
        assert_eq!(parse_unit(b"KM").ok(), Some(1000.0));
        assert_eq!(parse_unit(b"mi").ok(), Some(1609.34));
        assert!(parse_unit(b"yd").is_err());
        assert!(parse_radius(b"-1", b"m").is_err());
        assert!(parse_radius(b"1", b"x").is_err());
        assert!(parse_lonlat(b"181", b"0").is_err());
        assert!(parse_lonlat(b"nan", b"0").is_err());
    }
}
