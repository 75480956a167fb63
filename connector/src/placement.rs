//! Records reach the sink parents first: a record waits until the folder
//! it is in is placed, and is then sent with that folder's id as its parent.

use std::collections::HashMap;

use crate::error::Error;
use crate::href::parent_of;
use crate::marks::file_id;
use crate::model::Record;
use crate::path_cache::PathCache;

#[derive(Default)]
pub struct Placer {
    folders: PathCache,
    /// Records whose folder has not been placed yet, by that folder's path.
    orphans: HashMap<String, Vec<Record>>,
}

impl Placer {
    /// Hands `record` to `send` once its folder is placed, then every record
    /// that waited for it, in the order they came.
    pub fn place(
        &mut self,
        record: Record,
        mut send: impl FnMut(Record) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut ready = vec![record];
        while let Some(mut record) = ready.pop() {
            if let Some(parent) = parent_of(&record.path) {
                match self.folders.get(parent) {
                    Some(id) => record.parent_external_id = Some(id.to_string()),
                    None => {
                        self.orphans
                            .entry(parent.to_string())
                            .or_default()
                            .push(record);
                        continue;
                    }
                }
            }
            if record.is_folder {
                self.folders
                    .insert(&record.path, file_id(&record.external_id));
                if let Some(waiting) = self.orphans.remove(&record.path) {
                    // Reversed so that `pop` keeps the server's order.
                    ready.extend(waiting.into_iter().rev());
                }
            }
            send(record)?;
        }
        Ok(())
    }

    /// A folder known from before this run, where records may be placed.
    pub fn know_folder(&mut self, path: &str, external_id: &str) {
        self.folders.insert_if_absent(path, file_id(external_id));
    }

    /// The records whose folder never came, with that folder's path.
    pub fn give_up(&mut self) -> impl Iterator<Item = (String, Record)> {
        std::mem::take(&mut self.orphans)
            .into_iter()
            .flat_map(|(parent, records)| records.into_iter().map(move |r| (parent.clone(), r)))
    }
}
