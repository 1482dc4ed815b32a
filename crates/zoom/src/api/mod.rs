//! ZCC REST client: Server-to-Server OAuth with a cached, single-flight token; client-side budgets per
//! rate-limit label; retries on 429 (both `Retry-After` forms), 5xx and network errors; Zoom's error codes
//! surfaced; pagination as a stream that restarts a window whose page token expired. File downloads
//! (recordings, voicemails, transcripts) stream with byte ranges ([`ZoomClient::download`]).

mod budget;
mod client;
mod download;
mod error;
pub mod models;

pub use budget::{Budget, RateLabel};
pub use client::{ClientConfig, ZoomClient};
pub use download::{Download, DownloadError};
pub use error::{
    ApiError, CODE_PRESENCE_NOT_PERMITTED, CODE_PRESENCE_UPDATE_FAILED, CODE_USER_NOT_FOUND,
};
pub use models::*;
