//! The etag reconcile, the desktop client's method: compare the root's etag
//! with the known one and descend with `Depth: 1` only into folders whose
//! etag changed, finding adds, removals and moves by file id. It catches
//! what the Activity app never reports (external storage, group folders,
//! server-side scans) and costs two requests when nothing changed.

use std::collections::{HashMap, VecDeque};

use crate::error::Error;
use crate::host::Host;
use crate::model::{Record, SyncSummary};
use crate::run::{Listed, Run, WAVE};

/// Known children read per page.
const PAGE: u32 = 1000;

/// `regrant`: roots whose shares changed since the last run.
pub fn reconcile<H: Host>(
    mut run: Run<'_, H>,
    regrant: &[String],
    sync_points: &[(&str, String)],
) -> Result<SyncSummary, Error> {
    let host = run.host();
    let Some(root) = run.fetch(&["/".to_string()])?.pop().flatten() else {
        return Err(Error::Http(format!(
            "the user's files folder {} does not exist (HTTP 404)",
            run.dav.root.root_url()
        )));
    };
    let known_root = host
        .lookup(std::slice::from_ref(&root.external_id))
        .pop()
        .flatten();
    if known_root.as_ref() == Some(&root) && !run.any_unverified() {
        run.regrant(regrant)?;
        return run.finish(sync_points);
    }
    run.mark_unverified(&root.external_id);
    run.take(root.clone())?;
    let mut queue = VecDeque::from([root]);
    // Known children no listing showed where they were: moved or deleted.
    let mut vanished: Vec<Record> = Vec::new();
    while !queue.is_empty() {
        let wave: Vec<Record> = queue.drain(..queue.len().min(WAVE)).collect();
        let paths: Vec<String> = wave.iter().map(|f| f.path.clone()).collect();
        let listings = run.fetch_children(&paths)?;
        for (folder, listing) in wave.into_iter().zip(listings) {
            // Gone since its parent was listed: the next reconcile sees it from there.
            let Some(children) = listing else { continue };
            let mut known: HashMap<String, Record> = known_children(host, &folder.external_id)
                .into_iter()
                .map(|r| (r.external_id.clone(), r))
                .collect();
            for child in children {
                let was = match known.remove(&child.external_id) {
                    Some(k) => Some(k),
                    None => host
                        .lookup(std::slice::from_ref(&child.external_id))
                        .pop()
                        .flatten(),
                };
                match was {
                    // A folder moved or renamed keeps its etag, but every path below it changed.
                    Some(k) if child.is_folder && k.path != child.path => {
                        let path = child.path.clone();
                        run.mark_unverified(&child.external_id);
                        if run.list(&path)? == Listed::Complete {
                            run.delete_unseen_under(&path)?;
                            run.delete_unseen_under(&k.path)?;
                        }
                    }
                    // Same etag, and no run updated it without reading below: nothing there changed.
                    Some(k)
                        if child.is_folder
                            && k.etag == child.etag
                            && !run.is_unverified(&k.external_id) =>
                    {
                        run.take(child)?;
                    }
                    // A new folder: all of it is new, one request lists it.
                    None if child.is_folder => {
                        let path = child.path.clone();
                        run.mark_unverified(&child.external_id);
                        run.list(&path)?;
                    }
                    _ => {
                        let descend = child.is_folder;
                        if descend {
                            run.mark_unverified(&child.external_id);
                        }
                        if run.take(child.clone())? && descend {
                            queue.push_back(child);
                        }
                    }
                }
            }
            vanished.extend(known.into_values());
        }
    }
    for gone in vanished {
        if !run.has_seen(&gone.external_id) {
            run.delete(&gone)?;
        } else if gone.is_folder {
            // Moved and listed where it is now: what stayed known at the old place is gone.
            run.delete_unseen_under(&gone.path)?;
        }
    }
    run.regrant(regrant)?;
    let mut run = run.settle();
    run.all_verified();
    run.finish(sync_points)
}

fn known_children<H: Host>(host: &H, parent: &str) -> Vec<Record> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = host.children(parent, after.as_deref(), PAGE);
        let full = page.len() == PAGE as usize;
        after = page.last().map(|r| r.path.clone());
        all.extend(page);
        if !full {
            return all;
        }
    }
}
