//! Outbound events: how the gateway tells an app what happened, instead of being asked.
//!
//! An event is derived from a change the store committed (the table's stream in AWS, the memory
//! store's log locally: `store::Change`), never from what a handler meant to do, so nothing
//! uncommitted is announced and no committed change is missed. Its id is derived from the change,
//! so a change read twice (a stream batch retried) is still one event. Each event is stored
//! once, together with one delivery per endpoint of its tenant that wants it (one write), then
//! delivered signed per Standard Webhooks and retried on a schedule until it is delivered or the
//! schedule runs out (docs/events.md).
//!
//! `model` (events, endpoints, deliveries), `derive` (change -> event, pure), `seal` (endpoint
//! secrets at rest), `schedule` (the retry schedule, pure), `notify` (a batch of changes in),
//! `deliver` (one attempt; the sweep of due ones), `endpoints` (the endpoints API's use cases).

pub mod deliver;
pub mod derive;
pub mod endpoints;
pub mod model;
pub mod notify;
pub mod schedule;
pub mod seal;
pub mod send;

pub use model::{
    AttemptRecord, Endpoint, Event, EventType, OutboundDelivery, OutboundKey, OutboundState,
};
