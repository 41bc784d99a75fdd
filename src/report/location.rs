//! Where reports live: a directory on disk, or `s3://bucket/prefix`. Parsed once, at the edge,
//! so a mistyped URL is a one-line error before a run starts rather than a lost report after.

use std::fmt;
use std::path::{Path, PathBuf};

/// A report location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportLocation {
    /// A directory on disk.
    Dir(PathBuf),
    /// A bucket and a key prefix (no leading or trailing `/`; empty for the bucket's root).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
}

/// A location that cannot be used, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}: {message} (hint: {hint})")]
pub struct LocationError {
    /// As given.
    pub text: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl ReportLocation {
    /// Parses `s3://bucket/prefix` (or `s3://bucket`) or a path.
    ///
    /// # Errors
    /// A URL with another scheme, no bucket, a bucket name S3 would refuse, or an empty segment.
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        let fail = |message: &str, hint: &str| LocationError {
            text: text.to_owned(),
            message: message.to_owned(),
            hint: hint.to_owned(),
        };
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Self::Dir(PathBuf::from(text)));
        };
        if !scheme.eq_ignore_ascii_case("s3") {
            return Err(fail(
                &format!("`{scheme}://` is not a report location"),
                "write a directory or s3://bucket/prefix",
            ));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(fail("the URL names no bucket", "write s3://bucket/prefix"));
        }
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(fail(
                &format!("`{bucket}` is not a valid bucket name"),
                "bucket names are 3-63 lower-case letters, digits, `-` and `.`",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix.split('/').any(str::is_empty) && !prefix.is_empty() {
            return Err(fail(
                "the prefix has an empty segment (`//`)",
                "write s3://bucket/a/b without doubled slashes",
            ));
        }
        Ok(Self::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// Parses a location given as a path argument (clap hands `--report-dir` over as a path).
    ///
    /// # Errors
    /// As [`ReportLocation::parse`]; a path that is not UTF-8 is always a directory.
    pub fn from_path(path: &Path) -> Result<Self, LocationError> {
        match path.to_str() {
            Some(text) => Self::parse(text),
            None => Ok(Self::Dir(path.to_owned())),
        }
    }

    /// The location `name` below this one (`<prefix>/<name>` or `<dir>/<name>`).
    pub fn join(&self, name: &str) -> Self {
        match self {
            Self::Dir(dir) => Self::Dir(dir.join(name)),
            Self::S3 { bucket, prefix } => Self::S3 {
                bucket: bucket.clone(),
                prefix: join_key(prefix, name),
            },
        }
    }
}

/// `prefix/name`, or `name` when the prefix is empty.
pub fn join_key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

impl fmt::Display for ReportLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_s3_urls_are_told_apart() {
        assert_eq!(
            ReportLocation::parse("reports").unwrap(),
            ReportLocation::Dir("reports".into())
        );
        assert_eq!(
            ReportLocation::parse("s3://my-bucket/ci/nightly/").unwrap(),
            ReportLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: "ci/nightly".into()
            }
        );
        assert_eq!(
            ReportLocation::parse("s3://my-bucket").unwrap().to_string(),
            "s3://my-bucket"
        );
    }

    #[test]
    fn bad_urls_are_one_line_errors_with_a_fix() {
        for bad in [
            "gs://b/p",
            "s3:///p",
            "s3://Bad_Bucket/p",
            "s3://ok-bucket/a//b",
        ] {
            let err = ReportLocation::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with(bad) && err.contains("hint:"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
