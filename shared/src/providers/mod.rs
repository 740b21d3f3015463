//! One module per provider: its client, its status mapping, its webhook dialect.

pub mod authento;
pub mod passbase;
pub mod retry;
