//! A pod as the watch hands it to the node: its annotations, quantities, volumes and fields,
//! through the checks and translation a create runs (see `eci_vk::pods::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eci_vk::pods::fuzz::translate(data));
