//! Files an engagement record points at (recordings, transcripts, voicemails) as the media archive sees them.

use serde::{Deserialize, Serialize};

/// What kind of file an archived object is. Together with the item id it names the object (`media_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A voice or video recording (item: recording id).
    Recording,
    /// The transcript of a recording (item: recording id).
    RecordingTranscript,
    /// The transcript of a chat/SMS engagement (item: engagement id).
    MessagingTranscript,
    /// The transcript of an email engagement (item: engagement id).
    EmailTranscript,
    /// A voicemail (item: message id).
    Voicemail,
    /// The transcript of a voicemail (item: message id).
    VoicemailTranscript,
}

impl MediaKind {
    pub const ALL: [MediaKind; 6] = [
        MediaKind::Recording,
        MediaKind::RecordingTranscript,
        MediaKind::MessagingTranscript,
        MediaKind::EmailTranscript,
        MediaKind::Voicemail,
        MediaKind::VoicemailTranscript,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Recording => "recording",
            MediaKind::RecordingTranscript => "recording_transcript",
            MediaKind::MessagingTranscript => "messaging_transcript",
            MediaKind::EmailTranscript => "email_transcript",
            MediaKind::Voicemail => "voicemail",
            MediaKind::VoicemailTranscript => "voicemail_transcript",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }

    /// The retention class (`media.retention_days.*`).
    pub fn retention_class(self) -> RetentionClass {
        match self {
            MediaKind::Recording => RetentionClass::Recordings,
            MediaKind::Voicemail => RetentionClass::Voicemails,
            _ => RetentionClass::Transcripts,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionClass {
    Recordings,
    Transcripts,
    Voicemails,
}

/// `"{kind}:{item_id}"`: the archive's stable name for a file.
pub fn media_id(kind: MediaKind, item_id: &str) -> String {
    format!("{}:{item_id}", kind.as_str())
}

/// A file the record knows a download URL for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MediaSource {
    pub kind: MediaKind,
    pub item_id: String,
    pub engagement_id: String,
    /// Zoom's URL (needs the Bearer token).
    pub url: String,
    /// When the file was made (recording start, voicemail time, ...), epoch ms; dates the object key.
    pub item_time: i64,
    /// `voice` / `video` for recordings: the fallback file type when Zoom sends none.
    pub channel: Option<String>,
}

impl MediaSource {
    pub fn media_id(&self) -> String {
        media_id(self.kind, &self.item_id)
    }
}

/// The archive's state of one file, as shown in a record (`recordings[].media`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MediaView {
    /// `pending` (being fetched or waiting for Zoom), `archived`, `dead` (gave up; replayable) or `expired`
    /// (deleted by the retention policy).
    pub state: String,
    pub sha256: Option<String>,
    pub bytes: Option<i64>,
    pub content_type: Option<String>,
    /// A signed, expiring link to the archived copy (archived files only).
    pub link: Option<String>,
    pub link_expires_at: Option<String>,
    /// A durable link for systems of record: it does not expire, it redirects to a fresh short-lived link
    /// while the file is archived, answers 410 once retention deleted it, and can be revoked.
    #[serde(default)]
    pub permalink: Option<String>,
    pub archived_at: Option<String>,
    pub deleted_at: Option<String>,
    /// Failed attempts so far, and the last error (pending and dead files).
    pub attempts: i64,
    pub error: Option<String>,
}
