//! Persistence in Redis's formats: the append-only file (`aof`), RDB files
//! (`rdb`) and their CRC-64 (`crc64`).

pub mod aof;
pub mod crc64;
pub mod rdb;
