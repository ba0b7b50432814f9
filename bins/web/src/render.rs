//! Rendering: tera templates compiled into the binary, error pages, JSON and CSV.

use std::collections::HashMap;

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use tera::{Context, Tera};

use crate::auth::CurrentUser;
use crate::error::WebError;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// The navigation bar: (key, path, label).
const NAV_ITEMS: &[(&str, &str, &str)] = &[
    ("analytics", "/analytics", "Analytics"),
    ("people", "/people", "People"),
    ("audiences", "/audiences", "Audiences"),
    ("changes", "/changes", "Changes"),
    ("policies", "/policies", "Policies"),
    ("jobs", "/jobs", "Jobs"),
    ("runs", "/runs", "Runs"),
    ("admin", "/admin", "Admin"),
];

/// The templates, parsed once at start-up.
#[derive(Debug)]
pub struct Views {
    tera: Tera,
}

impl Views {
    pub fn new() -> Result<Views, tera::Error> {
        let mut tera = Tera::default();
        tera.add_raw_templates(templates![
            "base.html",
            "macros.html",
            "signed_out.html",
            "analytics.html",
            "changes.html",
            "people.html",
            "audiences.html",
            "person.html",
            "site.html",
            "drive.html",
            "item.html",
            "jobs.html",
            "job.html",
            "runs.html",
            "admin.html",
            "policies.html",
            "violations.html",
        ])?;
        tera.register_filter("num", num_filter);
        tera.register_filter("bytes", bytes_filter);
        tera.register_filter("dt", dt_filter);
        tera.register_filter("secs", secs_filter);
        tera.register_filter("urlencode_strict", urlencode_strict_filter);
        Ok(Views { tera })
    }

    /// A full page from its typed context; `user` fills the navigation bar and the CSRF
    /// token of its forms.
    pub fn page<C: Serialize>(
        &self,
        name: &str,
        user: Option<&CurrentUser>,
        page: &C,
    ) -> Result<Response, WebError> {
        self.page_with_status(StatusCode::OK, name, user, page)
    }

    pub fn page_with_status<C: Serialize>(
        &self,
        status: StatusCode,
        name: &str,
        user: Option<&CurrentUser>,
        page: &C,
    ) -> Result<Response, WebError> {
        let mut ctx = Context::from_serialize(page)?;
        // Readers are not offered what they may not open.
        let admin = user.is_some_and(CurrentUser::is_admin);
        let nav: Vec<_> = NAV_ITEMS
            .iter()
            .filter(|(key, _, _)| admin || *key != "admin")
            .collect();
        ctx.insert("nav_items", &nav);
        if let Some(u) = user {
            ctx.insert("user", u);
            ctx.insert("csrf_token", &u.csrf);
            ctx.insert("is_admin", &u.is_admin());
            if let Some(tenant) = &u.viewing {
                ctx.insert("tenant", tenant);
            }
        }
        let html = self.tera.render(name, &ctx)?;
        Ok((status, Html(html)).into_response())
    }
}

/// Text safe inside HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A CSV download of `rows` (JSON objects), one column per name in `columns`.
pub fn csv_response(
    filename: &str,
    columns: &[&str],
    rows: &[Value],
) -> Result<Response, WebError> {
    let bytes = csv_bytes(columns, rows).map_err(WebError::Csv)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}.csv\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Arrays become `;`-joined cells, objects their JSON text, nulls empty cells. Text that a
/// spreadsheet would run as a formula (a file named `=HYPERLINK(...)`, chosen by anyone who can
/// name a file or share a link) is neutralised with a leading `'` (OWASP, "CSV Injection").
fn csv_bytes(columns: &[&str], rows: &[Value]) -> Result<Vec<u8>, csv::Error> {
    let cell = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => inert(s.clone()),
        Some(Value::Array(a)) => inert(
            a.iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect::<Vec<_>>()
                .join(";"),
        ),
        // Numbers and booleans are data to a spreadsheet, never formulas.
        Some(Value::Object(o)) => inert(Value::Object(o.clone()).to_string()),
        Some(other) => other.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(columns)?;
    for row in rows {
        w.write_record(columns.iter().map(|c| cell(row.get(*c))))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Text a spreadsheet reads as a formula starts with `=`, `+`, `-`, `@`, a tab or a carriage
/// return: such a cell gets a leading `'`, which spreadsheets show as text.
fn inert(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

fn num_filter(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let Some(n) = v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)) else {
        return Ok(v.clone());
    };
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    Ok(Value::String(if n < 0 { format!("-{out}") } else { out }))
}

/// Percent-encodes everything but unreserved characters: safe in a path segment or a query.
fn urlencode_strict_filter(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(Value::String(out))
}

fn bytes_filter(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let Some(n) = v.as_f64() else {
        return Ok(v.clone());
    };
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut x = n;
    let mut u = 0;
    while x >= 1024.0 && u < units.len() - 1 {
        x /= 1024.0;
        u += 1;
    }
    Ok(Value::String(if u == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", units[u])
    }))
}

/// A span in seconds as people say it: `45 s`, `12 min`, `3.5 h`, `2.0 days` (`-` when absent).
fn secs_filter(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let Some(s) = v.as_f64() else {
        return Ok(Value::String("-".into()));
    };
    let s = s.max(0.0);
    Ok(Value::String(if s < 60.0 {
        format!("{s:.0} s")
    } else if s < 5_400.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3_600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }))
}

/// RFC 3339 timestamps shown as `2026-11-26 08:59:31 UTC`.
fn dt_filter(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let Some(s) = v.as_str() else {
        return Ok(if v.is_null() {
            Value::String("-".into())
        } else {
            v.clone()
        });
    };
    Ok(Value::String(
        match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => t
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
            Err(_) => s.to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_parses_and_the_signed_out_page_renders() {
        let views = Views::new().expect("templates parse");
        let resp = views
            .page("signed_out.html", None, &serde_json::json!({}))
            .expect("renders");
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[test]
    fn numbers_and_sizes_read_well() {
        let none = HashMap::new();
        assert_eq!(
            num_filter(&json!(1234567), &none).ok(),
            Some(json!("1,234,567"))
        );
        assert_eq!(num_filter(&json!(-1000), &none).ok(), Some(json!("-1,000")));
        assert_eq!(num_filter(&json!(12), &none).ok(), Some(json!("12")));
        assert_eq!(
            bytes_filter(&json!(1536), &none).ok(),
            Some(json!("1.5 KB"))
        );
        assert_eq!(
            urlencode_strict_filter(&json!("b!a/b?c#d e,f"), &none).ok(),
            Some(json!("b%21a%2Fb%3Fc%23d%20e%2Cf"))
        );
        assert_eq!(
            dt_filter(&json!("2026-11-26T08:59:31.5+00:00"), &none).ok(),
            Some(json!("2026-11-26 08:59:31 UTC"))
        );
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let bytes = csv_bytes(
            &["a", "b"],
            &[
                json!({"a": "x,y", "b": ["r", "w"]}),
                json!({"a": null, "b": 3}),
            ],
        )
        .expect("csv");
        assert_eq!(String::from_utf8_lossy(&bytes), "a,b\n\"x,y\",r;w\n,3\n");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        let rows = [
            json!({"name": "=HYPERLINK(\"https://evil.example\",\"Q3\")", "n": -5}),
            json!({"name": "+1-555", "n": 2}),
            json!({"name": "-2+3", "n": 0}),
            json!({"name": "@SUM(A1)", "n": 0}),
            json!({"name": "\tcmd", "n": 0}),
            json!({"name": "\r=1", "n": 0}),
            json!({"name": ["=a", "b"], "n": 0}),
            json!({"name": "Budget = plan", "n": 0}),
        ];
        let text = String::from_utf8(csv_bytes(&["name", "n"], &rows).expect("csv")).expect("utf8");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let cells: Vec<(String, String)> = r
            .records()
            .map(|rec| {
                let rec = rec.expect("record");
                (rec[0].to_string(), rec[1].to_string())
            })
            .collect();
        for (name, _) in &cells[..7] {
            assert!(name.starts_with('\''), "{name:?} would run as a formula");
        }
        assert_eq!(cells[0].1, "-5", "numbers stay numbers");
        assert_eq!(
            cells[7].0, "Budget = plan",
            "text that starts plainly is untouched"
        );
        assert_eq!(cells[0].0, "'=HYPERLINK(\"https://evil.example\",\"Q3\")");
    }
}
