//! LOLWUT [VERSION v] [params...]: a piece of generative art and the
//! server's version.
//!
//! The art is moonshard's own: a crescent moon broken into shards (the
//! Voronoi cells of seeds scattered over it, each pushed away from the
//! moon's centre), drawn with Braille dots (2x4 dots per character). It is
//! deterministic: the same arguments draw the same picture.
//!
//! Arguments follow Redis: `VERSION v` must be an integer; versions 5 and 6
//! take numeric parameters (5: columns, moons per row, moons per column; 6:
//! columns, rows), each an integer or "value is not an integer or out of
//! range", clamped to Redis's ranges; any other version (and no VERSION)
//! ignores what follows. Version 5 draws a lunar calendar (one moon per
//! phase, row by row), the others one large moon among stars.

use super::ConnCtx;
use crate::protocol::Reply;
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;

/// The most dots a picture may have (about 1 MB of text): larger requests
/// draw fewer moons or rows rather than exhaust memory.
const MAX_DOTS: usize = 4 << 20;

pub fn lolwut(_ctx: &mut ConnCtx, args: &[Bytes]) -> Reply {
    let (version, params) = if args.len() >= 3 && eq_ic(&args[1], "version") {
        match parse_i64(&args[2]) {
            // Redis keeps the version as a C unsigned int.
            Some(v) => (v as u32, &args[3..]),
            None => return Reply::not_integer(),
        }
    } else {
        (7, &args[1..])
    };
    let text = match version {
        5 => {
            let p = match numbers(params, &[(66, 1, 1000), (8, 1, 200), (12, 1, 200)]) {
                Ok(p) => p,
                Err(e) => return e,
            };
            calendar(p[0] as usize, p[1] as usize, p[2] as usize)
        }
        6 => {
            let p = match numbers(params, &[(80, 1, 1000), (20, 1, 1000)]) {
                Ok(p) => p,
                Err(e) => return e,
            };
            night(p[0] as usize, p[1] as usize, 6)
        }
        v => night(60, 15, v as u64),
    };
    Reply::Verbatim("txt", Bytes::from(text))
}

/// The parameters given (each an integer, else Redis's error), defaults
/// for the missing ones, clamped: `spec` is (default, min, max) per place.
fn numbers(params: &[Bytes], spec: &[(i64, i64, i64)]) -> Result<Vec<i64>, Reply> {
    spec.iter()
        .enumerate()
        .map(|(i, &(default, lo, hi))| match params.get(i) {
            None => Ok(default),
            Some(a) => parse_i64(a).map(|v| v.clamp(lo, hi)).ok_or_else(Reply::not_integer),
        })
        .collect()
}

fn version_line() -> String {
    format!("moonshard ver. {} (Redis ver. {})\n", env!("CARGO_PKG_VERSION"), crate::REDIS_VERSION)
}

// ------------------------------------------------------------ pictures

/// Version 5: `per_row` x `per_col` moons, waxing and waning through one
/// lunar month in reading order, each broken into its own shards.
fn calendar(cols: usize, per_row: usize, per_col: usize) -> String {
    let width = cols * 2;
    let side = (width / per_row).max(4);
    let rows_fit = (MAX_DOTS / (width * side)).max(1);
    let per_col = per_col.min(rows_fit);
    let mut c = Canvas::new(width, side * per_col);
    let total = per_row * per_col;
    for k in 0..total {
        let (cx, cy) = ((k % per_row) * side + side / 2, (k / per_row) * side + side / 2);
        let phase = (k as f64 + 0.5) / total as f64;
        let moon = Moon {
            cx: cx as f64,
            cy: cy as f64,
            r: side as f64 * 0.38,
            phase,
            shards: 5,
            spread: 0.10,
            seed: 0x5EED_0005 ^ ((k as u64) << 20) ^ ((cols as u64) << 40),
        };
        moon.draw(&mut c);
    }
    format!("{}\nA lunar month, {total} moons, each in pieces. {}", c.render(), version_line())
}

/// One large shattered crescent among stars, `cols` x `rows` characters.
fn night(cols: usize, rows: usize, seed: u64) -> String {
    let width = cols * 2;
    let rows = rows.min((MAX_DOTS / (width * 4)).max(1));
    let height = rows * 4;
    let mut c = Canvas::new(width, height);
    let mut rng = Rng(seed ^ ((cols as u64) << 32) ^ rows as u64);
    let r = (width.min(height) as f64) * 0.36;
    let moon = Moon {
        cx: width as f64 * 0.5,
        cy: height as f64 * 0.5,
        r,
        phase: 0.3,
        shards: 9,
        spread: 0.14,
        seed: rng.next(),
    };
    // Stars first: the moon covers those behind it.
    for _ in 0..(width * height / 90) {
        let (x, y) = (rng.below(width), rng.below(height));
        let (dx, dy) = (x as f64 - moon.cx, y as f64 - moon.cy);
        if dx * dx + dy * dy > (r * 1.3) * (r * 1.3) {
            c.set(x, y);
        }
    }
    moon.draw(&mut c);
    format!("{}\nA moon in {} shards. {}", c.render(), moon.shards, version_line())
}

/// A moon of radius `r` at (`cx`, `cy`): lit between its limb and the
/// terminator of `phase` (0 new, 0.5 full, 1 new again), cut into `shards`
/// Voronoi cells pushed outwards by `spread` times their distance.
struct Moon {
    cx: f64,
    cy: f64,
    r: f64,
    phase: f64,
    shards: usize,
    spread: f64,
    seed: u64,
}

impl Moon {
    /// Whether the unmoved moon is lit at (x, y), relative to its centre.
    fn lit(&self, x: f64, y: f64) -> bool {
        let r = self.r;
        if x * x + y * y > r * r {
            return false;
        }
        // The terminator is an ellipse of half-width |cos| r; the lit side
        // is the right one while waxing, the left one while waning.
        let angle = self.phase * std::f64::consts::TAU;
        let half = (r * r - y * y).max(0.0).sqrt();
        let edge = half * angle.cos();
        if self.phase < 0.5 {
            x > edge
        } else {
            x < -edge
        }
    }

    fn draw(&self, c: &mut Canvas) {
        let mut rng = Rng(self.seed);
        let seeds: Vec<(f64, f64)> = (0..self.shards)
            .map(|_| {
                let a = rng.unit() * std::f64::consts::TAU;
                let d = rng.unit().sqrt() * self.r * 0.9;
                (d * a.cos(), d * a.sin())
            })
            .collect();
        let nearest = |x: f64, y: f64| {
            let mut best = (f64::MAX, 0);
            for (i, &(sx, sy)) in seeds.iter().enumerate() {
                let d = (x - sx) * (x - sx) + (y - sy) * (y - sy);
                if d < best.0 {
                    best = (d, i);
                }
            }
            best.1
        };
        let reach = self.r * (1.0 + self.spread) + 2.0;
        let (x0, x1) = ((self.cx - reach).max(0.0) as usize, ((self.cx + reach) as usize).min(c.width));
        let (y0, y1) = ((self.cy - reach).max(0.0) as usize, ((self.cy + reach) as usize).min(c.height));
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f64 - self.cx, y as f64 - self.cy);
                // A dot is on when some shard, moved back by its push, puts a
                // lit point of its own cell under it.
                let on = seeds.iter().enumerate().any(|(i, &(sx, sy))| {
                    let (qx, qy) = (px - sx * self.spread, py - sy * self.spread);
                    self.lit(qx, qy) && nearest(qx, qy) == i
                });
                if on {
                    c.set(x, y);
                }
            }
        }
    }
}

/// SplitMix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A grid of dots, printed as Braille characters of 2x4 dots.
struct Canvas {
    width: usize,
    height: usize,
    dots: Vec<bool>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        let height = height.div_ceil(4) * 4;
        Canvas { width, height, dots: vec![false; width * height] }
    }

    fn set(&mut self, x: usize, y: usize) {
        if x < self.width && y < self.height {
            self.dots[y * self.width + x] = true;
        }
    }

    fn get(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.height && self.dots[y * self.width + x]
    }

    fn render(&self) -> String {
        // Bit of each dot of a cell, by (column, row): Unicode's Braille order.
        const BITS: [[u32; 4]; 2] = [[0, 1, 2, 6], [3, 4, 5, 7]];
        let mut out = String::with_capacity(self.width / 2 * 3 * (self.height / 4 + 1) + self.height);
        for cy in (0..self.height).step_by(4) {
            for cx in (0..self.width).step_by(2) {
                let mut code = 0u32;
                for (dx, column) in BITS.iter().enumerate() {
                    for (dy, bit) in column.iter().enumerate() {
                        if self.get(cx + dx, cy + dy) {
                            code |= 1 << bit;
                        }
                    }
                }
                out.push(char::from_u32(0x2800 + code).unwrap_or(' '));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = night(40, 10, 7);
        assert_eq!(a, night(40, 10, 7));
        assert_ne!(a, night(41, 10, 7));
        let lines: Vec<&str> = a.lines().collect();
        assert_eq!(lines.len(), 12);
        assert!(lines[..10].iter().all(|l| l.chars().count() == 40));
        assert!(a.ends_with(&version_line()));
        // Something is drawn, and not everything.
        let dots: usize = a.chars().filter(|&c| ('\u{2801}'..='\u{28ff}').contains(&c)).count();
        assert!(dots > 20 && dots < 400, "{dots}");
        let cal = calendar(66, 8, 12);
        assert_eq!(cal.lines().count(), (132 / 8) * 12 / 4 + 2);
        // Huge requests stay bounded.
        assert!(calendar(1000, 1, 200).len() < 8 << 20);
        assert!(night(1000, 1000, 6).len() < 8 << 20);
    }
}
