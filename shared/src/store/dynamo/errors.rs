//! SDK errors as the port's: a lost condition is `Conflict`, everything else `Unavailable` (a
//! retryable 503 for the caller).

use super::super::StoreError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

pub(super) fn is_condition_failure<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    matches!(e.code(), Some("ConditionalCheckFailedException"))
}

/// Maps an SDK error of a write: a lost condition or a transaction conflict is `Conflict`,
/// everything else is `Unavailable`.
pub(super) fn write_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E>,
) -> StoreError {
    if is_condition_failure(&e) {
        return StoreError::Conflict;
    }
    if e.code() == Some("TransactionCanceledException") {
        // "Transaction cancelled, please refer cancellation reasons for specific reasons
        // [ConditionalCheckFailed, None]": conflicts show in the message's reason list.
        let msg = e.message().unwrap_or_default();
        if msg.contains("ConditionalCheckFailed") || msg.contains("TransactionConflict") {
            return StoreError::Conflict;
        }
    }
    read_error(e)
}

pub(super) fn read_error<E: std::error::Error + Send + Sync + 'static>(
    e: SdkError<E>,
) -> StoreError {
    StoreError::Unavailable(format!("{}", DisplayErrorContext(e)))
}
