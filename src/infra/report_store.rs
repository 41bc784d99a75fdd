//! Opening the store a [`ReportLocation`] names: a directory as it is, an S3 bucket through the
//! shared AWS configuration. The only place that knows both kinds.

use crate::infra::aws::{AwsOptions, S3Store};
use crate::report::location::ReportLocation;
use crate::report::store::{DirStore, Encryption, ReportStore};

/// A store and the key prefix inside it that the location names.
pub struct OpenStore {
    /// The store.
    pub store: Box<dyn ReportStore>,
    /// The prefix inside it (empty for a directory's root).
    pub prefix: String,
}

/// Opens `location`; `region` overrides the environment's for a bucket.
///
/// # Errors
/// The AWS configuration could not be loaded (one line, for the user).
pub async fn open(
    location: &ReportLocation,
    region: Option<&str>,
    encryption: Encryption,
) -> Result<OpenStore, String> {
    match location {
        ReportLocation::Dir(dir) => Ok(OpenStore {
            store: Box::new(DirStore::new(dir.clone())),
            prefix: String::new(),
        }),
        ReportLocation::S3 { bucket, prefix } => {
            let options = AwsOptions::for_region(region.map(str::to_owned));
            let store = S3Store::connect(&options, bucket, encryption)
                .await
                .map_err(|err| format!("{location}: cannot set up S3: {err}"))?;
            Ok(OpenStore {
                store: Box::new(store),
                prefix: prefix.clone(),
            })
        }
    }
}
