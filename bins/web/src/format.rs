//! What a caller reads and what it sends, decided once per request by extractors:
//! [`Format`] (HTML page, JSON under `/api/`, CSV with `?format=csv`) and [`Input`] (a JSON
//! body or an HTML form, by `Content-Type`). Handlers serve every format from one body.

use std::convert::Infallible;

use axum::extract::{Form, FromRequest, FromRequestParts, Json, Request};
use axum::http::request::Parts;
use axum::http::{Uri, header};
use serde::de::DeserializeOwned;

use crate::error::WebError;

/// The representation a caller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A page for the browser.
    Html,
    /// The same data under `/api/`.
    Json,
    /// A table's rows as a download (`?format=csv`, on a page or under `/api/`).
    Csv,
}

impl Format {
    pub fn of(uri: &Uri) -> Format {
        let csv = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .any(|(k, v)| k == "format" && v == "csv");
        if csv {
            Format::Csv
        } else if uri.path().starts_with("/api/") {
            Format::Json
        } else {
            Format::Html
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Format {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Format, Infallible> {
        Ok(Format::of(&parts.uri))
    }
}

/// A body the API sends as JSON and the page as a form. `Form` is what the HTML form posts
/// (checkboxes are absent when off, JSON fields are text); it converts into the JSON shape.
pub trait FormInput: DeserializeOwned {
    type Form: DeserializeOwned + Into<Self>;
}

/// A request body read as JSON or as a form by its `Content-Type`; bad bodies are 400s that
/// say what is wrong.
#[derive(Debug)]
pub struct Input<T>(pub T);

impl<S: Send + Sync, T: FormInput> FromRequest<S> for Input<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Input<T>, WebError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            let Json(v) = Json::<T>::from_request(req, state)
                .await
                .map_err(|e| WebError::BadInput(e.body_text()))?;
            Ok(Input(v))
        } else {
            let Form(f) = Form::<T::Form>::from_request(req, state)
                .await
                .map_err(|e| WebError::BadInput(e.body_text()))?;
            Ok(Input(f.into()))
        }
    }
}

/// A checkbox or a flag: absent, empty, `0`, `false` and `off` are off.
pub fn is_on(v: Option<&str>) -> bool {
    v.is_some_and(|v| !matches!(v, "" | "0" | "false" | "off"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_and_the_query_decide_the_format() {
        let f = |u: &str| Format::of(&u.parse().expect("uri"));
        assert_eq!(f("/jobs"), Format::Html);
        assert_eq!(f("/api/jobs"), Format::Json);
        assert_eq!(f("/runs?status=failed&format=csv"), Format::Csv);
        assert_eq!(f("/api/runs?format=csv"), Format::Csv);
        assert_eq!(f("/runs?format=xml"), Format::Html);
    }
}
