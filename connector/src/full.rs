//! The full sync: list everything, then delete what the listing did not see.

use crate::error::Error;
use crate::host::Host;
use crate::model::{SyncMode, SyncSummary};
use crate::run::{Listed, Run};

/// Lists the whole account. `sync_points` (the cursor read *before* the
/// listing, so changes made during it are replayed) are committed with the
/// last batch, and only if the listing was complete.
pub fn full<H: Host>(
    run: Run<'_, H>,
    sync_points: &[(&str, String)],
) -> Result<SyncSummary, Error> {
    debug_assert_eq!(run.mode(), SyncMode::Full);
    relist(run, sync_points)
}

/// Lists everything again and reconciles the known records with it.
pub fn relist<H: Host>(
    mut run: Run<'_, H>,
    sync_points: &[(&str, String)],
) -> Result<SyncSummary, Error> {
    if run.list("/")? == Listed::Gone {
        return Err(Error::Http(format!(
            "the user's files folder {} does not exist (HTTP 404); is the user id right?",
            run.dav.root.root_url()
        )));
    }
    let mut run = run.settle();
    if run.complete() {
        run.delete_unseen_under("/")?;
        run.all_verified();
    } else {
        run.log(
            crate::host::Level::Warn,
            "the listing had entries that could not be placed; nothing is deleted this run",
        );
    }
    run.finish(sync_points)
}
