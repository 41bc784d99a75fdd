//! The halt switch: a ConfigMap every run reads before it starts and while it runs, so one
//! command (or one Helm value) stops all chaos on a cluster.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Utc;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use super::timed;
use crate::engine::HaltSwitch;

/// The ConfigMap's name.
pub const HALT_NAME: &str = "steadfast-halt";

/// The halt switch in a namespace.
pub struct ConfigMapHalt {
    api: Api<ConfigMap>,
}

impl ConfigMapHalt {
    /// The switch in `namespace`.
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
        }
    }

    /// Turns chaos off, with a reason every refused run will show.
    ///
    /// # Errors
    /// When the ConfigMap cannot be written.
    pub async fn halt(&self, reason: &str, by: &str) -> anyhow::Result<()> {
        let data = BTreeMap::from([
            ("halted".to_owned(), "true".to_owned()),
            ("reason".to_owned(), reason.to_owned()),
            ("by".to_owned(), by.to_owned()),
            ("at".to_owned(), Utc::now().to_rfc3339()),
        ]);
        let config_map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(HALT_NAME.to_owned()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "steadfast".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..ConfigMap::default()
        };
        match timed("read the halt switch", self.api.get_opt(HALT_NAME))
            .await
            .map_err(anyhow::Error::msg)?
        {
            Some(existing) => {
                let replaced = ConfigMap {
                    metadata: ObjectMeta {
                        resource_version: existing.metadata.resource_version,
                        ..config_map.metadata
                    },
                    ..config_map
                };
                timed(
                    "halt",
                    self.api
                        .replace(HALT_NAME, &PostParams::default(), &replaced),
                )
                .await
                .map_err(anyhow::Error::msg)?;
            }
            None => {
                timed("halt", self.api.create(&PostParams::default(), &config_map))
                    .await
                    .map_err(anyhow::Error::msg)?;
            }
        }
        Ok(())
    }

    /// Lets chaos run again.
    ///
    /// # Errors
    /// When the ConfigMap cannot be deleted.
    pub async fn resume(&self) -> anyhow::Result<()> {
        if timed("read the halt switch", self.api.get_opt(HALT_NAME))
            .await
            .map_err(anyhow::Error::msg)?
            .is_some()
        {
            timed(
                "resume",
                self.api.delete(HALT_NAME, &DeleteParams::default()),
            )
            .await
            .map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }
}

#[async_trait]
impl HaltSwitch for ConfigMapHalt {
    async fn halted(&self) -> anyhow::Result<Option<String>> {
        let config_map = timed("read the halt switch", self.api.get_opt(HALT_NAME))
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(config_map.and_then(|cm| cm.data).and_then(|data| {
            (data.get("halted").map(String::as_str) == Some("true")).then(|| {
                let reason = data.get("reason").cloned().unwrap_or_default();
                let by = data.get("by").cloned().unwrap_or_default();
                format!("{reason} (by {by})")
            })
        }))
    }
}
