//! Wire and disk formats shared by every Witness process.
//!
//! Only this crate defines what crosses a process, disk or network boundary; the controller and
//! the agent convert their domain types to and from these explicitly.

pub mod api;
pub mod auth;
pub mod bag;
pub mod clearing;
pub mod config;
pub mod gate;
pub mod integration;
pub mod market_subject;
pub mod media;
pub mod schedule;
pub mod search;
pub mod smpp;
pub mod video;
