//! The agent's workspace for one engagement (notes, tags, wrap-up checklist) and the rule that merges writes.
//!
//! Zoom's samples keep this state in the browser's `localStorage` and clear it at `end`
//! (reference §1.3); the bridge keeps it per (user, engagement) instead, so it survives engagement switches,
//! reloads and a second device, and becomes part of the engagement record when the engagement ends.
//!
//! The panel sends whole documents, each stamped with a [`Version`] (the device's clock, a random device id and a
//! per-device counter). The stored document is the write with the greatest `(version, content)`: applying the
//! same writes in any order, any number of times, gives the same document. A finalize (sent when the SDK reports
//! `state: "end"`) fixes the document: the greatest finalize wins whatever else arrived before or after it, and
//! later edits are refused. The bridge stores [`WorkspaceState`] and runs these functions in a transaction.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Limits on one write (the bridge answers 413/422 beyond them).
pub const MAX_NOTES_BYTES: usize = 64 * 1024;
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_BYTES: usize = 64;
pub const MAX_CHECKLIST_ITEMS: usize = 64;
pub const MAX_KEY_BYTES: usize = 64;

/// What the agent typed for one engagement.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Workspace {
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Checklist item id → ticked.
    #[serde(default)]
    pub checklist: BTreeMap<String, bool>,
}

/// When and where a write was made. Ordered by `client_ts`, then `device_id`, then `rev`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// The device's clock, epoch milliseconds (the panel keeps it strictly increasing).
    pub client_ts: i64,
    /// Random per browser profile (the panel keeps it in `localStorage`).
    pub device_id: String,
    /// Counter per device.
    pub rev: u64,
}

/// A `PUT .../workspace` or `POST .../finalize` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceWrite {
    #[serde(flatten)]
    pub workspace: Workspace,
    pub version: Version,
    /// Finalize only: the SDK's `endTime` (epoch ms), when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
}

/// What is stored per (user, engagement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceState {
    #[serde(flatten)]
    pub workspace: Workspace,
    pub version: Version,
    pub finalized: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It is now the stored document.
    Applied,
    /// The same write was already stored (a retry).
    Unchanged,
    /// A newer write is stored; this one changes nothing.
    Stale,
    /// The engagement was finalized; edits are refused (HTTP 409).
    Finalized,
}

/// Why a write is refused before it is looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    #[error("notes are {0} bytes, over the {MAX_NOTES_BYTES}-byte limit")]
    NotesTooLong(usize),
    #[error("more than {MAX_TAGS} tags, or a tag empty or over {MAX_TAG_BYTES} bytes")]
    BadTags,
    #[error("more than {MAX_CHECKLIST_ITEMS} checklist items, or an item id empty or over {MAX_KEY_BYTES} bytes")]
    BadChecklist,
    #[error("the version needs a positive client_ts and a device_id of 1-64 letters, digits, '-' or '_'")]
    BadVersion,
    #[error("an engagement id must be 1-128 printable ASCII characters without '/'")]
    BadEngagementId,
}

/// Engagement ids come from the SDK and go into URLs and storage keys: printable ASCII, no `/`, ≤ 128.
pub fn validate_engagement_id(id: &str) -> Result<(), WorkspaceError> {
    let ok =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    ok.then_some(()).ok_or(WorkspaceError::BadEngagementId)
}

impl WorkspaceWrite {
    pub fn validate(&self) -> Result<(), WorkspaceError> {
        let w = &self.workspace;
        if w.notes.len() > MAX_NOTES_BYTES {
            return Err(WorkspaceError::NotesTooLong(w.notes.len()));
        }
        if w.tags.len() > MAX_TAGS
            || w.tags
                .iter()
                .any(|t| t.trim().is_empty() || t.len() > MAX_TAG_BYTES)
        {
            return Err(WorkspaceError::BadTags);
        }
        if w.checklist.len() > MAX_CHECKLIST_ITEMS
            || w.checklist
                .keys()
                .any(|k| k.is_empty() || k.len() > MAX_KEY_BYTES)
        {
            return Err(WorkspaceError::BadChecklist);
        }
        let v = &self.version;
        let device_ok = !v.device_id.is_empty()
            && v.device_id.len() <= 64
            && v.device_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if v.client_ts <= 0 || !device_ok {
            return Err(WorkspaceError::BadVersion);
        }
        Ok(())
    }

    fn key(&self) -> (&Version, &Workspace, Option<i64>) {
        (&self.version, &self.workspace, self.end_time)
    }

    fn into_state(self, finalized: bool) -> WorkspaceState {
        WorkspaceState {
            workspace: self.workspace,
            version: self.version,
            finalized,
            end_time: if finalized { self.end_time } else { None },
        }
    }
}

impl WorkspaceState {
    fn key(&self) -> (&Version, &Workspace, Option<i64>) {
        (&self.version, &self.workspace, self.end_time)
    }
}

/// Applies an edit. Returns the state to store and what happened.
pub fn apply_write(
    stored: Option<WorkspaceState>,
    mut write: WorkspaceWrite,
) -> (WorkspaceState, Outcome) {
    // Only a finalize carries an end time.
    write.end_time = None;
    let Some(stored) = stored else {
        return (write.into_state(false), Outcome::Applied);
    };
    match write.key().cmp(&stored.key()) {
        std::cmp::Ordering::Equal => (stored, Outcome::Unchanged),
        std::cmp::Ordering::Less => (stored, Outcome::Stale),
        std::cmp::Ordering::Greater if stored.finalized => (stored, Outcome::Finalized),
        std::cmp::Ordering::Greater => (write.into_state(false), Outcome::Applied),
    }
}

/// Applies a finalize: the first one replaces whatever edit is stored; among finalizes the greatest wins.
pub fn apply_finalize(
    stored: Option<WorkspaceState>,
    write: WorkspaceWrite,
) -> (WorkspaceState, Outcome) {
    match stored {
        Some(stored) if stored.finalized => match write.key().cmp(&stored.key()) {
            std::cmp::Ordering::Equal => (stored, Outcome::Unchanged),
            std::cmp::Ordering::Less => (stored, Outcome::Stale),
            std::cmp::Ordering::Greater => (write.into_state(true), Outcome::Applied),
        },
        _ => (write.into_state(true), Outcome::Applied),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write(ts: i64, device: &str, rev: u64, notes: &str) -> WorkspaceWrite {
        WorkspaceWrite {
            workspace: Workspace {
                notes: notes.into(),
                ..Default::default()
            },
            version: Version {
                client_ts: ts,
                device_id: device.into(),
                rev,
            },
            end_time: None,
        }
    }

    #[test]
    fn newest_wins_and_retries_change_nothing() {
        let (s, o) = apply_write(None, write(10, "a", 1, "one"));
        assert_eq!(o, Outcome::Applied);
        let (s, o) = apply_write(Some(s), write(20, "a", 2, "two"));
        assert_eq!(o, Outcome::Applied);
        let (s, o) = apply_write(Some(s), write(10, "a", 1, "one"));
        assert_eq!(o, Outcome::Stale);
        let (s, o) = apply_write(Some(s), write(20, "a", 2, "two"));
        assert_eq!(o, Outcome::Unchanged);
        assert_eq!(s.workspace.notes, "two");
    }

    #[test]
    fn finalize_fixes_the_document() {
        let (s, _) = apply_write(None, write(30, "a", 3, "typed late on another device"));
        let mut fin = write(20, "b", 2, "final");
        fin.end_time = Some(99);
        let (s, o) = apply_finalize(Some(s), fin.clone());
        assert_eq!(o, Outcome::Applied);
        assert!(s.finalized);
        assert_eq!(s.workspace.notes, "final");
        assert_eq!(s.end_time, Some(99));
        let (s, o) = apply_write(Some(s), write(40, "a", 4, "after the end"));
        assert_eq!(o, Outcome::Finalized);
        let (s, o) = apply_finalize(Some(s), fin);
        assert_eq!(o, Outcome::Unchanged);
        assert_eq!(s.workspace.notes, "final");
    }

    #[test]
    fn validation() {
        assert!(write(1, "dev-1_A", 0, "x").validate().is_ok());
        assert_eq!(
            write(0, "d", 0, "x").validate(),
            Err(WorkspaceError::BadVersion)
        );
        assert_eq!(
            write(1, "d e", 0, "x").validate(),
            Err(WorkspaceError::BadVersion)
        );
        assert!(matches!(
            write(1, "d", 0, &"x".repeat(MAX_NOTES_BYTES + 1)).validate(),
            Err(WorkspaceError::NotesTooLong(_))
        ));
        let mut w = write(1, "d", 0, "");
        w.workspace.tags = vec![" ".into()];
        assert_eq!(w.validate(), Err(WorkspaceError::BadTags));
        assert!(validate_engagement_id("W_VATTk_Q5aW6z5rZtBxAQ").is_ok());
        assert!(validate_engagement_id("a/b").is_err());
        assert!(validate_engagement_id("").is_err());
        assert!(validate_engagement_id("a b").is_err());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(WorkspaceWrite),
        Finalize(WorkspaceWrite),
    }

    fn op() -> impl Strategy<Value = Op> {
        (
            any::<bool>(),
            1i64..6,
            prop::sample::select(vec!["a", "b"]),
            0u64..3,
            prop::sample::select(vec!["", "x", "y"]),
            prop::option::of(0i64..3),
        )
            .prop_map(|(fin, ts, dev, rev, notes, end)| {
                let mut w = write(ts, dev, rev, notes);
                if fin {
                    w.end_time = end;
                    Op::Finalize(w)
                } else {
                    Op::Write(w)
                }
            })
    }

    fn run(ops: &[Op]) -> Option<WorkspaceState> {
        ops.iter().fold(None, |s, op| {
            Some(match op {
                Op::Write(w) => apply_write(s, w.clone()).0,
                Op::Finalize(w) => apply_finalize(s, w.clone()).0,
            })
        })
    }

    proptest! {
        #[test]
        fn any_order_any_repetition_same_state(
            ops in prop::collection::vec(op(), 1..12),
            seed in any::<u64>(),
        ) {
            let expected = run(&ops);
            // A permutation with some ops repeated.
            let mut shuffled: Vec<Op> = ops.iter().chain(ops.iter().take((seed % 4) as usize)).cloned().collect();
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (state >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(run(&shuffled), expected);
        }
    }
}
