//! The object stores the archive tests run against: local disk always; the S3-compatible server and Azurite
//! that `scripts/test.sh` starts (`ZCC_TEST_S3_*`, `ZCC_TEST_AZURE_*`). With `ZCC_REQUIRE_OBJECT_STORES=1`
//! a missing one fails the test instead of being skipped.

use std::path::Path;

use zcc_bridge::config::{Config, Secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Local,
    S3,
    Azure,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Every store available here.
pub fn stores() -> Vec<Store> {
    let mut out = vec![Store::Local];
    let required = std::env::var("ZCC_REQUIRE_OBJECT_STORES").as_deref() == Ok("1");
    for (store, endpoint) in [
        (Store::S3, "ZCC_TEST_S3_ENDPOINT"),
        (Store::Azure, "ZCC_TEST_AZURE_ENDPOINT"),
    ] {
        if var(endpoint).is_some() {
            out.push(store);
        } else {
            assert!(
                !required,
                "ZCC_REQUIRE_OBJECT_STORES=1 but {endpoint} is not set"
            );
        }
    }
    out
}

/// Points `config` at `store`, under a fresh prefix (or `local_dir` for disk).
pub fn use_store(config: &mut Config, store: Store, local_dir: &Path) {
    let prefix = format!("t-{}", super::random_suffix());
    match store {
        Store::Local => config.storage.media = format!("file://{}", local_dir.display()),
        Store::S3 => {
            let bucket = var("ZCC_TEST_S3_BUCKET").unwrap_or_else(|| "zcc-test".into());
            config.storage.media = format!("s3://{bucket}/{prefix}");
            let s3 = &mut config.storage.s3;
            s3.endpoint = var("ZCC_TEST_S3_ENDPOINT");
            s3.region = Some("us-east-1".into());
            s3.access_key_id = Some("test".into());
            s3.secret_access_key = Some(Secret::new("test"));
            s3.allow_http = true;
        }
        Store::Azure => {
            let container = var("ZCC_TEST_AZURE_CONTAINER").unwrap_or_else(|| "zcc-test".into());
            config.storage.media = format!("az://{container}/{prefix}");
            let az = &mut config.storage.azure;
            az.account = var("ZCC_TEST_AZURE_ACCOUNT");
            az.access_key = var("ZCC_TEST_AZURE_KEY").map(Secret::new);
            az.endpoint = var("ZCC_TEST_AZURE_ENDPOINT");
            az.allow_http = true;
        }
    }
}
