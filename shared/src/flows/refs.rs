//! Refs: which session a provider-side identity points to. An adapter says which keys a session
//! claims and by which rule (`providers::adapter::ClaimRule`); here they are resolved against
//! the refs as stored, and taken.

use super::contention::Contention;
use crate::Error;
use crate::providers::adapter::{Claim, ClaimRule, Taken};
use crate::providers::transport::provider_error;
use crate::session::{Session, SessionId};
use crate::store::{RefClaim, Refs, Sessions, StoreError};

/// What a session's claims come to, as the refs stand now.
#[derive(Debug, PartialEq)]
pub(crate) enum Resolved {
    /// Take these (each conditional on the ref being where it was read).
    Take(Vec<RefClaim>),
    /// A `Reuse` key names an open session of the tenant: that one is the answer.
    Reuse(Box<Session>),
}

/// How much of the refs a resolution reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Every claimed key: before a provider is called (a taken key is refused first), and after
    /// a lost race (to say why it was lost).
    All,
    /// Not the `Free` keys: the conditional write itself refuses a taken one, so a first attempt
    /// spends no read on them.
    NotFree,
}

/// Resolves `claims` of `session` (`None`: one not created yet) of `tenant`, for provider `name`.
pub(crate) async fn resolve(
    store: &(impl Refs + Sessions + ?Sized),
    name: &'static str,
    tenant: &str,
    session: Option<&SessionId>,
    claims: &[Claim],
    read: Read,
) -> Result<Resolved, Error> {
    let read_key = |c: &&Claim| read == Read::All || !matches!(c.rule, ClaimRule::Free(_));
    let keys: Vec<String> = claims
        .iter()
        .filter(read_key)
        .map(|c| c.key.clone())
        .collect();
    let mut found = if keys.is_empty() {
        Vec::new()
    } else {
        store.get_refs(&keys).await?
    }
    .into_iter();
    let current: Vec<_> = claims
        .iter()
        .map(|c| {
            if read_key(&c) {
                found.next().flatten()
            } else {
                None
            }
        })
        .collect();
    let mut take = Vec::with_capacity(claims.len());
    for (claim, r) in claims.iter().zip(current) {
        let replaces = match (claim.rule, r) {
            (_, None) => None,
            (_, Some(r)) if Some(&r.session_id) == session => continue,
            // Whoever holds it: the answer says nothing of whose it is.
            (ClaimRule::Free(taken), Some(_)) => return Err(refused(name, taken)),
            // Keys are per tenant (they hold the tenant's subject, or the provider's id for one
            // tenant's session): another tenant's ref means the provider answered an id of
            // another tenant's. Never moved.
            (_, Some(r)) if r.tenant != tenant => {
                return Err(provider_error(
                    name,
                    "answered an id that belongs to another tenant",
                ));
            }
            (ClaimRule::Replace, Some(r)) => Some(r.session_id),
            (ClaimRule::Reuse, Some(r)) => match store.get_session(&r.session_id).await? {
                Some(s) if !s.status.is_terminal() => {
                    return Ok(Resolved::Reuse(Box::new(s.into_value())));
                }
                _ => Some(r.session_id),
            },
        };
        take.push(RefClaim {
            key: claim.key.clone(),
            tenant: tenant.to_owned(),
            replaces,
        });
    }
    Ok(Resolved::Take(take))
}

/// The error a taken `Free` key answers.
pub(crate) fn refused(name: &'static str, taken: Taken) -> Error {
    match taken {
        Taken::Conflict(message) => Error::Conflict(message.into()),
        Taken::ProviderError(detail) => provider_error(name, detail),
    }
}

/// Points `claims` at an existing session, each conditional on where it pointed when read; a
/// lost race reads again.
pub(crate) async fn point(
    store: &(impl Refs + Sessions + ?Sized),
    name: &'static str,
    session: &Session,
    claims: &[Claim],
) -> Result<(), Error> {
    if claims.is_empty() {
        return Ok(());
    }
    let mut contention = Contention::new("identity");
    loop {
        let read = if contention.lost_any() {
            Read::All
        } else {
            Read::NotFree
        };
        let take = match resolve(
            store,
            name,
            &session.tenant,
            Some(&session.id),
            claims,
            read,
        )
        .await?
        {
            Resolved::Take(take) => take,
            Resolved::Reuse(_) => {
                return Err(Error::Internal(
                    "a reuse claim on an existing session".into(),
                ));
            }
        };
        let mut lost = None;
        for claim in &take {
            match store.claim_ref(claim, session).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => lost = Some(claim),
                Err(e) => return Err(e.into()),
            }
        }
        match lost {
            None => return Ok(()),
            // A `Free` key someone else took meanwhile is theirs.
            Some(c) => {
                if let Some(Claim {
                    rule: ClaimRule::Free(taken),
                    ..
                }) = claims.iter().find(|k| k.key == c.key)
                {
                    return Err(refused(name, *taken));
                }
                contention.lost().await?;
            }
        }
    }
}

/// The delivery subjects whose kept deliveries `claims` now name.
pub(crate) fn kept_subjects(claims: &[Claim]) -> Vec<String> {
    claims.iter().filter_map(|c| c.kept.clone()).collect()
}
