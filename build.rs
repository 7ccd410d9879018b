//! Generates the agent protocol (`proto/agent/v1/agent.proto`) with tonic.
//!
//! The `.proto` is compiled by `protox`, a protobuf compiler written in Rust, so building this
//! crate needs no system `protoc`.
// A build script: a failure stops the build with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "proto/agent/v1/agent.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let descriptors = protox::compile([PROTO], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
