//! A resumable pre-order walk for streamed PROPFIND answers. The lock is only
//! held per chunk, so the walk keeps a cursor (last child name per level)
//! instead of iterators; a tree changed between chunks yields what a server
//! paging through its database would: each node at most once, in order.

use std::ops::Bound;
use std::sync::Arc;

use crate::encode::href_segment;
use crate::props::{Owner, Selection, write_response};
use crate::tree::Tree;

struct Frame {
    id: u64,
    href: String,
    after: Option<Arc<str>>,
    /// Depth of this folder's children below the start node.
    level: u32,
}

pub struct Walk {
    start: Option<(u64, String)>,
    stack: Vec<Frame>,
    /// `None` is Depth: infinity.
    max_depth: Option<u32>,
}

pub struct Render<'a> {
    pub sel: &'a Selection,
    pub owner: Owner<'a>,
    pub minimal: bool,
}

impl Walk {
    pub fn new(start: u64, href: String, max_depth: Option<u32>) -> Self {
        Walk {
            start: Some((start, href)),
            stack: Vec::new(),
            max_depth,
        }
    }

    /// Appends up to `budget` responses; true once the walk is complete.
    pub fn step(&mut self, tree: &Tree, out: &mut String, budget: usize, r: &Render) -> bool {
        let mut written = 0;
        if let Some((id, href)) = self.start.take() {
            let Some(node) = tree.node(id) else {
                return true;
            };
            write_response(out, &href, id, node, r.sel, &r.owner, r.minimal);
            written += 1;
            if node.is_folder() && self.max_depth != Some(0) {
                self.stack.push(Frame {
                    id,
                    href,
                    after: None,
                    level: 1,
                });
            }
        }
        while written < budget {
            let Some(top) = self.stack.last_mut() else {
                return true;
            };
            let children = tree
                .node(top.id)
                .filter(|n| n.parent.is_some() || top.id == tree.root)
                .and_then(|n| n.children());
            let Some(children) = children else {
                self.stack.pop();
                continue;
            };
            let next = match &top.after {
                None => children.iter().next(),
                Some(after) => children
                    .range::<str, _>((Bound::Excluded(&**after), Bound::Unbounded))
                    .next(),
            };
            let Some((name, &child_id)) = next else {
                self.stack.pop();
                continue;
            };
            top.after = Some(name.clone());
            let level = top.level;
            let mut href = top.href.clone();
            href_segment(&mut href, name);
            let child = tree.node(child_id).expect("children point at nodes");
            if child.is_folder() {
                href.push('/');
            }
            write_response(out, &href, child_id, child, r.sel, &r.owner, r.minimal);
            written += 1;
            if child.is_folder() && self.max_depth.is_none_or(|m| level < m) {
                self.stack.push(Frame {
                    id: child_id,
                    href,
                    after: None,
                    level: level + 1,
                });
            }
        }
        false
    }
}
