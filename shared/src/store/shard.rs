//! How the adapters spread their due and retry indexes: the flows only ask "due work of shard
//! `n` of `due_shards()`", and never say which shard holds what.

use crate::session::SessionId;

/// The due index (and the retry index of deliveries) is spread over this many partition keys, so
/// that it never becomes one hot partition however many sessions are open.
pub(super) const SHARDS: u16 = 16;

/// A session's due shard: a stable hash (FNV-1a) of its id, the same in every process and release.
pub(super) fn session_shard(id: &SessionId) -> u16 {
    fnv(id.as_str().bytes())
}

/// A delivery's retry shard (the same hash as sessions'), so that a burst of deliveries never
/// becomes one hot partition of the retry index either.
pub(super) fn delivery_shard(provider: &str, event_id: &str) -> u16 {
    fnv(provider.bytes().chain([b'#']).chain(event_id.bytes()))
}

/// An outbound delivery's retry shard.
pub(super) fn outbound_shard(k: &crate::events::OutboundKey) -> u16 {
    fnv(k
        .event_id
        .bytes()
        .chain([b'#'])
        .chain(k.endpoint_id.bytes()))
}

fn fnv(bytes: impl Iterator<Item = u8>) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % u32::from(SHARDS)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_across_releases() {
        // Stored keys hold these numbers: a change of the hash would strand what is filed.
        let a = SessionId::parse("ses_aaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        let b = SessionId::parse("ses_bbbbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
        assert_eq!((session_shard(&a), session_shard(&b)), (1, 7));
        assert_eq!(delivery_shard("prove", "e1"), 4);
    }
}
