//! The URLs Zoom hands out for files, formed exactly as Zoom forms them from the REST base (`api_base`, e.g.
//! `https://api.zoom.us/v2`; no trailing slash). Each needs `Authorization: Bearer` to fetch (reference §1.5, §1.6,
//! §1.9). The simulator's REST view and its webhooks build every URL here, and its server serves every one of them.
//!
//! Sources: recordings and inbox (voicemail) files as reference §1.5/§1.6 give them; the voicemail transcript as
//! Zoom's `contact_center.voicemail_transcript_completed` example gives it (`/voicemail/transcripts/download/{id}
//! ?type=voice`; reference §1.6's REST example spells it `/inbox/message/transcripts/download/{id}`, which the server
//! serves too); the messaging transcript as reference §1.1/§1.9; the e-mail transcript as Zoom's
//! `contact_center.engagement_email_transcript_completed` example gives it (the e-mail messages API of the
//! engagement, not a file).

/// `?type=` of a recording's URLs: `voice` or `video` (the recording's channel).
fn media_type(channel: &str) -> &'static str {
    if channel == "video" {
        "video"
    } else {
        "voice"
    }
}

/// `{api_base}/contact_center/recording/download/{id}?type={voice|video}`.
pub fn recording_download(api_base: &str, recording_id: &str, channel: &str) -> String {
    format!(
        "{api_base}/contact_center/recording/download/{recording_id}?type={}",
        media_type(channel)
    )
}

/// `{api_base}/contact_center/recording/playback/{id}?type={voice|video}`.
pub fn recording_playback(api_base: &str, recording_id: &str, channel: &str) -> String {
    format!(
        "{api_base}/contact_center/recording/playback/{recording_id}?type={}",
        media_type(channel)
    )
}

/// `{api_base}/contact_center/recording/transcripts/download/{id}?type={voice|video}`.
pub fn recording_transcript(api_base: &str, recording_id: &str, channel: &str) -> String {
    format!(
        "{api_base}/contact_center/recording/transcripts/download/{recording_id}?type={}",
        media_type(channel)
    )
}

/// `{api_base}/contact_center/inbox/message/download/{id}?type=voicemail`.
pub fn voicemail_download(api_base: &str, message_id: &str) -> String {
    format!("{api_base}/contact_center/inbox/message/download/{message_id}?type=voicemail")
}

/// `{api_base}/contact_center/inbox/message/playback/{id}?type=voicemail`.
pub fn voicemail_playback(api_base: &str, message_id: &str) -> String {
    format!("{api_base}/contact_center/inbox/message/playback/{message_id}?type=voicemail")
}

/// `{api_base}/contact_center/voicemail/transcripts/download/{id}?type=voice`.
pub fn voicemail_transcript(api_base: &str, message_id: &str) -> String {
    format!("{api_base}/contact_center/voicemail/transcripts/download/{message_id}?type=voice")
}

/// `{api_base}/contact_center/engagements/transcripts/download/{engagement_id}` (messaging engagements).
pub fn engagement_transcript(api_base: &str, engagement_id: &str) -> String {
    format!("{api_base}/contact_center/engagements/transcripts/download/{engagement_id}")
}

/// `{api_base}/contact_center/email/messages?engagement_id={id}&direction=forward&page_size=30` (e-mail
/// engagements: their messages, as JSON).
pub fn email_transcript(api_base: &str, engagement_id: &str) -> String {
    format!(
        "{api_base}/contact_center/email/messages?engagement_id={engagement_id}&direction=forward&page_size=30"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_have_zooms_shapes() {
        let base = "https://api.zoom.us/v2";
        assert_eq!(
            recording_download(base, "r1", "voice"),
            "https://api.zoom.us/v2/contact_center/recording/download/r1?type=voice"
        );
        assert_eq!(
            recording_playback(base, "r1", "video"),
            "https://api.zoom.us/v2/contact_center/recording/playback/r1?type=video"
        );
        assert_eq!(
            recording_transcript(base, "r1", "voice"),
            "https://api.zoom.us/v2/contact_center/recording/transcripts/download/r1?type=voice"
        );
        assert_eq!(
            voicemail_download(base, "m1"),
            "https://api.zoom.us/v2/contact_center/inbox/message/download/m1?type=voicemail"
        );
        assert_eq!(
            voicemail_playback(base, "m1"),
            "https://api.zoom.us/v2/contact_center/inbox/message/playback/m1?type=voicemail"
        );
        assert_eq!(
            voicemail_transcript(base, "m1"),
            "https://api.zoom.us/v2/contact_center/voicemail/transcripts/download/m1?type=voice"
        );
        assert_eq!(
            engagement_transcript(base, "e1"),
            "https://api.zoom.us/v2/contact_center/engagements/transcripts/download/e1"
        );
        assert_eq!(
            email_transcript(base, "e1"),
            "https://api.zoom.us/v2/contact_center/email/messages?engagement_id=e1&direction=forward&page_size=30"
        );
    }
}
