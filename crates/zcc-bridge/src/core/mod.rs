//! The vendor-neutral core: what an engagement observation is, and the engagement record built from them.

pub mod activity;
pub mod canonical;
pub mod media;
pub mod observation;
pub mod presence;
pub mod record;
pub mod time;

pub use media::{MediaKind, MediaSource, MediaView};
pub use observation::{EventSource, Observation};
pub use record::{EngagementRecord, EngagementState};
