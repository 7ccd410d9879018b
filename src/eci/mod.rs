//! The ECI OpenAPI client: request signing (V1 and V3), typed calls, retries and a local budget.
//!
//! The node only ever speaks this API (DESIGN.md), to Alibaba Cloud or to the emulator on
//! loopback, through the same code. `sign` is shared with the emulator, which verifies with it.

pub mod sign;
