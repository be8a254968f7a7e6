//! Ward's web console driven over HTTP the way a browser drives it: one
//! cookie jar (the session cookie only), forms posted URL-encoded with the
//! CSRF token the page carried, redirects shown rather than followed.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::api::ApiHarness;

/// A browser tab on the console.
pub struct ConsoleTab {
    base: String,
    http: reqwest::Client,
    /// `name=value` of every cookie the console set and has not cleared.
    cookies: Vec<(String, String)>,
}

/// A console answer: status, `Location` (redirects), body.
#[derive(Debug)]
pub struct Page {
    /// HTTP status.
    pub status: StatusCode,
    /// Where a redirect points.
    pub location: Option<String>,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> Option<String> {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker)? + marker.len();
        let len = self.body[start..].find('"')?;
        Some(self.body[start..start + len].to_owned())
    }
}

impl ConsoleTab {
    /// A tab on the harness's console, signed out.
    pub fn open(h: &ApiHarness) -> ConsoleTab {
        ConsoleTab {
            base: h.url.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for v in response.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            self.cookies.retain(|(n, _)| n != name);
            let cleared = v.contains("Max-Age=0");
            if !cleared {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header(COOKIE, self.cookie_header())
        };
        let response = request.send().await.unwrap();
        self.keep_cookies(&response);
        Page {
            status: response.status(),
            location: response
                .headers()
                .get(LOCATION)
                .map(|l| l.to_str().unwrap().to_owned()),
            body: response.text().await.unwrap(),
        }
    }

    /// `GET path` (or a full URL) with the tab's cookies.
    pub async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.finish(self.http.get(url)).await
    }

    /// `GET path` with an `Authorization` header too.
    pub async fn get_with(&mut self, path: &str, authorization: &str) -> Page {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", authorization);
        self.finish(request).await
    }

    /// Posts a form to `path` with exactly these fields.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.finish(request).await
    }

    /// Posts a form with the CSRF token of the page at `from`.
    pub async fn submit(&mut self, from: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(from).await.csrf().unwrap();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    /// Signs in with the operator's secrets through the sign-in form.
    pub async fn sign_in(&mut self, user: &str, organization: &str) -> Page {
        self.submit(
            "/console/sign-in",
            "/console/sign-in",
            &[("user", user), ("organization", organization)],
        )
        .await
    }

    /// The tab's cookies (to replay them from another tab).
    pub fn clone_cookies(&self) -> Vec<(String, String)> {
        self.cookies.clone()
    }

    /// Replaces the tab's cookies.
    pub fn set_cookies(&mut self, cookies: Vec<(String, String)>) {
        self.cookies = cookies;
    }

    /// Whether the tab holds a session cookie.
    pub fn signed_in(&self) -> bool {
        self.cookies.iter().any(|(n, _)| n == "ward_console")
    }
}
