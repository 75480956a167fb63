//! A resumable pre-order walk for streamed PROPFIND answers. The lock is only
//! held per chunk, so the walk keeps a cursor (last child name per level)
//! instead of iterators; a tree changed between chunks yields what a server
//! paging through its database would: each node at most once, in order.
//! The walk runs in one user's namespace, share mounts included.

use crate::encode::href_segment;
use crate::props::{Selection, write_response, write_unavailable};
use crate::sim::State;
use crate::view::{Ctx, Cursor, Seen, UserView};

struct Frame {
    id: u64,
    href: String,
    after: Cursor,
    /// Depth of this folder's children below the start node.
    level: u32,
    ctx: Ctx,
}

pub struct Walk {
    start: Option<(u64, String, Ctx)>,
    stack: Vec<Frame>,
    /// `None` is Depth: infinity.
    max_depth: Option<u32>,
}

pub struct Render<'a> {
    pub sel: &'a Selection,
    /// Whose namespace is walked (an index into the users).
    pub user: usize,
    pub minimal: bool,
}

impl Walk {
    pub fn new(start: u64, href: String, ctx: Ctx, max_depth: Option<u32>) -> Self {
        Walk {
            start: Some((start, href, ctx)),
            stack: Vec::new(),
            max_depth,
        }
    }

    /// Appends up to `budget` responses; true once the walk is complete.
    pub fn step(&mut self, st: &State, out: &mut String, budget: usize, r: &Render) -> bool {
        let view = UserView::new(st, r.user);
        let tree = view.tree();
        let mut written = 0;
        if let Some((id, href, ctx)) = self.start.take() {
            let Some(node) = tree.node(id) else {
                return true;
            };
            if !view.ctx_alive(ctx) {
                return true;
            }
            let nv = view.node_view(id, node, ctx, Seen::Named);
            write_response(out, &href, id, node, r.sel, &nv, r.minimal);
            written += 1;
            if node.is_folder() && self.max_depth != Some(0) {
                self.stack.push(Frame {
                    id,
                    href,
                    after: Cursor::Start,
                    level: 1,
                    ctx,
                });
            }
        }
        while written < budget {
            let Some(top) = self.stack.last_mut() else {
                return true;
            };
            let alive = view.ctx_alive(top.ctx)
                && tree
                    .node(top.id)
                    .is_some_and(|n| n.parent.is_some() || tree.is_home(top.id));
            let next = if alive {
                view.next_child(top.id, top.ctx, &top.after)
            } else {
                None
            };
            let Some((name, child_id, child_ctx)) = next else {
                self.stack.pop();
                continue;
            };
            top.after = Cursor::after(name.clone(), child_ctx);
            let level = top.level;
            let mut href = top.href.clone();
            href_segment(&mut href, &name);
            let child = tree.node(child_id).expect("children point at nodes");
            if child.is_folder() {
                href.push('/');
            }
            if st.unavailable.contains(&child_id) {
                // An unavailable storage: listed, unreadable, not descended into.
                write_unavailable(out, &href, r.sel);
                written += 1;
                continue;
            }
            let nv = view.node_view(child_id, child, child_ctx, Seen::Listed);
            write_response(out, &href, child_id, child, r.sel, &nv, r.minimal);
            written += 1;
            if child.is_folder() && self.max_depth.is_none_or(|m| level < m) {
                self.stack.push(Frame {
                    id: child_id,
                    href,
                    after: Cursor::Start,
                    level: level + 1,
                    ctx: child_ctx,
                });
            }
        }
        false
    }
}
