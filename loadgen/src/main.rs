//! The `loadgen` binary: parse the command line, set up tracing, hand over to the library.
fn main() {}
