//! The routing table (the Python concept `yomo.zipper.router.TagRouter`): tag -> the
//! stream-function connections observing it, with wanted targets. Keyed by the zipper's
//! own connection number, so a reconnecting client never loses routes to a late close.
//! Go: core/router/router.go.

use std::{collections::HashMap, sync::Arc};

pub struct Router<T> {
    by_tag: HashMap<u32, Vec<(u64, Arc<T>)>>,
    targets: HashMap<u64, String>,
    tags: HashMap<u64, Vec<u32>>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router { by_tag: HashMap::new(), targets: HashMap::new(), tags: HashMap::new() }
    }
}

impl<T> Router<T> {
    pub fn add(&mut self, number: u64, tags: &[u32], wanted_target: &str, value: Arc<T>) {
        let mut unique: Vec<u32> = Vec::with_capacity(tags.len());
        for t in tags {
            if !unique.contains(t) {
                unique.push(*t);
            }
        }
        if !wanted_target.is_empty() {
            self.targets.insert(number, wanted_target.to_string());
        }
        for t in &unique {
            self.by_tag.entry(*t).or_default().push((number, value.clone()));
        }
        self.tags.insert(number, unique);
    }

    pub fn remove(&mut self, number: u64) {
        self.targets.remove(&number);
        for t in self.tags.remove(&number).unwrap_or_default() {
            if let Some(list) = self.by_tag.get_mut(&t) {
                list.retain(|(n, _)| *n != number);
                if list.is_empty() {
                    self.by_tag.remove(&t);
                }
            }
        }
    }

    /// Everything that should receive a frame with `tag` (and `target`, when set).
    pub fn route(&self, tag: u32, target: Option<&str>, out: &mut Vec<Arc<T>>) {
        let Some(list) = self.by_tag.get(&tag) else { return };
        match target {
            None | Some("") => out.extend(list.iter().map(|(_, v)| v.clone())),
            Some(t) => out.extend(
                list.iter().filter(|(n, _)| self.targets.get(n).map(String::as_str) == Some(t)).map(|(_, v)| v.clone()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_tag_and_target_and_forgets_on_remove() {
        let mut r: Router<u8> = Router::default();
        r.add(1, &[0x33, 0x33, 0x34], "", Arc::new(1));
        r.add(2, &[0x33], "alice", Arc::new(2));
        let mut out = vec![];
        r.route(0x33, None, &mut out);
        assert_eq!(out.iter().map(|v| **v).collect::<Vec<_>>(), vec![1, 2]);
        out.clear();
        r.route(0x33, Some("alice"), &mut out);
        assert_eq!(out.iter().map(|v| **v).collect::<Vec<_>>(), vec![2]);
        r.remove(1);
        out.clear();
        r.route(0x34, None, &mut out);
        assert!(out.is_empty());
    }
}
