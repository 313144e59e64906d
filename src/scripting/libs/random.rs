//! Redis's deterministic `math.random`: a 48-bit linear congruential
//! generator (the lrand48 family) with Redis's fixed start state, so a fresh
//! server gives the same sequence every time. Redis 7.0 no longer reseeds it
//! per EVAL (scripts replicate their effects), and neither do we; each
//! shard's VM has its own state.

use mlua::{Function, Lua, MultiValue, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const A: u64 = 0x5DEE_CE66D;
const C: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;
/// The state before any `math.randomseed` (Redis's static initializer).
pub const INITIAL_STATE: u64 = 0x1234_ABCD_330E;

/// The generator state for `srand48(seed)`.
pub fn seed_state(seed: i32) -> u64 {
    ((seed as u32 as u64) << 16) | 0x330E
}

fn next(state: &AtomicU64) -> u64 {
    let x = state.load(Ordering::Relaxed);
    let n = (A.wrapping_mul(x).wrapping_add(C)) & MASK;
    state.store(n, Ordering::Relaxed);
    n >> 17
}

fn int_arg(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<f64> {
    match args.get(i) {
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(v @ Value::String(_)) => match lua.coerce_number(v.clone())? {
            Some(n) => Ok(n),
            None => Err(super::super::api::arg_error(lua, i + 1, fname, "number expected, got string")),
        },
        Some(v) => Err(super::super::api::arg_error(
            lua,
            i + 1,
            fname,
            &format!("number expected, got {}", super::super::api::type_name(v)),
        )),
        None => Err(super::super::api::arg_error(lua, i + 1, fname, "number expected, got no value")),
    }
}

pub fn random_fn(lua: &Lua, state: Arc<AtomicU64>) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let r = (next(&state) % i32::MAX as u64) as f64 / i32::MAX as f64;
        match args.len() {
            0 => Ok(r),
            1 => {
                let u = int_arg(lua, &args, 0, "random")?.trunc();
                if u < 1.0 {
                    return Err(super::super::api::arg_error(lua, 1, "random", "interval is empty"));
                }
                Ok((r * u).floor() + 1.0)
            }
            2 => {
                let l = int_arg(lua, &args, 0, "random")?.trunc();
                let u = int_arg(lua, &args, 1, "random")?.trunc();
                if l > u {
                    return Err(super::super::api::arg_error(lua, 2, "random", "interval is empty"));
                }
                Ok((r * (u - l + 1.0)).floor() + l)
            }
            _ => Err(super::super::api::lua_error(lua, "wrong number of arguments")),
        }
    })
}

pub fn randomseed_fn(lua: &Lua, state: Arc<AtomicU64>) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let seed = int_arg(lua, &args, 0, "randomseed")?;
        state.store(seed_state(seed as i64 as i32), Ordering::Relaxed);
        Ok(())
    })
}
