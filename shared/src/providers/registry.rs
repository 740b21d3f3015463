//! What the gateway knows of each provider before any request: its name, its functions and
//! routes, how its settings and its part of the secret are read, and how its adapter is built.
//! The list itself is `providers::ALL`; the route table, the function set, the secret document
//! and the local server are derived from it.

use super::adapter::Adapter;
use super::transport::Transport;
use crate::config::{ConfigError, Settings};
use crate::error::Error;
use crate::session::Provider;
use serde_json::Value;
use std::any::Any;
use std::sync::Arc;

/// A provider's typed settings, as `Registration::settings` read them.
pub type ProviderSettings = Arc<dyn Any + Send + Sync>;

pub struct Registration {
    /// Its name in requests, sessions, the secret document and URLs.
    pub name: &'static str,
    /// Where its webhooks arrive, if it sends any.
    pub webhook: Option<WebhookRoute>,
    /// Provider operations one start makes one after another, at most (the start function's
    /// worst case, `deadline::worst_case`).
    pub start_operations: u32,
    /// Routes only it has.
    pub routes: &'static [ExtraRoute],
    /// Its settings from the environment, typed (bad ones fail the init).
    pub settings: fn(&Settings<'_>) -> Result<ProviderSettings, ConfigError>,
    /// Its adapter, from its settings and the one provider transport.
    pub build: fn(&ProviderSettings, &Transport) -> Arc<dyn Adapter>,
    /// Checks its part of the secret document when the document is loaded: a message naming
    /// the field (`<name>.<field> must not be empty or blank`), never a value.
    pub check_secret: fn(&Value) -> Result<(), String>,
    /// The setting naming its own Secrets Manager secret (`IDV_<NAME>_SECRET_ID`), which holds
    /// `{"<name>": {...}}` only, so that a function reads the credentials of the providers it
    /// serves and no others. Unset: its part is in the gateway's secret (`IDV_SECRET_ID`).
    pub secret_id_env: &'static str,
}

pub struct WebhookRoute {
    pub path: &'static str,
    /// The Lambda function (and crate) that serves it.
    pub function: &'static str,
    /// Provider operations acting on one delivery makes one after another, at most.
    pub operations: u32,
}

/// A route only one provider has; it runs one of the generic operations for that provider.
#[derive(Debug, PartialEq, Eq)]
pub struct ExtraRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub function: &'static str,
    pub op: ExtraOp,
    pub operations: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraOp {
    /// A start of this provider whose body has no `provider` field, answered as
    /// `{"session": <session>, <the client's fields>}`.
    Start,
}

/// The registration of a provider name.
pub fn registration(name: &str) -> Option<&'static Registration> {
    super::ALL.iter().copied().find(|r| r.name == name)
}

/// Every provider name, for messages (`one of authento, prove, ...`).
pub fn names() -> Vec<&'static str> {
    super::ALL.iter().map(|r| r.name).collect()
}

/// The adapters of a running gateway, built once per container.
#[derive(Clone, Default)]
pub struct Providers(Vec<Arc<dyn Adapter>>);

impl Providers {
    pub fn new(adapters: Vec<Arc<dyn Adapter>>) -> Self {
        Self(adapters)
    }

    /// The adapter of a provider the gateway serves.
    pub fn get(&self, provider: &Provider) -> Result<&dyn Adapter, Error> {
        self.0
            .iter()
            .find(|a| provider == a.name())
            .map(|a| a.as_ref())
            .ok_or_else(|| Error::Internal(format!("no adapter for provider {provider}")))
    }

    /// Every adapter, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Adapter> {
        self.0.iter().map(|a| a.as_ref())
    }

    pub fn by_name(&self, name: &str) -> Option<&dyn Adapter> {
        self.0.iter().find(|a| a.name() == name).map(|a| a.as_ref())
    }
}
