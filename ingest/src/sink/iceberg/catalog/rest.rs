//! The Iceberg REST catalog protocol (the OpenAPI spec `rest-catalog-open-api.yaml`), as far
//! as a writer needs it: `GET /v1/config` (the server's path prefix), load a table, create a
//! namespace and a table, and commit a snapshot or a snapshot expiry (`remove-snapshots`)
//! with requirements (`assert-table-uuid`, `assert-ref-snapshot-id` of `main`). A 409 is a
//! conflict; a 500, 502, 503 or 504 to a commit leaves its outcome unknown, as the spec says.
//!
//! Authentication is a bearer token (`token`), as most servers accept; OAuth2 client
//! credentials flows are not implemented.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use super::{catalog_err, Loaded, Outcome, TableIdent};
use crate::sink::iceberg::metadata::TableMetadata;
use crate::sink::{Result, SinkError};

/// A request's time limit (a generous failure bound, not an expectation).
const TIMEOUT: Duration = Duration::from_secs(60);

/// A REST catalog client: see the [module docs](self).
pub(crate) struct RestCatalog {
    http: Client,
    /// `{uri}/v1/{prefix}` without a trailing slash.
    base: String,
    token: Option<String>,
    label: String,
}

/// A namespace in a URL path: levels joined by the unit separator, percent-encoded.
fn encode_namespace(ns: &[String]) -> String {
    encode(&ns.join("\u{1f}"))
}

fn encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

impl RestCatalog {
    pub(crate) async fn connect(
        uri: &str,
        warehouse: Option<&str>,
        token: Option<String>,
    ) -> Result<RestCatalog> {
        // reqwest is built without a bundled crypto provider: use ring, as the object stores
        // do (an error means one is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let label = format!("REST catalog at {uri}");
        let http = Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| catalog_err(&label, "connect", e.to_string()))?;
        let root = uri.trim_end_matches('/').to_owned();
        let mut cat = RestCatalog {
            http,
            base: format!("{root}/v1"),
            token,
            label,
        };
        let mut config_url = format!("{root}/v1/config");
        if let Some(w) = warehouse {
            config_url.push_str(&format!("?warehouse={}", encode(w)));
        }
        let (status, body) = cat.send(Method::GET, &config_url, None).await?;
        if !status.is_success() {
            return Err(cat.http_err("config", status, &body));
        }
        let prefix = body
            .get("overrides")
            .and_then(|o| o.get("prefix"))
            .or_else(|| body.get("defaults").and_then(|o| o.get("prefix")))
            .and_then(Value::as_str);
        if let Some(p) = prefix.filter(|p| !p.is_empty()) {
            cat.base = format!("{root}/v1/{}", p.trim_matches('/'));
        }
        Ok(cat)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        self.try_send(method, url, body)
            .await
            .map_err(|e| catalog_err(&self.label, "request", format!("{url}: {e}")))
    }

    async fn try_send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> std::result::Result<(StatusCode, Value), reqwest::Error> {
        let mut req = self.http.request(method, url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(b).unwrap_or_default());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, json))
    }

    fn http_err(&self, op: &'static str, status: StatusCode, body: &Value) -> SinkError {
        let message = body
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map_or_else(|| body.to_string(), str::to_owned);
        catalog_err(&self.label, op, format!("HTTP {status}: {message}"))
    }

    fn table_url(&self, ident: &TableIdent) -> String {
        format!(
            "{}/namespaces/{}/tables/{}",
            self.base,
            encode_namespace(&ident.namespace),
            encode(&ident.name)
        )
    }

    fn loaded(&self, ident: &TableIdent, body: &Value) -> Result<Loaded> {
        let location = body
            .get("metadata-location")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let metadata = body
            .get("metadata")
            .cloned()
            .ok_or_else(|| catalog_err(&self.label, "load", "response without metadata"))?;
        let metadata = TableMetadata::from_value(metadata).map_err(|reason| SinkError::Table {
            table: ident.to_string(),
            reason,
        })?;
        Ok(Loaded { location, metadata })
    }

    pub(crate) async fn load(&self, ident: &TableIdent) -> Result<Option<Loaded>> {
        let (status, body) = self.send(Method::GET, &self.table_url(ident), None).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(self.loaded(ident, &body)?)),
            s => Err(self.http_err("load table", s, &body)),
        }
    }

    pub(crate) async fn create(
        &self,
        ident: &TableIdent,
        metadata: &TableMetadata,
    ) -> Result<Option<Loaded>> {
        let ns_url = format!("{}/namespaces", self.base);
        let ns_body = json!({"namespace": ident.namespace, "properties": {}});
        let (status, body) = self.send(Method::POST, &ns_url, Some(&ns_body)).await?;
        if !status.is_success() && status != StatusCode::CONFLICT {
            return Err(self.http_err("create namespace", status, &body));
        }
        let m: Value = serde_json::from_slice(&metadata.to_bytes()).unwrap_or(Value::Null);
        let spec = metadata.default_spec().cloned().unwrap_or(Value::Null);
        let mut req = json!({
            "name": ident.name,
            "schema": m["schemas"][0],
            "partition-spec": spec,
            "write-order": {"order-id": 0, "fields": []},
            "stage-create": false,
            "properties": m["properties"],
        });
        if let Some(loc) = m
            .get("location")
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
        {
            req["location"] = json!(loc);
        }
        let url = format!(
            "{}/namespaces/{}/tables",
            self.base,
            encode_namespace(&ident.namespace)
        );
        let (status, body) = self.send(Method::POST, &url, Some(&req)).await?;
        match status {
            StatusCode::CONFLICT => Ok(None),
            s if s.is_success() => Ok(Some(self.loaded(ident, &body)?)),
            s => Err(self.http_err("create table", s, &body)),
        }
    }

    pub(crate) async fn commit(
        &self,
        ident: &TableIdent,
        base: &Loaded,
        snapshot: &Value,
    ) -> Result<Outcome> {
        let id = snapshot["snapshot-id"].clone();
        let req = json!({
            "identifier": {"namespace": ident.namespace, "name": ident.name},
            "requirements": [
                {"type": "assert-table-uuid", "uuid": base.metadata.table_uuid()},
                {"type": "assert-ref-snapshot-id", "ref": "main",
                 "snapshot-id": base.metadata.current_snapshot_id()},
            ],
            "updates": [
                {"action": "add-snapshot", "snapshot": snapshot},
                {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch",
                 "snapshot-id": id},
            ],
        });
        self.post_commit(ident, &req).await
    }

    /// Snapshot expiry: the `remove-snapshots` update, on the condition that `main` still
    /// points where it did in `base` (the snapshots kept for the groups' offsets were chosen
    /// from `main`'s ancestry), as Apache Iceberg's Java `RemoveSnapshots` commits through a
    /// REST catalog. The server applies it; deleting the files is the client's.
    pub(crate) async fn remove_snapshots(
        &self,
        ident: &TableIdent,
        base: &Loaded,
        expired: &[i64],
    ) -> Result<Outcome> {
        let req = json!({
            "identifier": {"namespace": ident.namespace, "name": ident.name},
            "requirements": [
                {"type": "assert-table-uuid", "uuid": base.metadata.table_uuid()},
                {"type": "assert-ref-snapshot-id", "ref": "main",
                 "snapshot-id": base.metadata.current_snapshot_id()},
            ],
            "updates": [
                {"action": "remove-snapshots", "snapshot-ids": expired},
            ],
        });
        self.post_commit(ident, &req).await
    }

    /// Sends a commit (`POST` of requirements and updates to the table): 409 is a conflict,
    /// a lost answer or a 5xx gateway-like status an unknown outcome.
    async fn post_commit(&self, ident: &TableIdent, req: &Value) -> Result<Outcome> {
        let sent = self
            .try_send(Method::POST, &self.table_url(ident), Some(req))
            .await;
        match sent {
            Err(e) => Ok(Outcome::Unknown(e.to_string())),
            Ok((s, _)) if s.is_success() => Ok(Outcome::Committed),
            Ok((StatusCode::CONFLICT, _)) => Ok(Outcome::Conflict),
            Ok((s, body)) if matches!(s.as_u16(), 500 | 502 | 503 | 504) => Ok(Outcome::Unknown(
                self.http_err("commit", s, &body).to_string(),
            )),
            Ok((s, body)) => Err(self.http_err("commit", s, &body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_rest_namespaces_encode_with_the_unit_separator() {
        assert_eq!(encode_namespace(&["a".into(), "b c".into()]), "a%1Fb%20c");
        assert_eq!(encode("events"), "events");
    }
}
