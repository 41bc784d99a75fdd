//! Bearer tokens issued to ServiceAccounts through TokenRequest.
//!
//! Tokens are opaque random strings rather than signed JWTs: only this server checks them. Like a
//! bound token, one stops working when its ServiceAccount is deleted (or recreated with a new uid).

use std::collections::HashMap;
use std::sync::Mutex;

use super::UserInfo;
use crate::sandbox::store::Store;

/// The ServiceAccount a token was issued to.
#[derive(Debug, Clone)]
struct Holder {
    namespace: String,
    name: String,
    uid: String,
}

/// Every token issued so far.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    issued: Mutex<HashMap<String, Holder>>,
}

impl Tokens {
    /// A new token for the ServiceAccount `namespace/name` whose uid is `uid`.
    pub fn issue(&self, namespace: &str, name: &str, uid: &str) -> String {
        let token = format!(
            "sandbox-sa.{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.insert(
            token.clone(),
            Holder {
                namespace: namespace.into(),
                name: name.into(),
                uid: uid.into(),
            },
        );
        token
    }

    /// The user of `token`, while its ServiceAccount still exists.
    pub fn user(&self, store: &Store, token: &str) -> Option<UserInfo> {
        let holder = {
            let issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
            issued.get(token)?.clone()
        };
        let account = store.get("serviceaccounts", &holder.namespace, &holder.name)?;
        let uid = account.pointer("/metadata/uid").and_then(|v| v.as_str());
        (uid == Some(holder.uid.as_str()))
            .then(|| UserInfo::service_account(&holder.namespace, &holder.name))
    }
}
