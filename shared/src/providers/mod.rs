//! The providers: one module per provider, each behind the one seam (`adapter`), and the list of
//! them (`ALL`). Adding a provider is its module and one line in `ALL`
//! (docs/adding-a-provider.md).

pub mod adapter;
pub mod registry;
pub mod retry;
pub mod transport;

pub mod authento;
pub mod nevis;
pub mod passbase;
pub mod prove;
pub mod stripe;

pub use adapter::{Adapter, Dialect};
pub use registry::{Providers, Registration};

/// Every provider the gateway serves. The route table, the function set, the secret document,
/// the settings and the local server are derived from this list.
pub const ALL: &[&Registration] = &[
    &authento::REGISTRATION,
    &prove::REGISTRATION,
    &nevis::REGISTRATION,
    &passbase::REGISTRATION,
    &stripe::REGISTRATION,
];
