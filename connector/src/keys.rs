//! The sync points: the connector's state between runs, one key each in the
//! host's storage, committed with the records they cover.

/// The identity last sent to the sink (JSON), so incremental runs need no
/// identity request and the sink hears of it only when it changes.
pub const USER: &str = "user";
/// Unix seconds of the last complete full listing; none means the next run is full.
pub const LISTED_AT: &str = "listed_at";
/// Unix seconds of the last full listing or etag reconcile.
pub const RECONCILED_AT: &str = "reconciled_at";
/// The activity id every committed record is current to; empty when the
/// server has no Activity app.
pub const CURSOR: &str = "cursor";
/// The filter the records were selected by; another one needs a full listing.
pub const FILTER: &str = "filter";
/// The share grants (JSON) the records' permissions were computed from.
pub const SHARES: &str = "shares";
/// What the connector learned about the server (JSON, [`crate::server::Server`]).
pub const SERVER: &str = "server";
/// Folders (external ids, space-separated) whose etag was updated without
/// reading what is below them; the next reconcile descends into them
/// whatever their etag says, since a change the Activity app never
/// reported may hide there.
pub const UNVERIFIED: &str = "unverified";
/// Where the items an incremental run set out to refresh were known
/// when it began (JSON: file id → paths), committed before any of its
/// records. The Activity stream names only an item's new path, so once a
/// record at its new path is committed, the folders it left are found
/// nowhere else: a run that stops before refreshing them leaves this for
/// the next one. Cleared with the cursor.
pub const PRIOR_PATHS: &str = "prior_paths";
