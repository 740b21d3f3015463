//! One module per provider: its client, its status mapping, its webhook dialect.

pub mod authento;
pub mod nevis;
pub mod passbase;
pub mod prove;
pub mod retry;
pub mod transport;
