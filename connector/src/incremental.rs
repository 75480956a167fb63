//! The incremental sync: the Activity stream names what changed since the
//! cursor; WebDAV says what it is now.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::activity::{self, Changed};
use crate::body::read_body;
use crate::error::Error;
use crate::full;
use crate::host::{Host, Level, Request, Response};
use crate::href::parent_of;
use crate::keys;
use crate::model::{Record, SyncSummary};
use crate::ocs;
use crate::run::{Listed, Run};
use crate::search::{self, Found};

/// The server caps `limit` at 200 raw rows.
const PAGE_ROWS: u32 = 200;
/// Largest activity page read: 200 rows of a few KiB.
const PAGE_BODY: usize = 8 * 1024 * 1024;
/// Past this many changed items, one listing of the account (a few requests,
/// however large the tree) is cheaper than looking each item and its
/// ancestors up (about four requests an item, paced by the rate limit).
pub const RELIST_ABOVE: usize = 1000;

pub enum Outcome {
    Synced(SyncSummary),
    /// The stream cannot say what changed; an etag reconcile must.
    Gap(String),
}

/// The page of the activity stream after activity `since`, oldest first.
pub fn page_request(base_url: &str, since: u64) -> Request {
    ocs::get(
        base_url,
        ocs::ACTIVITY,
        &format!("sort=asc&limit={PAGE_ROWS}&since={since}"),
    )
}

/// Reads every page since `cursor`, the first being `first` (sent with the
/// run's other first reads); `Err(Gap)` when the stream cannot be trusted.
fn read_stream<H: Host>(
    host: &H,
    base_url: &str,
    cursor: u64,
    first: Response<H::Body>,
) -> Result<Result<Changed, String>, Error> {
    let mut changed = Changed {
        last_id: cursor,
        ..Changed::default()
    };
    let mut since = cursor;
    let mut response = first;
    loop {
        match response.status {
            // Nothing (more) since the cursor.
            304 | 204 => break,
            200 => {}
            404 => return Ok(Err("the Activity app is not available".into())),
            403 => return Ok(Err(format!("the server does not accept cursor {cursor}"))),
            status => return Err(Error::status("reading the activity stream", status)),
        }
        if cursor != 0 && response.header("X-Activity-First-Known").is_some() {
            return Ok(Err(format!(
                "activity {cursor} has expired or is unknown to the server"
            )));
        }
        let last_given = response.header("X-Activity-Last-Given").map(str::to_string);
        let link = response.header("Link").map(str::to_string);
        let body = read_body(response.body, PAGE_BODY)?;
        let page = activity::parse_page(&body).map_err(|e| Error::Protocol(e.to_string()))?;
        changed
            .add(&page)
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let next = activity::next_since(last_given.as_deref(), link.as_deref());
        if let Some(next) = next {
            changed.last_id = changed.last_id.max(next);
        }
        if !activity::has_next(link.as_deref()) {
            break;
        }
        match next {
            Some(next) if next > since => since = next,
            _ => {
                return Err(Error::Protocol(format!(
                    "the activity stream announced another page but did not move past {since}"
                )));
            }
        }
        response = host.send(page_request(base_url, since))?;
    }
    Ok(Ok(changed))
}

/// `regrant` are the roots whose shares changed since the last run
/// (see [`crate::access::changed_roots`]); `shares` is the share list to
/// store with the cursor.
pub fn incremental<H: Host>(
    mut run: Run<'_, H>,
    base_url: &str,
    cursor: u64,
    first_page: Response<H::Body>,
    regrant: &[String],
    shares: (&'static str, String),
) -> Result<Outcome, Error> {
    let changed = match read_stream(run.host(), base_url, cursor, first_page)? {
        Ok(changed) => changed,
        Err(gap) => return Ok(Outcome::Gap(gap)),
    };
    let points = [
        (keys::CURSOR, changed.last_id.to_string()),
        shares,
        (keys::PRIOR_PATHS, String::new()),
    ];
    if changed.items.is_empty() {
        if changed.last_id == cursor && regrant.is_empty() {
            // Nothing happened: no commit, no further request.
            return run.finish(&[]).map(Outcome::Synced);
        }
        run.regrant(regrant)?;
        return run.finish(&points).map(Outcome::Synced);
    }
    run.log(
        Level::Info,
        &format!(
            "{} items changed since activity {cursor}",
            changed.items.len()
        ),
    );
    if changed.items.len() > RELIST_ABOVE {
        run.log(
            Level::Info,
            "listing the whole account: fewer requests than looking each change up",
        );
        return full::relist(run, &points).map(Outcome::Synced);
    }
    let found = match locate(&mut run, base_url, &changed)? {
        Ok(found) => found,
        Err(gap) => return Ok(Outcome::Gap(gap)),
    };
    let records = with_ancestors(&mut run, &changed, &found)?;
    refresh(&mut run, &found.prior, records)?;
    for id in &found.gone {
        if let Some(k) = found.known.get(id) {
            run.delete(k)?;
        }
    }
    run.regrant(regrant)?;
    run.finish(&points).map(Outcome::Synced)
}

/// Where the changed items are now.
struct Located {
    /// Each item's known record, before this run.
    known: HashMap<u64, Record>,
    /// Where each item was known, this run and unfinished earlier ones.
    prior: PriorPaths,
    /// Live items as they are now.
    current: Vec<Record>,
    /// Items that no longer exist for this user.
    gone: Vec<u64>,
}

/// Reads each changed item where the stream last saw it, and finds by file
/// id the ones that moved on since; `Err` when they cannot be found.
fn locate<H: Host>(
    run: &mut Run<'_, H>,
    base_url: &str,
    changed: &Changed,
) -> Result<Result<Located, String>, Error> {
    let host = run.host();
    let ids: Vec<String> = changed.items.keys().map(u64::to_string).collect();
    let known: HashMap<u64, Record> = changed
        .items
        .keys()
        .copied()
        .zip(host.lookup(&ids))
        .filter_map(|(id, r)| r.map(|r| (id, r)))
        .collect();
    // Staged before any record, so every commit of this run carries it.
    let prior = PriorPaths::load(host).with_known(&known);
    host.set(keys::PRIOR_PATHS, &prior.to_json()?);

    // Where each live item is now: at its newest path, else wherever its id is.
    let live: Vec<(u64, String)> = changed
        .items
        .iter()
        .filter(|(_, item)| !item.deleted)
        .map(|(id, item)| (*id, item.path.clone()))
        .collect();
    let paths: Vec<String> = live.iter().map(|(_, p)| p.clone()).collect();
    let mut current: Vec<Record> = Vec::new();
    let mut missing: Vec<u64> = Vec::new();
    for ((id, _), record) in live.iter().zip(run.fetch(&paths)?) {
        match record {
            Some(r) if r.external_id == id.to_string() => current.push(r),
            _ => missing.push(*id),
        }
    }
    let mut gone: Vec<u64> = changed
        .items
        .iter()
        .filter(|(_, item)| item.deleted)
        .map(|(id, _)| *id)
        .collect();
    if !missing.is_empty() {
        let user_id = run.dav.who.user_id.clone();
        match search::by_file_ids(run, base_url, &user_id, &missing)? {
            Found::Paths(found) => {
                for id in &missing {
                    if !found.iter().any(|(f, _)| f == id) {
                        gone.push(*id);
                    }
                }
                let paths: Vec<String> = found.iter().map(|(_, p)| p.clone()).collect();
                for ((id, path), record) in found.iter().zip(run.fetch(&paths)?) {
                    match record {
                        Some(r) if r.external_id == id.to_string() => current.push(r),
                        // Moved again since the search: the next run finds it.
                        _ => {
                            run.log(
                                Level::Warn,
                                &format!("{path} moved again while it was read"),
                            );
                            run.complete = false;
                        }
                    }
                }
            }
            Found::Unsupported(status) => {
                return Ok(Err(format!(
                    "moved items cannot be found: the server refuses SEARCH ({status})"
                )));
            }
        }
    }
    Ok(Ok(Located {
        known,
        prior,
        current,
        gone,
    }))
}

/// The changed items and every folder above one, old or new path (each has
/// a new etag, size and mtime), parents first; `true` marks a changed item.
fn with_ancestors<H: Host>(
    run: &mut Run<'_, H>,
    changed: &Changed,
    found: &Located,
) -> Result<Vec<(Record, bool)>, Error> {
    let here: BTreeSet<&str> = found.current.iter().map(|r| r.path.as_str()).collect();
    let mut ancestors: BTreeSet<String> = BTreeSet::new();
    let passed = changed.paths.iter().map(String::as_str);
    for path in found
        .current
        .iter()
        .map(|r| r.path.as_str())
        .chain(found.prior.all())
        .chain(passed)
    {
        let mut p = path;
        while let Some(parent) = parent_of(p) {
            if !here.contains(parent) {
                ancestors.insert(parent.to_string());
            }
            p = parent;
        }
    }
    let ancestors: Vec<String> = ancestors.into_iter().collect();
    let mut records: Vec<(Record, bool)> = run
        .fetch(&ancestors)?
        .into_iter()
        .flatten()
        .map(|r| (r, false))
        .collect();
    for r in &found.current {
        run.reserve(r, found.prior.of(&r.external_id));
    }
    records.extend(found.current.iter().cloned().map(|r| (r, true)));
    records.sort_by(|(a, _), (b, _)| {
        depth(&a.path)
            .cmp(&depth(&b.path))
            .then_with(|| a.path.cmp(&b.path))
    });
    Ok(records)
}

/// Takes each record; relists a changed folder as a subtree (one activity
/// covers a created, moved or restored folder, none of its children), and
/// deletes what is known where it was and was not listed where it is.
fn refresh<H: Host>(
    run: &mut Run<'_, H>,
    prior: &PriorPaths,
    records: Vec<(Record, bool)>,
) -> Result<(), Error> {
    for (record, changed_item) in records {
        // Where a changed folder was known: what is known there and was not
        // listed where it is now is gone.
        let known_paths: Vec<String> = if record.is_folder && changed_item {
            prior.of(&record.external_id).map(str::to_string).collect()
        } else {
            Vec::new()
        };
        let old_paths = known_paths.iter().filter(|old| **old != record.path);
        if run.has_seen(&record.external_id) {
            // A changed folder listed with a changed folder above it.
            for old in old_paths {
                run.release(old);
                run.delete_unseen_under(old)?;
            }
            continue;
        }
        if record.is_folder {
            // Its new etag may also cover changes no activity reported.
            run.mark_unverified(&record.external_id);
        }
        if record.is_folder && changed_item {
            let path = record.path.clone();
            for known in &known_paths {
                run.release(known);
            }
            match run.list(&path)? {
                Listed::Complete => {
                    run.delete_unseen_under(&path)?;
                    for old in old_paths {
                        run.delete_unseen_under(old)?;
                    }
                }
                Listed::Gone => {
                    run.log(
                        Level::Warn,
                        &format!("{path} moved again while it was read"),
                    );
                    run.complete = false;
                }
            }
        } else {
            run.take(record)?;
        }
    }
    Ok(())
}

/// See [`keys::PRIOR_PATHS`]: file id → every path the item was known at
/// when this run, or an earlier one that did not reach its cursor, began.
#[derive(Debug, Default)]
struct PriorPaths(BTreeMap<u64, BTreeSet<String>>);

impl PriorPaths {
    /// What an unfinished earlier run left; unreadable state is no excuse
    /// to stop, but the folders it named may stay stale until a reconcile.
    fn load<H: Host>(host: &H) -> PriorPaths {
        let stored = host.get(keys::PRIOR_PATHS).filter(|v| !v.is_empty());
        match stored.map(|json| serde_json::from_str(&json)) {
            None => PriorPaths::default(),
            Some(Ok(map)) => PriorPaths(map),
            Some(Err(e)) => {
                host.log(
                    Level::Warn,
                    &format!("ignoring unreadable state {}: {e}", keys::PRIOR_PATHS),
                );
                PriorPaths::default()
            }
        }
    }

    fn with_known(mut self, known: &HashMap<u64, Record>) -> PriorPaths {
        for (id, record) in known {
            self.0.entry(*id).or_default().insert(record.path.clone());
        }
        self
    }

    fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(&self.0).map_err(|e| Error::Storage(e.to_string()))
    }

    fn of(&self, external_id: &str) -> impl Iterator<Item = &str> {
        external_id
            .parse::<u64>()
            .ok()
            .and_then(|id| self.0.get(&id))
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    fn all(&self) -> impl Iterator<Item = &str> {
        self.0.values().flatten().map(String::as_str)
    }
}

fn depth(path: &str) -> usize {
    if path == "/" {
        0
    } else {
        path.matches('/').count()
    }
}
