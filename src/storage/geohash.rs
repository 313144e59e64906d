//! Geohash math for the geo commands, bit for bit as Redis 7.0 computes it.
//!
//! A geo set is a sorted set whose scores are 52-bit geohashes: longitude
//! and latitude are each scaled to 26-bit integers over Redis's ranges
//! ([-180, 180] and the Web Mercator latitude limits ±85.05112878) and
//! interleaved, latitude bits in the even positions. A position reads back
//! as the centre of its cell. Searches cover the area with the cell that
//! holds the centre plus its eight neighbours, at a precision (the "step",
//! bits per coordinate) estimated from the radius, and each cell is one
//! score range of the sorted set.
//!
//! Every floating-point step follows Redis's order of operations, so the
//! same inputs give the same doubles (the trigonometry comes from the same
//! C library). Where C converts a double to an integer, the conversion is
//! the x86-64 one (`to_u64_like_c`, `to_i64_like_c`): scores written with
//! ZADD may be anything, and they decode as they do on Redis.

use std::f64::consts::PI;

pub const LON_MIN: f64 = -180.0;
pub const LON_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
/// Bits per coordinate of a stored position (26 * 2 = 52 bits).
pub const STEP_MAX: u8 = 26;
/// Redis's earth radius (the WGS-84 quadratic mean), in meters.
pub const EARTH_RADIUS_M: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
/// Degrees to radians, as the C constant `M_PI / 180.0`.
const D_R: f64 = PI / 180.0;

fn deg_rad(deg: f64) -> f64 {
    deg * D_R
}

fn rad_deg(rad: f64) -> f64 {
    rad / D_R
}

/// A geohash cell: `step` bits per coordinate, interleaved in `bits`.
/// The zero value (step 0) is "no cell" (an excluded neighbour).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    pub fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The cell's bits moved to the top of a 52-bit score.
    pub fn align52(self) -> u64 {
        self.bits.wrapping_shl(52u32.wrapping_sub(u32::from(self.step) * 2))
    }

    /// The scores inside this cell: `min <= score < max`.
    pub fn score_range(self) -> (f64, f64) {
        let min = self.align52();
        let max = Cell { bits: self.bits.wrapping_add(1), step: self.step }.align52();
        (min as f64, max as f64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// The coordinate ranges of stored positions.
pub const LON_RANGE: Range = Range { min: LON_MIN, max: LON_MAX };
pub const LAT_RANGE: Range = Range { min: LAT_MIN, max: LAT_MAX };
/// The ranges of standard geohash strings (GEOHASH's output).
const STD_LAT_RANGE: Range = Range { min: -90.0, max: 90.0 };

/// The rectangle a cell covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    pub lon: Range,
    pub lat: Range,
}

/// Spreads the 32 bits of `v` to the even bit positions of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `v` into a u32 (the inverse of `spread`).
fn gather(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// Latitude bits in the even positions, longitude bits in the odd ones.
pub fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

/// (latitude, longitude) integers of an interleaved hash.
pub fn deinterleave(bits: u64) -> (u32, u32) {
    (gather(bits), gather(bits >> 1))
}

/// 2^63, the first double beyond `i64`.
const TWO63: f64 = 9_223_372_036_854_775_808.0;

/// C's `(uint64_t)d` as x86-64 code computes it (what Redis does to a score
/// before decoding it): values from 2^63 go through a subtraction, and
/// anything out of range (or NaN) becomes the "integer indefinite" pattern.
pub fn to_u64_like_c(d: f64) -> u64 {
    if d >= TWO63 {
        (to_i64_like_c(d - TWO63) as u64) ^ (1 << 63)
    } else {
        to_i64_like_c(d) as u64
    }
}

/// C's `(long long)d` on x86-64: truncation, and `i64::MIN` for NaN and
/// values out of range (the hardware's "integer indefinite").
pub fn to_i64_like_c(d: f64) -> i64 {
    // NaN is in no range.
    if !(-TWO63..TWO63).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// Encodes a position at `step` bits per coordinate within the given
/// ranges. None for positions outside Redis's limits or the ranges.
pub fn encode(lon_range: Range, lat_range: Range, lon: f64, lat: f64, step: u8) -> Option<Cell> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.min || lat > lat_range.max || lon < lon_range.min || lon > lon_range.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let lon_offset = (lon - lon_range.min) / (lon_range.max - lon_range.min) * scale;
    // In range by construction (0 ..= 2^step): the truncation C performs.
    Some(Cell { bits: interleave(lat_offset as u32, lon_offset as u32), step })
}

/// Encodes a position as stored: Redis's ranges, 26 bits per coordinate.
pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Cell> {
    encode(LON_RANGE, LAT_RANGE, lon, lat, step)
}

/// The area a cell covers. None for the zero cell.
pub fn decode(lon_range: Range, lat_range: Range, cell: Cell) -> Option<Area> {
    if cell.is_zero() {
        return None;
    }
    let (ilat, ilon) = deinterleave(cell.bits);
    let div = 1u64.wrapping_shl(u32::from(cell.step)) as f64;
    let lat_scale = lat_range.max - lat_range.min;
    let lon_scale = lon_range.max - lon_range.min;
    // `+ 1` wraps in 32 bits, as C's unsigned arithmetic does.
    let lat = Range {
        min: lat_range.min + (f64::from(ilat) / div) * lat_scale,
        max: lat_range.min + (f64::from(ilat.wrapping_add(1)) / div) * lat_scale,
    };
    let lon = Range {
        min: lon_range.min + (f64::from(ilon) / div) * lon_scale,
        max: lon_range.min + (f64::from(ilon.wrapping_add(1)) / div) * lon_scale,
    };
    Some(Area { lon, lat })
}

/// The centre of an area, clamped to the stored ranges: (lon, lat).
pub fn area_center(area: &Area) -> (f64, f64) {
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The position a sorted-set score stands for: (lon, lat). Any score
/// decodes (a full-precision cell is never the zero cell).
pub fn decode_score(score: f64) -> (f64, f64) {
    let cell = Cell { bits: to_u64_like_c(score), step: STEP_MAX };
    match decode(LON_RANGE, LAT_RANGE, cell) {
        Some(area) => area_center(&area),
        None => (0.0, 0.0),
    }
}

/// The score GEOADD stores for a position (None outside the limits).
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode_wgs84(lon, lat, STEP_MAX).map(Cell::align52)
}

const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// GEOHASH's 11-character string for a stored score: the decoded position
/// re-encoded over the standard latitude range [-90, 90]; the 11th
/// character (beyond 52 bits) is always '0'.
pub fn hash_string(score: f64) -> [u8; 11] {
    let (lon, lat) = decode_score(score);
    let bits = encode(LON_RANGE, STD_LAT_RANGE, lon, lat, STEP_MAX).map_or(0, |c| c.bits);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().take(10).enumerate() {
        let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    out
}

/// The eight neighbours of a cell.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Neighbors {
    pub north: Cell,
    pub south: Cell,
    pub east: Cell,
    pub west: Cell,
    pub north_east: Cell,
    pub north_west: Cell,
    pub south_east: Cell,
    pub south_west: Cell,
}

/// Moves a cell one column east (`d > 0`) or west (`d < 0`), wrapping.
fn move_x(cell: Cell, d: i8) -> Cell {
    if d == 0 || cell.step == 0 {
        return cell;
    }
    let shift = 64 - u32::from(cell.step) * 2;
    let mut x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = cell.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    if d > 0 {
        x = x.wrapping_add(zz.wrapping_add(1));
    } else {
        x |= zz;
        x = x.wrapping_sub(zz.wrapping_add(1));
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    Cell { bits: x | y, step: cell.step }
}

/// Moves a cell one row north (`d > 0`) or south (`d < 0`), wrapping.
fn move_y(cell: Cell, d: i8) -> Cell {
    if d == 0 || cell.step == 0 {
        return cell;
    }
    let shift = 64 - u32::from(cell.step) * 2;
    let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = cell.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    if d > 0 {
        y = y.wrapping_add(zz.wrapping_add(1));
    } else {
        y |= zz;
        y = y.wrapping_sub(zz.wrapping_add(1));
    }
    y &= 0x5555_5555_5555_5555u64 >> shift;
    Cell { bits: x | y, step: cell.step }
}

pub fn neighbors(cell: Cell) -> Neighbors {
    let go = |dx: i8, dy: i8| move_y(move_x(cell, dx), dy);
    Neighbors {
        north: go(0, 1),
        south: go(0, -1),
        east: go(1, 0),
        west: go(-1, 0),
        north_east: go(1, 1),
        north_west: go(-1, 1),
        south_east: go(1, -1),
        south_west: go(-1, -1),
    }
}

/// The step (bits per coordinate) of the cells a search of `range_m`
/// meters around latitude `lat` uses: coarser for wider searches and
/// towards the poles.
pub fn estimate_steps_by_radius(range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return 26;
    }
    let mut range = range_m;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// What a search covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ShapeKind {
    /// A circle of this radius.
    Radius(f64),
    /// An axis-aligned box (width along the parallel, height along the meridian).
    Box { width: f64, height: f64 },
}

/// A search area: its centre, its size in the user's unit, and the unit's
/// size in meters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub lon: f64,
    pub lat: f64,
    pub conversion: f64,
    pub kind: ShapeKind,
}

impl Shape {
    /// (min lon, min lat, max lon, max lat) of the area: the box's east and
    /// west edges are taken where they are farthest apart (the edge nearer
    /// the pole in each hemisphere).
    pub fn bounding_box(&self) -> [f64; 4] {
        let (height, width) = match self.kind {
            ShapeKind::Radius(r) => (self.conversion * r, self.conversion * r),
            ShapeKind::Box { width, height } => (self.conversion * (height / 2.0), self.conversion * (width / 2.0)),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS_M);
        let lon_delta_top = rad_deg(width / EARTH_RADIUS_M / deg_rad(self.lat + lat_delta).cos());
        let lon_delta_bottom = rad_deg(width / EARTH_RADIUS_M / deg_rad(self.lat - lat_delta).cos());
        let lon_delta = if self.lat < 0.0 { lon_delta_bottom } else { lon_delta_top };
        [self.lon - lon_delta, self.lat - lat_delta, self.lon + lon_delta, self.lat + lat_delta]
    }

    /// The radius in meters the cell size is estimated from (a box's half
    /// diagonal).
    fn radius_meters(&self) -> f64 {
        let r = match self.kind {
            ShapeKind::Radius(r) => r,
            ShapeKind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        };
        r * self.conversion
    }

    /// The distance in meters from the centre to a position, when the
    /// position is inside the shape.
    pub fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.kind {
            ShapeKind::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                // Not `d <= r`: a NaN distance counts as inside, as in C.
                if d > r * self.conversion {
                    None
                } else {
                    Some(d)
                }
            }
            ShapeKind::Box { width, height } => {
                let (width_m, height_m) = (width * self.conversion, height * self.conversion);
                if lat_distance(lat, self.lat) > height_m / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > width_m / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// The cells to scan, in Redis's order (centre, N, S, E, W, NE, NW,
    /// SE, SW); neighbours that cannot hold a match are zero cells.
    pub fn cells(&self) -> [Cell; 9] {
        let b = self.bounding_box();
        let (min_lon, min_lat, max_lon, max_lat) = (b[0], b[1], b[2], b[3]);
        let mut steps = estimate_steps_by_radius(self.radius_meters(), self.lat);
        let at = |steps: u8| {
            let hash = encode(LON_RANGE, LAT_RANGE, self.lon, self.lat, steps).unwrap_or_default();
            (hash, neighbors(hash), decode(LON_RANGE, LAT_RANGE, hash))
        };
        let (mut hash, mut n, mut area) = at(steps);
        // A neighbour that does not reach the bounding box's edge means the
        // cells are too small: use the next coarser step.
        let reaches = |c: Cell, f: &dyn Fn(&Area) -> bool| decode(LON_RANGE, LAT_RANGE, c).is_some_and(|a| f(&a));
        let decrease = reaches(n.north, &|a| a.lat.max < max_lat)
            || reaches(n.south, &|a| a.lat.min > min_lat)
            || reaches(n.east, &|a| a.lon.max < max_lon)
            || reaches(n.west, &|a| a.lon.min > min_lon);
        if steps > 1 && decrease {
            steps -= 1;
            (hash, n, area) = at(steps);
        }
        if steps >= 2 {
            if let Some(area) = area {
                let zero = Cell::default();
                if area.lat.min < min_lat {
                    (n.south, n.south_west, n.south_east) = (zero, zero, zero);
                }
                if area.lat.max > max_lat {
                    (n.north, n.north_east, n.north_west) = (zero, zero, zero);
                }
                if area.lon.min < min_lon {
                    (n.west, n.south_west, n.north_west) = (zero, zero, zero);
                }
                if area.lon.max > max_lon {
                    (n.east, n.south_east, n.north_east) = (zero, zero, zero);
                }
            }
        }
        [hash, n.north, n.south, n.east, n.west, n.north_east, n.north_west, n.south_east, n.south_west]
    }
}

/// Distance in meters along a meridian.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Great-circle distance in meters (haversine), in Redis's operation order.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// A distance as the geo commands print it: C's `llrint(d * 10000)` (ties
/// to even) written with four decimals.
pub fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".to_string();
    }
    let scaled = d * 10000.0;
    // llrint of NaN or out-of-range values gives LLONG_MIN on x86-64.
    let n = if scaled.is_nan() || scaled.abs() >= TWO63 { i64::MIN } else { scaled.round_ties_even() as i64 };
    let sign = if n < 0 { "-" } else { "" };
    let v = n.unsigned_abs();
    format!("{sign}{}.{:04}", v / 10000, v % 10000)
}

/// A coordinate as Redis prints it (`%.17Lf` of the value, trailing zeros
/// and a bare point removed, "-0" as "0").
pub fn format_coord(x: f64) -> String {
    let text = fixed17(x);
    let mut t = text.as_str();
    if t.contains('.') {
        t = t.trim_end_matches('0');
        t = t.strip_suffix('.').unwrap_or(t);
    }
    if t == "-0" {
        "0".to_string()
    } else {
        t.to_string()
    }
}

/// `x` with exactly 17 decimals, correctly rounded (ties to even) as
/// glibc's printf rounds.
fn fixed17(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    const TEN17: u128 = 100_000_000_000_000_000;
    let bits = x.to_bits();
    let neg = bits >> 63 == 1;
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (m, e) = if exp == 0 { (frac, -1074) } else { (frac | (1 << 52), exp - 1075) };
    // x = m * 2^e. Exact integer arithmetic while it fits.
    let scaled: Option<u128> = if e >= 0 {
        None
    } else {
        let num = u128::from(m) * TEN17;
        let s = (-e) as u32;
        if s >= 128 {
            Some(0)
        } else {
            let q = num >> s;
            let r = num & ((1u128 << s) - 1);
            let half = 1u128 << (s - 1);
            Some(q + u128::from(r > half || (r == half && q & 1 == 1)))
        }
    };
    match scaled {
        Some(q) => {
            let (int, fr) = (q / TEN17, q % TEN17);
            format!("{}{int}.{fr:017}", if neg { "-" } else { "" })
        }
        // Integral values beyond 2^52: no fraction to round.
        None => format!("{x:.17}"),
    }
}

/// Distances compared as Redis's sort callback compares them.
pub fn cmp_dist(a: f64, b: f64) -> i32 {
    if a > b {
        1
    } else if a == b {
        0
    } else {
        -1
    }
}

/// Sorts as glibc's `qsort` does for arrays that fit in memory: a stable
/// top-down merge sort. Its exact merge order matters only for comparators
/// that are not consistent (a NaN distance), where it keeps Redis's order.
pub fn merge_sort<T: Clone>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    if v.len() <= 1 {
        return;
    }
    let mut tmp: Vec<T> = v.to_vec();
    msort(v, &mut tmp, cmp);
}

fn msort<T: Clone>(v: &mut [T], tmp: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    {
        let (a, b) = v.split_at_mut(n1);
        let (ta, tb) = tmp.split_at_mut(n1);
        msort(a, ta, cmp);
        msort(b, tb, cmp);
    }
    let (mut i, mut j, mut k) = (0, n1, 0);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            tmp[k] = v[i].clone();
            i += 1;
        } else {
            tmp[k] = v[j].clone();
            j += 1;
        }
        k += 1;
    }
    while i < n1 {
        tmp[k] = v[i].clone();
        i += 1;
        k += 1;
    }
    // What is left of the second half is already in place.
    v[..k].clone_from_slice(&tmp[..k]);
}

/// Redis's partial quicksort (Bentley & McIlroy's, skipping the parts that
/// cannot hold ranks `lrange..=rrange`): afterwards those ranks hold what a
/// full sort would put there, in the same order Redis leaves them.
pub fn partial_qsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32, lrange: usize, rrange: usize) {
    pqsort_at(v, 0, v.len(), cmp, lrange, rrange);
}

fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &impl Fn(&T, &T) -> i32) -> usize {
    if cmp(&v[a], &v[b]) < 0 {
        if cmp(&v[b], &v[c]) < 0 {
            b
        } else if cmp(&v[a], &v[c]) < 0 {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) > 0 {
        b
    } else if cmp(&v[a], &v[c]) < 0 {
        a
    } else {
        c
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

/// Whether elements `start..end` hold any rank of `lrange..=rrange`.
fn overlaps(start: usize, end: usize, lrange: usize, rrange: usize) -> bool {
    !((lrange < start && rrange < start) || (lrange >= end && rrange >= end))
}

fn pqsort_at<T>(v: &mut [T], mut lo: usize, mut n: usize, cmp: &impl Fn(&T, &T) -> i32, lrange: usize, rrange: usize) {
    loop {
        if n < 7 {
            for pm in lo + 1..lo + n {
                let mut pl = pm;
                while pl > lo && cmp(&v[pl - 1], &v[pl]) > 0 {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = lo + n / 2;
        if n > 7 {
            let mut pl = lo;
            let mut pn = lo + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(lo, pm);
        let (mut pa, mut pb) = (lo + 1, lo + 1);
        // pc may step below pb (to lo at the lowest): signed indices.
        let (mut pc, mut pd) = ((lo + n - 1) as isize, (lo + n - 1) as isize);
        loop {
            while pb as isize <= pc {
                let r = cmp(&v[pb], &v[lo]);
                if r > 0 {
                    break;
                }
                if r == 0 {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb as isize <= pc {
                let r = cmp(&v[pc as usize], &v[lo]);
                if r < 0 {
                    break;
                }
                if r == 0 {
                    v.swap(pc as usize, pd as usize);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb as isize > pc {
                break;
            }
            v.swap(pb, pc as usize);
            pb += 1;
            pc -= 1;
        }
        let pn = lo + n;
        let r = (pa - lo).min(pb - pa);
        vecswap(v, lo, pb - r, r);
        let (pc, pd) = (pc as usize, pd as usize);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let r = pb - pa;
        if r > 1 && overlaps(lo, lo + r, lrange, rrange) {
            pqsort_at(v, lo, r, cmp, lrange, rrange);
        }
        let r = pd - pc;
        if r > 1 {
            lo = pn - r;
            n = r;
            if overlaps(lo, lo + n, lrange, rrange) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn interleave_round_trips() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let (a, b): (u32, u32) = (rng.gen(), rng.gen());
            let bits = interleave(a, b);
            assert_eq!(deinterleave(bits), (a, b));
            // Latitude in the even bits.
            assert_eq!(bits & 1, u64::from(a & 1));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    #[test]
    fn scores_and_positions_as_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" 15.087269 37.502669 "Catania"
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(score_of(15.087269, 37.502669), Some(3479447370796909));
        let (lon, lat) = decode_score(3479099956230698.0);
        assert_eq!(format_coord(lon), "13.36138933897018433");
        assert_eq!(format_coord(lat), "38.11555639549629859");
        let (lon2, lat2) = decode_score(3479447370796909.0);
        let d = distance(lon, lat, lon2, lat2);
        assert_eq!(format_distance(d), "166274.1516");
        assert_eq!(format_distance(d / 1000.0), "166.2742");
        assert_eq!(&hash_string(3479099956230698.0), b"sqc8b49rny0");
        assert_eq!(&hash_string(3479447370796909.0), b"sqdtr74hyu0");
        assert_eq!(score_of(180.1, 0.0), None);
        assert_eq!(score_of(0.0, 85.06), None);
    }

    #[test]
    fn odd_scores_decode_like_c() {
        // Checked against redis-server 7.0 (ZADD then GEOPOS / GEOHASH).
        let show = |s: f64| {
            let (lon, lat) = decode_score(s);
            (format_coord(lon), format_coord(lat))
        };
        assert_eq!(show(-1.0), ("180".into(), "85.0511287799999991".into()));
        assert_eq!(show(1.5), ("-179.99999731779098511".into(), "-85.05112497791824921".into()));
        assert_eq!(show(1e30), ("-179.99999731779098511".into(), "-85.05112751263942528".into()));
        assert_eq!(show(f64::INFINITY), show(0.0));
        assert_eq!(show(f64::NEG_INFINITY), ("180".into(), "-85.05112751263942528".into()));
        assert_eq!(show(-1e30), show(f64::NEG_INFINITY));
        assert_eq!(show(9007199254740992.0), ("180".into(), "-85.05112751263942528".into()));
        assert_eq!(&hash_string(-1.0), b"bp05b5048p0");
        assert_eq!(&hash_string(1.5), b"00bh0hbj210");
        assert_eq!(to_i64_like_c(1e30), i64::MIN);
        assert_eq!(to_i64_like_c(-2.5), -2);
    }

    #[test]
    fn distance_format() {
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(0.00005), "0.0000"); // llrint(0.5) = 0
        assert_eq!(format_distance(0.00015), "0.0001"); // 0.00015 * 10000 is just below 1.5
        assert_eq!(format_distance(0.000375), "0.0004"); // 3.75: no tie
        assert_eq!(format_distance(0.000061), "0.0001");
        assert_eq!(format_distance(12.5), "12.5000");
        assert_eq!(format_distance(f64::NAN), "-922337203685477.5808");
    }

    #[test]
    fn coord_format() {
        assert_eq!(format_coord(0.0), "0");
        assert_eq!(format_coord(-0.0), "0");
        assert_eq!(format_coord(180.0), "180");
        assert_eq!(format_coord(-1.5), "-1.5");
        assert_eq!(format_coord(0.1), "0.10000000000000001");
        assert_eq!(format_coord(1e-18), "0");
        assert_eq!(format_coord(-1e-18), "0");
        // 2^-18 has 18 decimals ending in 5: a tie, rounded to even.
        assert_eq!(format_coord(2f64.powi(-18)), "0.00000381469726562");
    }

    #[test]
    fn steps_by_radius() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(1.0, 0.0), 24);
        assert_eq!(estimate_steps_by_radius(1.0, 70.0), 23);
        assert_eq!(estimate_steps_by_radius(1.0, -81.0), 22);
        assert_eq!(estimate_steps_by_radius(5_000_000.0, 0.0), 2);
        assert_eq!(estimate_steps_by_radius(1e12, 0.0), 1);
    }

    #[test]
    fn neighbours_wrap() {
        let c = encode_wgs84(179.9, 0.0, 3).unwrap();
        let n = neighbors(c);
        let east = decode(LON_RANGE, LAT_RANGE, n.east).unwrap();
        assert_eq!(east.lon.min, -180.0);
        let west = decode(LON_RANGE, LAT_RANGE, n.west).unwrap();
        let here = decode(LON_RANGE, LAT_RANGE, c).unwrap();
        assert_eq!(west.lon.max, here.lon.min);
        let north = decode(LON_RANGE, LAT_RANGE, n.north).unwrap();
        assert_eq!(north.lat.min, here.lat.max);
    }

    fn cmp_i(a: &(i32, usize), b: &(i32, usize)) -> i32 {
        a.0.cmp(&b.0) as i32
    }

    #[test]
    fn merge_sort_is_stable() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for len in 0..60 {
            let mut v: Vec<(i32, usize)> = (0..len).map(|i| (rng.gen_range(0..5), i)).collect();
            let mut w = v.clone();
            merge_sort(&mut v, &cmp_i);
            w.sort_by_key(|x| x.0);
            assert_eq!(v, w);
        }
    }

    #[test]
    fn partial_sort_orders_the_requested_ranks() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..300 {
            let len = rng.gen_range(1..200);
            let mut v: Vec<(i32, usize)> = (0..len).map(|i| (rng.gen_range(0..40), i)).collect();
            let k = rng.gen_range(0..len);
            let mut sorted: Vec<i32> = v.iter().map(|x| x.0).collect();
            sorted.sort();
            let before: Vec<usize> = {
                let mut ids: Vec<usize> = v.iter().map(|x| x.1).collect();
                ids.sort();
                ids
            };
            partial_qsort(&mut v, &cmp_i, 0, k);
            let got: Vec<i32> = v[..=k].iter().map(|x| x.0).collect();
            assert_eq!(got, sorted[..=k]);
            let mut after: Vec<usize> = v.iter().map(|x| x.1).collect();
            after.sort();
            assert_eq!(before, after, "a permutation");
        }
    }

    #[test]
    fn search_cells() {
        // A small radius at the equator: fine cells, some neighbours excluded.
        let s = Shape { lon: 0.5, lat: 0.5, conversion: 1000.0, kind: ShapeKind::Radius(1.0) };
        let cells = s.cells();
        assert!(cells[0].step >= 14);
        assert!(!cells[0].is_zero());
        // A huge radius: coarse cells.
        let s = Shape { lon: 0.0, lat: 0.0, conversion: 1000.0, kind: ShapeKind::Radius(5000.0) };
        assert!(s.cells().iter().all(|c| c.step <= 2));
        let b = s.bounding_box();
        assert!(b[0] < -40.0 && b[2] > 40.0);
        let p = Shape { lon: 10.0, lat: 10.0, conversion: 1.0, kind: ShapeKind::Box { width: 2000.0, height: 1000.0 } };
        assert!(p.contains(10.0, 10.0).is_some());
        assert!(p.contains(10.0, 10.0 + 0.0044).is_some());
        assert!(p.contains(10.0, 10.0 + 0.0046).is_none());
    }
}
