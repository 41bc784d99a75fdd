//! The report store on S3: `put_object` with server-side encryption, `get_object` and a bounded
//! `list_objects_v2`, behind [`ReportStore`] so the report code names no SDK type.
//!
//! Every call the store makes is listed in [`S3_ACTIONS`]; a unit test checks the list against
//! this file and against `deploy/aws/report-store-policy.json`, the IAM snippet operators attach
//! to the runner's role.

use async_trait::async_trait;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::config::{AwsOptions, load_sdk};
use super::error::AwsError;
use crate::report::store::{Encryption, MAX_LIST_KEYS, ReportStore, StoreError};

/// Attempts per S3 call: one more than the EC2 default, since a lost report cannot be re-made.
pub const UPLOAD_ATTEMPTS: u32 = 4;

/// Every IAM action the store calls, and the KMS actions `aws:kms` encryption adds.
pub const S3_ACTIONS: &[&str] = &["s3:PutObject", "s3:GetObject", "s3:ListBucket"];
/// What SSE-KMS needs on the key besides [`S3_ACTIONS`].
pub const KMS_ACTIONS: &[&str] = &["kms:GenerateDataKey", "kms:Decrypt"];

/// The report-store policy shipped for the runner's role.
pub const SHIPPED_POLICY: &str = include_str!("../../../deploy/aws/report-store-policy.json");

/// A bucket as a report store.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    encryption: Encryption,
}

impl S3Store {
    /// Connects with the shared credential chain. Path-style addressing when an endpoint is
    /// set (an emulator on loopback has no per-bucket host names).
    ///
    /// # Errors
    /// Loading the configuration timed out.
    pub async fn connect(
        options: &AwsOptions,
        bucket: &str,
        encryption: Encryption,
    ) -> Result<Self, AwsError> {
        let options = AwsOptions {
            max_attempts: options.max_attempts.max(UPLOAD_ATTEMPTS),
            ..options.clone()
        };
        let sdk = load_sdk(&options).await?;
        let path_style = options.endpoint_url.is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .build();
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: bucket.to_owned(),
            encryption,
        })
    }
}

fn failed<E: std::error::Error + 'static>(key: &str, err: E) -> StoreError {
    StoreError {
        key: key.to_owned(),
        message: DisplayErrorContext(&err).to_string().replace('\n', "; "),
    }
}

#[async_trait]
impl ReportStore for S3Store {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        let sse = match self.encryption {
            Encryption::Aes256 => ServerSideEncryption::Aes256,
            Encryption::Kms => ServerSideEncryption::AwsKms,
        };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .server_side_encryption(sse)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| failed(key, err))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| failed(key, err))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|err| failed(key, err))?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // `a/b` must not match `a/bc`: list below the prefix as a folder, or the prefix itself
        // when it names one object.
        let folder = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        // 1,000 keys per page: the page count bounds the loop.
        for _ in 0..MAX_LIST_KEYS.div_ceil(1000) {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&folder)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|err| failed(prefix, err))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        if keys.is_empty() && !prefix.is_empty() {
            // A prefix naming one object, e.g. s3://bucket/x/report.json.
            let head = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys(1)
                .send()
                .await
                .map_err(|err| failed(prefix, err))?;
            keys.extend(
                head.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| *k == prefix)
                    .map(str::to_owned),
            );
        }
        keys.sort();
        Ok(keys)
    }

    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::infra::aws::policy::missing_actions;

    /// `list_objects_v2` is authorised by `s3:ListBucket`; the others by their own names.
    fn action_of(call: &str) -> &'static str {
        match call {
            "put_object" => "s3:PutObject",
            "get_object" => "s3:GetObject",
            "list_objects_v2" => "s3:ListBucket",
            other => panic!("an S3 call without a known IAM action: {other}"),
        }
    }

    #[test]
    fn the_shipped_report_store_policy_grants_every_call_the_store_makes() {
        let source = include_str!("s3.rs");
        let source = &source[..source.find("#[cfg(test)]").unwrap_or(source.len())];
        let calls: BTreeSet<&str> = [
            "put_object",
            "get_object",
            "list_objects_v2",
            "delete_object",
            "head_object",
            "copy_object",
        ]
        .into_iter()
        .filter(|call| source.contains(&format!(".{call}()")))
        .collect();
        assert_eq!(
            calls,
            BTreeSet::from(["get_object", "list_objects_v2", "put_object"])
        );
        let needed: BTreeSet<&str> = calls.iter().map(|c| action_of(c)).collect();
        assert_eq!(needed, S3_ACTIONS.iter().copied().collect());
        let mut all: Vec<&str> = S3_ACTIONS.to_vec();
        all.extend(KMS_ACTIONS);
        assert_eq!(
            missing_actions(SHIPPED_POLICY, &all).unwrap(),
            Vec::<String>::new()
        );
        // And it writes nothing but objects: no delete, no bucket or ACL changes.
        for forbidden in ["s3:DeleteObject", "s3:PutBucketPolicy", "s3:PutObjectAcl"] {
            assert_eq!(
                missing_actions(SHIPPED_POLICY, &[forbidden]).unwrap(),
                vec![forbidden.to_owned()],
                "{forbidden} must not be granted"
            );
        }
    }
}
