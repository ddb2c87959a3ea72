//! `polymetrie`: skeleton until the service lands.
fn main() {}
