//! Redis's RDB file format (version 10, as Redis 7.0 writes it).
//!
//! So far: the empty file that starts an append-only file's base (its
//! header, the aux fields Redis writes, the end marker and the CRC-64
//! trailer), and a reader that accepts a file holding no keys. Values come
//! with RDB snapshots.

use super::crc64::crc64;
use std::io::Write;

pub const VERSION: u32 = 10;

const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;
const OP_IDLE: u8 = 0xF8;
const OP_FREQ: u8 = 0xF9;
const OP_FUNCTION2: u8 = 0xF5;

/// Appends a string as RDB encodes one: a length, then the bytes.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends an RDB length: 6, 14, 32 or 64 bits.
fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends an integer aux value in RDB's compact integer encoding.
fn put_int(out: &mut Vec<u8>, v: i64) {
    if let Ok(v) = i8::try_from(v) {
        out.push(0xC0);
        out.push(v as u8);
    } else if let Ok(v) = i16::try_from(v) {
        out.push(0xC1);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.push(0xC2);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        put_string(out, v.to_string().as_bytes());
    }
}

/// An RDB file of an empty dataset, with Redis's aux fields; `aof_base`
/// marks it as an append-only file's base.
pub fn empty(aof_base: bool, used_memory: u64) -> Vec<u8> {
    let mut out = format!("REDIS{VERSION:04}").into_bytes();
    let aux = |out: &mut Vec<u8>, key: &str| {
        out.push(OP_AUX);
        put_string(out, key.as_bytes());
    };
    aux(&mut out, "redis-ver");
    put_string(&mut out, crate::REDIS_VERSION.as_bytes());
    aux(&mut out, "redis-bits");
    put_int(&mut out, usize::BITS as i64);
    aux(&mut out, "ctime");
    put_int(&mut out, (crate::storage::now_ms() / 1000) as i64);
    aux(&mut out, "used-mem");
    put_int(&mut out, used_memory.min(i64::MAX as u64) as i64);
    if aof_base {
        aux(&mut out, "aof-base");
        put_int(&mut out, 1);
    }
    out.push(OP_EOF);
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes `bytes` to `path` durably: a temporary file, fsynced, renamed.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or("unexpected end of file")?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or("unexpected end of file")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A length, or the special encoding marker of a string (`Err` holds the kind).
    fn len(&mut self) -> Result<Result<u64, u8>, String> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Ok((b & 0x3F) as u64),
            1 => Ok((((b & 0x3F) as u64) << 8) | self.byte()? as u64),
            2 if b == 0x80 => Ok(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| "bad length")?) as u64),
            2 if b == 0x81 => Ok(u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| "bad length")?)),
            2 => return Err(format!("unknown length encoding {b:#x}")),
            _ => Err(b & 0x3F),
        })
    }

    fn skip_string(&mut self) -> Result<(), String> {
        match self.len()? {
            Ok(n) => {
                self.take(usize::try_from(n).map_err(|_| "string too long")?)?;
            }
            Err(0) => {
                self.take(1)?;
            }
            Err(1) => {
                self.take(2)?;
            }
            Err(2) => {
                self.take(4)?;
            }
            Err(3) => {
                // LZF: compressed length, then the uncompressed length.
                let clen = self.len()?.map_err(|_| "bad LZF length")?;
                self.len()?.map_err(|_| "bad LZF length")?;
                self.take(usize::try_from(clen).map_err(|_| "string too long")?)?;
            }
            Err(k) => return Err(format!("unknown string encoding {k}")),
        }
        Ok(())
    }
}

/// Checks an RDB file that must hold no keys (an append-only file's base
/// written by a server with an empty dataset). Returns the number of keys it
/// holds beyond that as an error: loading keys from RDB is not done yet.
pub fn check_empty(data: &[u8]) -> Result<(), String> {
    if data.len() < 9 || &data[..5] != b"REDIS" {
        return Err("Wrong signature trying to load DB from file".into());
    }
    let version: u32 = std::str::from_utf8(&data[5..9]).ok().and_then(|v| v.parse().ok()).ok_or("bad RDB version")?;
    if !(1..=VERSION).contains(&version) {
        return Err(format!("Can't handle RDB format version {version}"));
    }
    let mut r = Reader { data, pos: 9 };
    loop {
        match r.byte()? {
            OP_AUX => {
                r.skip_string()?;
                r.skip_string()?;
            }
            OP_RESIZEDB => {
                r.len()?.map_err(|_| "bad RESIZEDB")?;
                r.len()?.map_err(|_| "bad RESIZEDB")?;
            }
            OP_SELECTDB => {
                r.len()?.map_err(|_| "bad SELECTDB")?;
            }
            OP_EOF => break,
            OP_FUNCTION2 | OP_EXPIRETIME | OP_EXPIRETIME_MS | OP_IDLE | OP_FREQ | 0..=21 => {
                return Err("the RDB file holds data, and loading data from RDB is not supported yet".into())
            }
            other => return Err(format!("Unknown RDB opcode {other:#x}")),
        }
    }
    if version >= 5 {
        let trailer = r.take(8)?;
        let expected = u64::from_le_bytes(trailer.try_into().map_err(|_| "bad checksum")?);
        if expected != 0 && crc64(0, &data[..r.pos - 8]) != expected {
            return Err("Wrong RDB checksum".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_round_trips() {
        let f = empty(true, 123_456);
        assert!(f.starts_with(b"REDIS0010"));
        check_empty(&f).unwrap();
        let mut bad = f.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(check_empty(&bad), Err("Wrong RDB checksum".into()));
        assert!(check_empty(&f[..f.len() - 3]).is_err());
        assert!(check_empty(b"NOTRDB").is_err());
    }

    #[test]
    fn lengths() {
        for n in [0u64, 63, 64, 16383, 16384, u32::MAX as u64, u32::MAX as u64 + 1] {
            let mut out = Vec::new();
            put_len(&mut out, n);
            let mut r = Reader { data: &out, pos: 0 };
            assert_eq!(r.len().unwrap(), Ok(n));
        }
    }
}
