//! Local fakes of CRM APIs, built from the vendors' documentation, for the sink tests.

pub mod hubspot;
pub mod salesforce;
pub mod zendesk;
