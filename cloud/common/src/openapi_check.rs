//! The test every service runs against a real instance of itself: the document it serves is the
//! one checked in under `docs/openapi/`, it names exactly the routes the service is known to
//! have, and the router answers exactly the documented methods on each of them, with documented
//! status codes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

/// The environment variable that rewrites the checked-in documents instead of comparing.
pub const UPDATE: &str = "UPDATE_OPENAPI";

/// What to check, and how to reach it.
pub struct Check<'a> {
    /// The document's file name under `docs/openapi/`, without `.json`.
    pub name: &'a str,
    /// The package whose test this is, for the "regenerate with" hint.
    pub package: &'a str,
    /// `http://host:port` of the running service.
    pub base: &'a str,
    /// Every route the service serves, as the document writes it (`/hook/{id}`).
    pub routes: &'a [&'a str],
    /// Basic credentials for routes behind API authentication, if the instance requires them.
    pub basic: Option<(&'a str, &'a str)>,
    /// A documented route that stands for every path (the service's fallback answers them all).
    pub catch_all: Option<&'a str>,
}

impl Check<'_> {
    pub async fn run(&self) {
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let served = http
            .get(format!("{}/openapi.json", self.base))
            .send()
            .await
            .expect("GET /openapi.json");
        assert_eq!(served.status(), StatusCode::OK, "GET /openapi.json");
        let served = served.text().await.expect("the document");
        self.compare_with_file(&served);

        let doc: Value = serde_json::from_str(&served).expect("the document is JSON");
        let documented = operations(&doc);
        let paths: BTreeSet<&str> = documented.keys().map(String::as_str).collect();
        let known: BTreeSet<&str> = self.routes.iter().copied().collect();
        assert_eq!(
            paths, known,
            "the documented paths are not the known routes"
        );

        for (path, ops) in &documented {
            let url = format!("{}{}", self.base, concrete(path));
            if self.catch_all != Some(path.as_str()) {
                // The router's own 405 lists what it routes on this path (a 404 means no route).
                let probe = self
                    .request(
                        &http,
                        Method::from_bytes(b"XPROBE").expect("a method"),
                        &url,
                    )
                    .await;
                assert_eq!(
                    probe.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{path}: the router has no such route"
                );
                let allowed: BTreeSet<String> = probe
                    .headers()
                    .get(reqwest::header::ALLOW)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .split(',')
                    .map(|m| m.trim().to_ascii_lowercase())
                    .filter(|m| !m.is_empty() && m != "head")
                    .collect();
                let methods: BTreeSet<String> = ops.keys().cloned().collect();
                assert_eq!(
                    allowed, methods,
                    "{path}: the methods the router answers are not the documented ones"
                );
            }
            for (method, statuses) in ops {
                let method =
                    Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("a method");
                let status = self.request(&http, method.clone(), &url).await.status();
                assert!(
                    statuses.contains(status.as_str()) || statuses.contains("default"),
                    "{method} {path} answered {status}, which the document does not list \
                     ({statuses:?})"
                );
            }
        }
        if let Some(path) = self.catch_all {
            let url = format!("{}/no/such{}", self.base, concrete(path));
            let status = self.request(&http, Method::GET, &url).await.status();
            assert!(
                documented[path]["get"].contains(status.as_str()),
                "{path} should answer every path, but {url} answered {status}"
            );
        }
    }

    fn compare_with_file(&self, served: &str) {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/openapi")
            .join(format!("{}.json", self.name));
        if std::env::var_os(UPDATE).is_some() {
            std::fs::write(&file, served).expect("write the document");
            return;
        }
        let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            checked_in == served,
            "docs/openapi/{}.json is not what {} serves; regenerate with: \
             {UPDATE}=1 cargo test -p {} openapi",
            self.name,
            self.name,
            self.package
        );
    }

    async fn request(&self, http: &Client, method: Method, url: &str) -> reqwest::Response {
        let mut request = http.request(method.clone(), url);
        if let Some((user, pass)) = self.basic {
            request = request.basic_auth(user, Some(pass));
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }
}

/// Path → method → the documented status codes.
fn operations(doc: &Value) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut all = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths").iter() {
        let ops = item
            .as_object()
            .expect("a path item")
            .iter()
            .filter(|(_, op)| op.get("responses").is_some())
            .map(|(method, op)| {
                let statuses = op["responses"]
                    .as_object()
                    .expect("responses")
                    .keys()
                    .cloned()
                    .collect();
                (method.clone(), statuses)
            })
            .collect();
        all.insert(path.clone(), ops);
    }
    all
}

/// The path with each `{parameter}` replaced by a value no handler knows.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        out.push_str("unknown");
        rest = rest[open..].split_once('}').map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}
