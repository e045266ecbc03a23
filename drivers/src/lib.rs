//! Device access for Witness: burners, and later printers, readers and cameras.
//!
//! This is the only crate that opens devices. Each device class is a trait with a real
//! implementation and a fake that speaks the same protocol, so the daemon and the tests run
//! unchanged on a machine without the hardware.

pub mod autoloader;
pub mod burner;
pub mod camera;
pub mod door_sensor;
pub mod idcard;
pub mod iso9660;
pub mod printer;
#[cfg(feature = "recording")]
pub mod recording;
pub mod relay;
