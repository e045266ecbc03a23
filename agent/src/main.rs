//! The `witness-gate` command: parses the options, builds the devices, and runs the gate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use witness_agent::gate::{self, GateConfig, ReaderSource};
use witness_drivers::camera::{self, Camera, FileCamera, NoCamera};
use witness_drivers::door_sensor::{DoorSensor, FileDoorSensor, ModbusDoorSensor, ModbusWiring};
use witness_drivers::relay::{DoorRelay, FakeRelay, SerialRelay};

/// witness-gate — 评标区门禁代理 (gate agent)
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gate agent
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Folder of the event log (gate.db)
    #[arg(
        long,
        default_value = "/var/lib/witness-gate",
        env = "WITNESS_GATE_DATA"
    )]
    data: PathBuf,
    /// The controller's URL (`https://…` needs --pin-cert)
    #[arg(long, env = "WITNESS_SERVER")]
    server: String,
    /// The controller's certificate (PEM, e.g. a copy of its `<data>/tls/cert.pem`): connect over
    /// HTTPS and accept only a server showing exactly this certificate
    #[arg(long, env = "WITNESS_GATE_PIN_CERT")]
    pin_cert: Option<PathBuf>,
    /// File holding the gate's API token (role gate); or WITNESS_GATE_TOKEN
    #[arg(long, env = "WITNESS_GATE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Reader: a serial device path, or `usb` to find one by the profiles' VID/PID
    #[arg(long, env = "WITNESS_GATE_READER")]
    reader: String,
    /// Reader profiles (for --reader usb)
    #[arg(
        long,
        default_value = "/usr/share/witness/readers",
        env = "WITNESS_GATE_PROFILES"
    )]
    profiles: PathBuf,
    /// Camera: `none`, `file:PATH` (an image file, for tests and demos) or `v4l2:/dev/videoN`
    #[arg(long, default_value = "none", env = "WITNESS_GATE_CAMERA")]
    camera: String,
    /// Door relay: `fake`, `fake:JOURNAL` (one line per opening) or `serial:/dev/ttyUSBn`
    #[arg(long, default_value = "fake", env = "WITNESS_GATE_RELAY")]
    relay: String,
    /// Door contact and tamper switch: `none`, `fake:FILE` (words open/closed/tamper, for tests
    /// and demos) or `modbus:/dev/ttyUSBn[@UNIT]` (a Modbus RTU input module, 9600 8N1; door
    /// contact on input 0, tamper switch on input 1, active = open)
    #[arg(long, default_value = "none", env = "WITNESS_GATE_DOOR_SENSOR")]
    door_sensor: String,
    /// A door open longer than this many seconds is recorded as held open
    #[arg(long, default_value_t = 30, env = "WITNESS_GATE_DOOR_HELD_SECONDS")]
    door_held_seconds: u64,
    #[arg(long, default_value_t = 150)]
    poll_ms: u64,
    #[arg(long, default_value_t = 1500)]
    reader_timeout_ms: u64,
    #[arg(long, default_value_t = 2000)]
    sync_ms: u64,
    /// Seconds the lock stays released after an allowed badge
    #[arg(long, default_value_t = 5, env = "WITNESS_GATE_DOOR_SECONDS")]
    door_seconds: u64,
}

fn token(args: &RunArgs) -> anyhow::Result<String> {
    if let Some(path) = &args.token_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(text.trim().to_string());
    }
    std::env::var("WITNESS_GATE_TOKEN")
        .context("give the gate's token with --token-file or WITNESS_GATE_TOKEN")
}

fn build(args: RunArgs) -> anyhow::Result<GateConfig> {
    let https = args
        .server
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    match &args.pin_cert {
        None if https => bail!(
            "https needs --pin-cert PATH (the controller's certificate, e.g. a copy of its \
             <data>/tls/cert.pem): the gate trusts no certificate authority"
        ),
        Some(_) if !https => bail!(
            "--pin-cert needs an https:// --server, not {:?}",
            args.server
        ),
        Some(path) => {
            witness_agent::tls::load_pinned(path)?;
        }
        None => {}
    }
    let camera: Box<dyn Camera> = match args.camera.split_once(':') {
        None if args.camera == "none" => Box::new(NoCamera),
        Some(("file", path)) => Box::new(FileCamera::new(std::path::Path::new(path))),
        Some(("v4l2", device)) => camera::open_v4l2(std::path::Path::new(device))?,
        _ => bail!(
            "--camera {:?}: expected none, file:PATH or v4l2:DEVICE",
            args.camera
        ),
    };
    let relay: Box<dyn DoorRelay> = match args.relay.split_once(':') {
        None if args.relay == "fake" => Box::new(FakeRelay::new(None)),
        Some(("fake", journal)) => Box::new(FakeRelay::new(Some(std::path::Path::new(journal)))),
        Some(("serial", device)) => Box::new(SerialRelay::open(std::path::Path::new(device))?),
        _ => bail!(
            "--relay {:?}: expected fake, fake:JOURNAL or serial:DEVICE",
            args.relay
        ),
    };
    let door_sensor: Option<Box<dyn DoorSensor>> = match args.door_sensor.split_once(':') {
        None if args.door_sensor == "none" => None,
        Some(("fake", path)) => Some(Box::new(FileDoorSensor::new(std::path::Path::new(path)))),
        Some(("modbus", device)) => {
            let (device, unit) = match device.rsplit_once('@') {
                Some((device, unit)) => (
                    device,
                    unit.parse::<u8>()
                        .ok()
                        .filter(|u| (1..=247).contains(u))
                        .with_context(|| {
                            format!("--door-sensor: Modbus unit {unit:?} is not 1..247")
                        })?,
                ),
                None => (device, 1),
            };
            let wiring = ModbusWiring {
                unit,
                ..ModbusWiring::default()
            };
            Some(Box::new(ModbusDoorSensor::open(
                std::path::Path::new(device),
                wiring,
            )?))
        }
        _ => bail!(
            "--door-sensor {:?}: expected none, fake:FILE or modbus:DEVICE[@UNIT]",
            args.door_sensor
        ),
    };
    let reader = if args.reader == "usb" {
        ReaderSource::Usb {
            profiles: args.profiles.clone(),
        }
    } else {
        ReaderSource::Serial(PathBuf::from(&args.reader))
    };
    Ok(GateConfig {
        token: token(&args)?,
        data: args.data,
        server: args.server,
        pin_cert: args.pin_cert,
        reader,
        camera,
        relay,
        poll_interval: Duration::from_millis(args.poll_ms),
        reader_timeout: Duration::from_millis(args.reader_timeout_ms),
        sync_interval: Duration::from_millis(args.sync_ms),
        door_open: Duration::from_secs(args.door_seconds),
        door_sensor,
        door_held: Duration::from_secs(args.door_held_seconds),
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => build(args).and_then(|config| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(gate::run(config))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("witness-gate: {e:#}");
            ExitCode::from(1)
        }
    }
}
