//! The market-subject library (主体库, issue 9 part 3): subject records pushed through the
//! delivery core (`records`, mapped by `adapter`), and synchronous legal-person queries with a
//! cache, subject QR codes and QR scans (`query`); routes in `web`, commands in `cli`.

pub mod adapter;
pub mod cli;
pub mod query;
pub mod records;
pub mod web;

pub use adapter::MarketSubject;
