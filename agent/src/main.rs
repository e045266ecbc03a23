//! witness-gate: the access-control gate agent.
fn main() {}
