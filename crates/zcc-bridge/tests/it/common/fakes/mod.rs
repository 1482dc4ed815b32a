//! Local fakes of vendor APIs, built from the vendors' documentation: CRMs for the sink tests, bot engines for the
//! chat tests.

pub mod bots;
pub mod hubspot;
pub mod salesforce;
pub mod zendesk;
