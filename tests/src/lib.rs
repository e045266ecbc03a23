//! Helpers shared by the end-to-end tests: a daemon launcher, disc checks, and a headless
//! Chromium driver.

pub mod browser;
pub mod burning;
pub mod daemon;
pub mod gate;
pub mod nvr;
pub mod smpp_peer;
pub mod standin;
pub mod standin_subject;
