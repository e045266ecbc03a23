//! Witness (见证) controller: the archive appliance daemon of a public-resource trading center.
//!
//! See ARCHITECTURE.md for the map; in short, `catalog` stores projects and jobs, `jobs` runs
//! backups through `package` (collect, layout, plan), the drivers' burners and `verify`, and
//! `web` is the HTTP face.

pub mod audit;
pub mod auth;
pub mod batch;
pub mod catalog;
pub mod clearing;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod digest;
pub mod drives;
pub mod error;
pub mod gates;
pub mod integrations;
pub mod jobs;
pub mod labels;
pub mod package;
pub mod paths;
pub mod reinspect;
pub mod schedule;
pub mod search;
pub mod serve;
pub mod verify;
pub mod video;
pub mod web;
