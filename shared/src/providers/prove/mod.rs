//! Prove (proveapis.com), in either of its possession APIs (`IDV_PROVE_FLOW`): Unify
//! (`/v3/unify` starts a flow, the client SDK's `Authenticate()` proves possession,
//! `/v3/unify-status` gives the result, `/v3/unify-bind` after the app's own check in the
//! customer-supplied-possession flow) or legacy Verified Users (`/v3/verify`, then
//! `/v3/verify-status`); Identity Manager (`/v3/identity`) knows a verified identity and its
//! webhooks report what happens to the number.
//!
//! Assumptions where Prove's docs are silent (each is marked ASSUMPTION at its place):
//! - a verified flow's `/v3/verify-status` may carry `identityId` (the field of the legacy SDK):
//!   Prove enrolled the identity, so the gateway does not enroll it again;
//! - the webhook JWT signs no body hash; its key is the Portal secret as shown (`whsec_...`);
//! - the webhook events' keys are `eventId`, `eventType`, `eventTimestamp`, `identityId`
//!   (`proveId` accepted), `clientCustomerId`;
//! - a flow whose possession window closed answers `/v3/verify-status` with 403 code 1003.

mod adapter;
pub mod client;
mod data;
pub mod input;
pub mod phone;
mod settings;
pub mod status;
pub mod webhook;

pub use adapter::Prove;
pub use client::{ProveClient, StatusRead, VerifyRequest, VerifyResponse};
pub use data::{Possession, ProveData, ProveFlow, ProveRegion};
pub use phone::Phone;
pub use settings::{Secrets, Settings};

use super::registry::{Registration, WebhookRoute};
use crate::session::Session;

pub const NAME: &str = "prove";

pub const REGISTRATION: Registration = Registration {
    name: NAME,
    webhook: Some(WebhookRoute {
        path: "/v1/webhooks/prove",
        function: "webhook-prove",
        // Its events are recorded as they are: no read.
        operations: 0,
    }),
    // /v3/verify, then /v3/identity when verified at once; a bind (served by the same
    // function) reads /v3/unify-status, then sends /v3/unify-bind.
    start_operations: 2,
    routes: &[],
    settings: settings::read,
    build: adapter::build,
    check_secret: settings::check_secret,
    secret_id_env: "IDV_PROVE_SECRET_ID",
};

/// The ref of an Identity Manager identity: the latest verified session that enrolled it (its
/// webhooks name the identity).
pub fn identity_ref_key(identity_id: &str) -> String {
    format!("prove#identity#{identity_id}")
}

/// The ref of a Prove customer (our `clientCustomerId`, a `Subject`): its latest verified
/// session, which Identity Manager events that name only the customer find.
pub fn customer_ref_key(subject: &str) -> String {
    format!("prove#customer#{subject}")
}

/// What a redaction asks Prove to delete (`Adapter::delete_data`): the session's Identity
/// Manager identity, with the platform that enrolled it (`na:<id>`, `eu:<id>`: each platform
/// knows only its own). `None` for a session that never got an identity: nothing of it is at
/// Identity Manager, and its flow is nothing Prove's API deletes.
pub fn deletion_ref(session: &Session) -> Option<String> {
    let data: ProveData = session.data.read().ok()?;
    Some(format!("{}:{}", data.region.as_str(), data.identity_id?))
}

/// A `deletion_ref` back into its platform and identity.
fn parse_deletion_ref(reference: &str) -> Option<(ProveRegion, &str)> {
    let (region, identity) = reference.split_once(':')?;
    Some((ProveRegion::parse(region)?, identity)).filter(|(_, i)| !i.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Provider, ProviderData};

    #[test]
    fn the_deletion_ref_names_the_identity_at_its_platform_and_reads_back() {
        let now = time::OffsetDateTime::now_utc();
        let mut s = Session::new("app", Provider::named(NAME), "u1", now);
        let mut data = ProveData {
            flow: ProveFlow::Unify,
            possession: Possession::Mobile,
            region: ProveRegion::Eu,
            phone_masked: "+4*********002".into(),
            possession_deadline: None,
            identity_id: None,
            reverification_recommended: false,
        };
        s.data = ProviderData::of(&data);
        assert_eq!(deletion_ref(&s), None, "no identity: nothing to name");
        data.identity_id = Some("id:with-colon".into());
        s.data = ProviderData::of(&data);
        let r = deletion_ref(&s).unwrap();
        assert_eq!(r, "eu:id:with-colon");
        assert_eq!(
            parse_deletion_ref(&r),
            Some((ProveRegion::Eu, "id:with-colon"))
        );
        for bad in ["", "eu", "eu:", "us:x", "x"] {
            assert_eq!(parse_deletion_ref(bad), None, "{bad}");
        }
    }
}
