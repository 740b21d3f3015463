//! Redaction (`POST /v1/sessions/{id}/redact`, `POST /v1/users/{user_id}/redact`): a session's
//! personal and provider-identifying values erased, in three steps that each survive a crash:
//!
//! 1. one conditional write marks the session `redacting` (from then on every read hides its
//!    personal data, and its user's listings skip it) and files it due, so that reconcile
//!    finishes it if the request dies;
//! 2. what hangs on it is erased (`store::Erasure`: refs, identity events, reauthentications,
//!    the idempotency record's replay, webhook deliveries and filings, outbound event bodies);
//! 3. one conditional write stores the erased session (`Session::erased`), out of the user
//!    index, its history erased, `redacted`;
//!
//! then, where the provider's API allows it, the provider is asked to delete its records and one
//! more conditional write records its answer (`provider_deletion`; a failure is retried by
//! reconcile with backoff).
//!
//! A repeat of any step finds it done and goes on; a repeat of the whole answers the same.

use super::contention::Contention;
use crate::providers::adapter::Cx;
use crate::providers::{authento, prove, stripe};
use crate::session::{
    HistoryEntry, MAX_DELETION_ATTEMPTS, MAX_HISTORY, ProviderDeletion, Redaction, RedactionState,
    Session, SessionId, Source, Subject,
};
use crate::store::{Erasure, SessionFilter, SessionWrite, StoreError, Stored};
use crate::{App, Error};
use time::Duration;

/// How long a redaction left `redacting` by a dead request waits for reconcile to finish it.
const FINISH_AFTER: Duration = Duration::minutes(2);

/// Redacts one session of `tenant`.
pub async fn redact_session(app: &App, tenant: &str, id: &str) -> Result<Session, Error> {
    let id = SessionId::parse(id).ok_or(Error::NotFound)?;
    let read = app
        .store
        .get_session(&id)
        .await?
        .filter(|s| s.tenant == tenant)
        .ok_or(Error::NotFound)?;
    Ok(redact(app, read).await?.into_value())
}

/// Redacts every session of `tenant`'s user (each as `redact_session` would): the sessions as
/// redacted, newest first. A user with none is not found.
pub async fn redact_user(app: &App, tenant: &str, user_id: &str) -> Result<Vec<Session>, Error> {
    // Those of a redaction that failed midway too: a repeat finishes them.
    let user = SessionFilter {
        with_redacting: true,
        ..SessionFilter::user(user_id)
    };
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .store
            .list_sessions(tenant, &user, 100, cursor.as_deref())
            .await?
            .ok_or(Error::NotFound)?;
        found.extend(page.sessions);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // Only finished ones left (or none ever): nothing of the user to redact.
    if found.is_empty() {
        return Err(Error::NotFound);
    }
    let mut done = Vec::with_capacity(found.len());
    for s in found {
        let read = app.store.get_session(&s.id).await?.ok_or(Error::NotFound)?;
        done.push(redact(app, read).await?.into_value());
    }
    Ok(done)
}

/// Marks (if not yet), then finishes, a session's redaction.
async fn redact(app: &App, mut read: Stored<Session>) -> Result<Stored<Session>, Error> {
    let mut contention = Contention::new("session");
    while read.redaction.is_none() {
        let now = app.clock.now();
        let mut next = read.value.clone();
        let (deletion, deletion_ref) = match deletion_ref(&read) {
            Some(r) if app.providers.get(&read.provider)?.deletes_data() => {
                (ProviderDeletion::Pending, Some(r))
            }
            _ => (ProviderDeletion::Unsupported, None),
        };
        next.redaction = Some(Redaction {
            state: RedactionState::Redacting,
            at: now,
            provider_deletion: deletion,
            deletion_ref,
            deletion_attempts: 0,
        });
        next.next_check_at = Some(now + FINISH_AFTER);
        match app
            .store
            .update_session(SessionWrite {
                read: &read,
                session: &next,
                history: None,
                at: now,
            })
            .await
        {
            Ok(stored) => read = stored,
            Err(StoreError::Conflict) => read = reread(app, &mut contention, &read).await?,
            Err(e) => return Err(e.into()),
        }
    }
    finish(app, read).await
}

/// Finishes a marked redaction (also reconcile's work for a due one): erases what hangs on the
/// session and stores the erased session, then asks the provider to delete (once done, never
/// again) and records its answer. A session already `redacted` only has its pending provider
/// deletion tried again, when it is due.
///
/// The provider is asked only after the erased session is stored, and its answer is recorded at
/// once: a request that dies before the erased session is written has not asked it, so a repeat
/// (or reconcile) asks it once. Only a death between the provider's answer and its record makes
/// the next attempt ask again (a deletion is safe to repeat).
pub(crate) async fn finish(app: &App, mut read: Stored<Session>) -> Result<Stored<Session>, Error> {
    let mut contention = Contention::new("session");
    // The erased session was written by this call: its deletion is asked now, not at its due time.
    let mut erased_here = false;
    // The provider's answer, once asked: applied to the session as it stands after a lost race,
    // never asked again.
    let mut asked: Option<Asked> = None;
    loop {
        let Some(r) = read.redaction.clone() else {
            return Ok(read);
        };
        let now = app.clock.now();
        let write = |read, session, history| SessionWrite {
            read,
            session,
            history,
            at: now,
        };
        if r.state == RedactionState::Redacting {
            let until = now + app.config.dedupe_ttl;
            app.store.erase_dependents(&erasure(&read, until)).await?;
            let mut redaction = r.clone();
            redaction.state = RedactionState::Redacted;
            let mut next = read.value.erased();
            // A pending deletion is asked right after this write; should the request die
            // first, reconcile asks it.
            next.next_check_at = (redaction.provider_deletion == ProviderDeletion::Pending)
                .then_some(now + FINISH_AFTER);
            next.check_attempts = 0;
            next.redaction = Some(redaction);
            let history = erased_history(app, &read).await?;
            let entry = HistoryEntry {
                session_id: read.id.clone(),
                version: read.next_version(),
                at: now,
                from: read.status,
                to: read.status,
                provider_status: None,
                source: Source::App,
                reason: Some("redacted".into()),
                provider_event: None,
            };
            match app
                .store
                .write_redacted(write(&read, &next, Some(&entry)), &history)
                .await
            {
                Ok(stored) => {
                    read = stored;
                    erased_here = true;
                }
                Err(StoreError::Conflict) => read = reread(app, &mut contention, &read).await?,
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        if r.provider_deletion != ProviderDeletion::Pending {
            return Ok(read);
        }
        let outcome = match asked {
            Some(a) => a,
            None => {
                let due = read.next_check_at.is_none_or(|at| at <= now);
                if !(erased_here || due) {
                    return Ok(read);
                }
                let a = delete_at_provider(app, &read, &r).await;
                asked = Some(a);
                a
            }
        };
        let mut redaction = r.clone();
        outcome.apply(&mut redaction);
        let mut next = read.value.clone();
        next.next_check_at = match redaction.provider_deletion {
            ProviderDeletion::Pending => Some(now + deletion_backoff(redaction.deletion_attempts)),
            _ => None,
        };
        next.check_attempts = 0;
        next.redaction = Some(redaction);
        match app.store.update_session(write(&read, &next, None)).await {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict) => read = reread(app, &mut contention, &read).await?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// After a lost race: the pause, then the session as it now stands.
async fn reread(
    app: &App,
    contention: &mut Contention,
    read: &Stored<Session>,
) -> Result<Stored<Session>, Error> {
    contention.lost().await?;
    app.store
        .get_session(&read.id)
        .await?
        .ok_or(Error::NotFound)
}

/// The history as the redacted session keeps it: each entry erased, room left for the
/// redaction's own (the first and the latest others, as a full history keeps them).
async fn erased_history(app: &App, read: &Stored<Session>) -> Result<Vec<HistoryEntry>, Error> {
    let (_, mut history) = app
        .store
        .get_session_with_history(&read.id)
        .await?
        .ok_or(Error::NotFound)?;
    while history.len() >= MAX_HISTORY {
        history.remove(1);
    }
    Ok(history.iter().map(HistoryEntry::erased).collect())
}

/// What the provider said to one deletion attempt.
#[derive(Debug, Clone, Copy)]
enum Asked {
    Deleted,
    Failed,
    /// Nothing to name (no reference kept): nothing the gateway can ask for.
    Nothing,
}

impl Asked {
    /// The redaction after it: `done`, or one more failure (`failed` after the last).
    fn apply(self, r: &mut Redaction) {
        match self {
            Asked::Deleted => {
                r.provider_deletion = ProviderDeletion::Done;
                r.deletion_ref = None;
            }
            Asked::Nothing => r.provider_deletion = ProviderDeletion::Unsupported,
            Asked::Failed => {
                r.deletion_attempts += 1;
                if r.deletion_attempts >= MAX_DELETION_ATTEMPTS {
                    r.provider_deletion = ProviderDeletion::Failed;
                    r.deletion_ref = None;
                }
            }
        }
    }
}

/// One deletion attempt at the provider.
async fn delete_at_provider(app: &App, s: &Session, r: &Redaction) -> Asked {
    let Some(reference) = r.deletion_ref.as_deref() else {
        return Asked::Nothing;
    };
    let outcome = match (app.providers.get(&s.provider), app.secrets.get().await) {
        (Ok(adapter), Ok(secrets)) => {
            let cx = Cx {
                secrets: &secrets,
                now: app.clock.now(),
            };
            adapter.delete_data(&cx, reference).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match outcome {
        Ok(()) => Asked::Deleted,
        Err(e) => {
            // No personal data in `e`.
            tracing::warn!(session_id = %s.id, error = %e, "redaction: provider deletion failed");
            Asked::Failed
        }
    }
}

/// 1, 2, 4 ... minutes, at most a day.
fn deletion_backoff(attempts: u32) -> Duration {
    Duration::minutes(1i64 << attempts.min(10)).min(Duration::days(1))
}

/// The provider's id its deletion names: Prove's Identity Manager identity (with the platform
/// that enrolled it), Stripe's VerificationSession.
fn deletion_ref(s: &Session) -> Option<String> {
    match s.provider.as_str() {
        prove::NAME => prove::deletion_ref(s),
        stripe::NAME => s.provider_ref.clone(),
        _ => None,
    }
}

fn data_string(s: &Session, key: &str) -> Option<String> {
    let v: serde_json::Value = s.data.read().ok()?;
    v.get(key)?.as_str().map(str::to_owned)
}

/// What hangs on a session, by the keys its values build.
fn erasure(s: &Session, tombstones_until: time::OffsetDateTime) -> Erasure {
    let provider = s.provider.as_str();
    let subject = Subject::of(&s.tenant, &s.user_id).as_str().to_owned();
    let identity = data_string(s, "identity_id");
    let mut ref_keys = Vec::new();
    let mut subjects = vec![subject.clone()];
    match provider {
        authento::NAME => {
            for t in [
                authento::VerificationType::Basic,
                authento::VerificationType::Poa,
            ] {
                ref_keys.push(authento::ref_key(&subject, t));
            }
        }
        prove::NAME => {
            ref_keys.push(prove::customer_ref_key(&subject));
            subjects.push(format!("customer:{subject}"));
            if let Some(i) = &identity {
                ref_keys.push(prove::identity_ref_key(i));
                subjects.push(format!("identity:{i}"));
            }
        }
        _ => {}
    }
    if let Some(r) = &s.provider_ref {
        // Nevis, Passbase and Stripe key their ref by the provider's id.
        ref_keys.push(format!("{provider}#{r}"));
        subjects.push(r.clone());
    }
    let mut values = vec![s.user_id.clone(), subject];
    values.extend(s.provider_ref.clone());
    if let Ok(serde_json::Value::Object(data)) = s.data.read::<serde_json::Value>() {
        values.extend(
            data.values()
                .filter_map(|v| v.as_str())
                .filter(|v| v.len() >= 4)
                .map(str::to_owned),
        );
    }
    values.retain(|v| !v.is_empty());
    Erasure {
        session_id: s.id.clone(),
        tenant: s.tenant.clone(),
        user_id: s.user_id.clone(),
        ref_keys,
        subjects: subjects
            .into_iter()
            .map(|x| (provider.to_owned(), x))
            .collect(),
        values,
        tombstones_until,
    }
}
