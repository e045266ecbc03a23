//! Helpers shared by the end-to-end tests: a daemon launcher, disc checks, and a headless
//! Chromium driver.

pub mod browser;
pub mod daemon;
pub mod gate;
