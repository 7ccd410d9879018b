//! A layer blob from a registry (tar, gzip or zstd; whiteouts, links, long names), unpacked twice onto one
//! root as two layers are (see `eci_vk::agent::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eci_vk::agent::fuzz::unpack_layer(data));
