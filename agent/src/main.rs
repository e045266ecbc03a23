//! witness-gate: the access-control gate agent of the evaluation zone.
//!
//! Only the skeleton exists so far: the ID-card reader, camera, door relay, local decision and
//! durable event log are planned (see the gate agent issue). Running it says so plainly instead
//! of pretending to guard a door.

use std::process::ExitCode;

const USAGE: &str = "witness-gate — 评标区门禁代理 (gate agent)

usage: witness-gate [--version | --help | run]

  run        start the gate agent (not supported yet)
  --version  print the version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!("witness-gate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        None | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("run") => {
            eprintln!(
                "witness-gate: 门禁代理尚未实现 (not supported yet): ID-card reading, door control and event sync are planned"
            );
            ExitCode::from(2)
        }
        Some(other) => {
            eprintln!("witness-gate: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
