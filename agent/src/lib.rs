//! witness-gate: the access-control gate agent of the evaluation zone. It reads experts' ID
//! cards, decides locally from the synced list of today's drawn experts (also offline), opens
//! the door, and keeps every event in a durable log that it syncs to the controller in order.

pub mod decide;
pub mod door;
pub mod gate;
pub mod log;
pub mod tls;
