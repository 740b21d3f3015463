//! The one state machine. Rules (docs/api.md#statuses):
//! - `expired` and `canceled` are final: nothing moves a session out of them.
//! - `verified` and `failed` move only on the provider's authoritative state (an API read), e.g. a
//!   manual review overturning a decision or an Authento `RESET`.
//! - A webhook's own claim never moves a session backwards; an authoritative read may.
//! - The app may cancel, and our deadline may expire, only a session that is not terminal.
//! - An answer that settles nothing (a 404, an unknown status word) never moves a session; it is
//!   noted, and the session is read again later.

use super::model::{LastError, Source, Status};

/// A change someone wants to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub status: Status,
    pub provider_status: Option<String>,
    pub last_error: Option<LastError>,
    pub source: Source,
    /// Set when the provider's answer settles nothing (`NOT_FOUND`, `UNKNOWN_STATUS`): the
    /// session keeps its status, whatever `status` says.
    pub unclear: Option<&'static str>,
}

/// The provider does not know the user or flow (a 404): no news for a session not yet started,
/// and never grounds to undo anything.
pub const NOT_FOUND: &str = "not_found";
/// A status word the gateway does not know: it claims nothing.
pub const UNKNOWN_STATUS: &str = "unknown_status";
/// An answer the gateway cannot use at all (a body it cannot read, its credentials refused).
pub const PROVIDER_ERROR: &str = "provider_error";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write it. `transition` is true when the status itself changes (a history entry is due);
    /// `overturn` when a decision (`verified`/`failed`) is replaced.
    Apply { transition: bool, overturn: bool },
    /// Nothing new: the session already says this.
    Unchanged,
    /// Not allowed from this source; the session stays as it is.
    Refuse(&'static str),
    /// The answer settles nothing: the session keeps its status, the answer is noted, and the
    /// session is read again later.
    Unclear(&'static str),
}

pub fn decide(current: Status, current_provider_status: Option<&str>, p: &Proposal) -> Decision {
    if let Some(why) = p.unclear {
        return if current.is_final() || (why == NOT_FOUND && current == Status::Created) {
            // Nothing could move it anyway, or the provider simply has not seen the user yet.
            Decision::Unchanged
        } else {
            Decision::Unclear(why)
        };
    }
    let same = current == p.status && current_provider_status == p.provider_status.as_deref();
    if current.is_final() {
        return if current == p.status {
            Decision::Unchanged
        } else {
            Decision::Refuse("session is final")
        };
    }
    match p.source {
        Source::App | Source::Deadline => {
            if current.is_terminal() {
                Decision::Refuse("session is terminal")
            } else if same {
                Decision::Unchanged
            } else {
                Decision::Apply {
                    transition: current != p.status,
                    overturn: false,
                }
            }
        }
        Source::ProviderRead => {
            if same {
                Decision::Unchanged
            } else {
                let overturn = current.is_decision() && current != p.status;
                Decision::Apply {
                    transition: current != p.status,
                    overturn,
                }
            }
        }
        Source::Webhook => {
            if same {
                Decision::Unchanged
            } else if current.is_decision() {
                Decision::Refuse("a webhook cannot overturn a decision")
            } else if p.status.rank() < current.rank() {
                Decision::Refuse("a webhook cannot move a session backwards")
            } else if p.status == current {
                // Same status, new provider word (e.g. PROCESSING -> ON_HOLD): keep it.
                Decision::Apply {
                    transition: false,
                    overturn: false,
                }
            } else {
                Decision::Apply {
                    transition: true,
                    overturn: false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn p(status: Status, source: Source) -> Proposal {
        Proposal {
            status,
            provider_status: None,
            last_error: None,
            source,
            unclear: None,
        }
    }

    #[test]
    fn an_unclear_answer_never_moves_a_session() {
        for current in [Pending, Processing, Verified, Failed] {
            for why in [NOT_FOUND, UNKNOWN_STATUS] {
                let mut prop = p(Created, Source::ProviderRead);
                prop.unclear = Some(why);
                assert_eq!(
                    decide(current, None, &prop),
                    Decision::Unclear(why),
                    "{current:?}"
                );
            }
        }
        let mut prop = p(Created, Source::ProviderRead);
        prop.unclear = Some(NOT_FOUND);
        assert_eq!(decide(Created, None, &prop), Decision::Unchanged);
        assert_eq!(decide(Canceled, None, &prop), Decision::Unchanged);
    }

    #[test]
    fn final_states_never_move() {
        for s in [Expired, Canceled] {
            for to in [Created, Pending, Processing, Verified, Failed] {
                for src in [
                    Source::ProviderRead,
                    Source::Webhook,
                    Source::App,
                    Source::Deadline,
                ] {
                    assert!(
                        matches!(decide(s, None, &p(to, src)), Decision::Refuse(_)),
                        "{s:?}->{to:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn webhooks_never_move_backwards_or_overturn() {
        assert!(matches!(
            decide(Processing, None, &p(Pending, Source::Webhook)),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            decide(Verified, None, &p(Failed, Source::Webhook)),
            Decision::Refuse(_)
        ));
        assert_eq!(
            decide(Pending, None, &p(Processing, Source::Webhook)),
            Decision::Apply {
                transition: true,
                overturn: false
            }
        );
    }

    #[test]
    fn authoritative_reads_may_overturn_and_go_back() {
        assert_eq!(
            decide(Verified, None, &p(Failed, Source::ProviderRead)),
            Decision::Apply {
                transition: true,
                overturn: true
            }
        );
        assert_eq!(
            decide(Processing, None, &p(Pending, Source::ProviderRead)),
            Decision::Apply {
                transition: true,
                overturn: false
            }
        );
        assert_eq!(
            decide(Pending, None, &p(Pending, Source::ProviderRead)),
            Decision::Unchanged
        );
    }

    #[test]
    fn app_and_deadline_only_end_open_sessions() {
        assert!(matches!(
            decide(Verified, None, &p(Canceled, Source::App)),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            decide(Failed, None, &p(Expired, Source::Deadline)),
            Decision::Refuse(_)
        ));
        assert_eq!(
            decide(Pending, None, &p(Canceled, Source::App)),
            Decision::Apply {
                transition: true,
                overturn: false
            }
        );
    }

    #[test]
    fn a_new_provider_word_without_a_status_change_is_kept() {
        let prop = Proposal {
            status: Pending,
            provider_status: Some("INFO_REQUIRED".into()),
            last_error: None,
            source: Source::ProviderRead,
            unclear: None,
        };
        assert_eq!(
            decide(Pending, Some("UNVERIFIED"), &prop),
            Decision::Apply {
                transition: false,
                overturn: false
            }
        );
    }
}
