//! One ACME order, by instant-acme: the account (loaded from storage, or registered once),
//! the challenge put up for the validator and always taken down, the key and CSR (instant-
//! acme's rcgen), the certificate polled for and stored.

use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use super::challenge::tls_alpn_config;
use super::{Acme, ChallengeKind, Stored};

/// How long the CA may take to validate, and then to issue.
const VALIDATION: Duration = Duration::from_secs(45);
/// The problem type of an account the CA does not know (RFC 8555 6.7).
const ACCOUNT_GONE: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

impl Acme {
    /// Orders a certificate for `name` and stores it.
    pub(super) async fn order(&self, name: &str) -> Result<Stored, String> {
        let ids = [Identifier::Dns(name.to_string())];
        let new = NewOrder::new(&ids);
        let mut order = match self.account().await?.new_order(&new).await {
            Ok(order) => order,
            Err(instant_acme::Error::Api(p)) if p.r#type.as_deref() == Some(ACCOUNT_GONE) => {
                // The CA no longer knows the stored account (deactivated, or a test CA reset):
                // register a new one, once.
                tracing::warn!(%name, "the CA does not know the stored ACME account; registering a new one");
                *self.account.lock().await = None;
                let account = self.account_registered_anew().await?;
                account
                    .new_order(&new)
                    .await
                    .map_err(|e| format!("new order: {e}"))?
            }
            Err(e) => return Err(format!("new order: {e}")),
        };
        let put_up = self.answer_challenges(&mut order, name).await;
        let ready = match put_up {
            Ok(()) => {
                let retries = RetryPolicy::new().timeout(VALIDATION);
                order.poll_ready(&retries).await.map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        self.take_down(name);
        let status = ready?;
        if status != OrderStatus::Ready {
            let why = order.state().error.as_ref().map(|p| p.to_string());
            return Err(format!(
                "the CA did not validate {name} ({status:?}): {}",
                why.unwrap_or_else(|| "no reason given".into())
            ));
        }
        let key = order
            .finalize()
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let retries = RetryPolicy::new().timeout(VALIDATION);
        let chain = order
            .poll_certificate(&retries)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        let stored = Stored::from_pem(&chain, &key)?;
        self.storage.write_cert(name, &chain, &key)?;
        Ok(stored)
    }

    /// Puts up the configured challenge of every pending authorization and tells the CA.
    async fn answer_challenges(
        &self,
        order: &mut instant_acme::Order,
        name: &str,
    ) -> Result<(), String> {
        let kind = match self.settings.challenge {
            ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
            ChallengeKind::Http01 => ChallengeType::Http01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(format!("authorization for {name} is {other:?}")),
            }
            let mut challenge = authz
                .challenge(kind.clone())
                .ok_or_else(|| format!("the CA offers no {kind:?} challenge for {name}"))?;
            let key_auth = challenge.key_authorization();
            match self.settings.challenge {
                ChallengeKind::TlsAlpn01 => {
                    let config = tls_alpn_config(name, key_auth.digest().as_ref())?;
                    self.lock().alpn.insert(name.to_string(), config);
                }
                ChallengeKind::Http01 => {
                    let answer = (name.to_string(), key_auth.as_str().to_string());
                    self.lock().tokens.insert(challenge.token.clone(), answer);
                }
            }
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("challenge: {e}"))?;
        }
        Ok(())
    }

    /// Removes `name`'s challenge answers.
    fn take_down(&self, name: &str) {
        let mut state = self.lock();
        state.alpn.remove(name);
        state.tokens.retain(|_, (n, _)| n != name);
    }

    /// The account: loaded once from storage, or registered with the CA and stored.
    async fn account(&self) -> Result<Account, String> {
        let mut slot = self.account.lock().await;
        if let Some(account) = slot.as_ref() {
            return Ok(account.clone());
        }
        let url = self.settings.directory_url.clone();
        let builder = || match &self.settings.ca_file {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        };
        let builder = builder().map_err(|e| format!("ACME client: {e}"))?;
        let account = match self.storage.read_account(&url) {
            Some(json) => {
                let creds: AccountCredentials = serde_json::from_str(&json)
                    .map_err(|e| format!("the stored ACME account does not parse: {e}"))?;
                builder
                    .from_credentials(creds)
                    .await
                    .map_err(|e| format!("ACME directory {url}: {e}"))?
            }
            None => self.register(builder, url).await?,
        };
        *slot = Some(account.clone());
        Ok(account)
    }

    /// A new account, replacing the stored one.
    async fn account_registered_anew(&self) -> Result<Account, String> {
        let mut slot = self.account.lock().await;
        let builder = match &self.settings.ca_file {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        };
        let builder = builder.map_err(|e| format!("ACME client: {e}"))?;
        let account = self
            .register(builder, self.settings.directory_url.clone())
            .await?;
        *slot = Some(account.clone());
        Ok(account)
    }

    async fn register(
        &self,
        builder: instant_acme::AccountBuilder,
        url: String,
    ) -> Result<Account, String> {
        let contact = self.settings.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let new = NewAccount {
            contact: &contacts,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, creds) = builder
            .create(&new, url.clone(), None)
            .await
            .map_err(|e| format!("registering an ACME account at {url}: {e}"))?;
        let json = serde_json::to_string(&creds).map_err(|e| e.to_string())?;
        self.storage.write_account(&url, &json)?;
        tracing::info!(%url, "ACME account registered");
        Ok(account)
    }
}
