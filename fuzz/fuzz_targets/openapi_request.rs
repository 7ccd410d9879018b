//! An OpenAPI request to the emulator: query, form body and headers, decoded and its signature
//! checked; and the decoded parameters, signed by the node's client, verify (see
//! `eci_vk::emulator::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eci_vk::emulator::fuzz::request(data));
