//! Delta rounds and paged collections as `futures::Stream`s.

use std::collections::HashSet;

use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::models::GraphObject;

/// Where a delta round starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaStart {
    /// A full round: every object, then a deltaLink.
    Scratch,
    /// An incremental round from a stored deltaLink.
    Link(String),
    /// No objects: just a deltaLink for changes from now on.
    Latest,
}

/// What a delta stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum DeltaEvent<T> {
    /// A page of changes (possibly empty); the same object may appear again later: last wins.
    Page(Vec<T>),
    /// Graph rejected the token (410 Gone, `code`) and the round restarted from scratch.
    /// Once it completes, whatever the round did not return no longer exists.
    /// The delta token was refused (`code`): the round starts again from scratch.
    Resync {
        /// Graph's error code.
        code: String,
    },
    /// The round is complete: persist this link (only now) for the next round.
    /// The round's last page came: keep `delta_link` for the next round.
    Complete {
        /// Where the next round starts.
        delta_link: String,
    },
}

impl<T> DeltaEvent<T> {
    /// The same event with its page's objects converted (e.g. to rows, as soon as they arrive).
    pub fn map<U>(self, f: impl FnOnce(Vec<T>) -> Vec<U>) -> DeltaEvent<U> {
        match self {
            DeltaEvent::Page(items) => DeltaEvent::Page(f(items)),
            DeltaEvent::Resync { code } => DeltaEvent::Resync { code },
            DeltaEvent::Complete { delta_link } => DeltaEvent::Complete { delta_link },
        }
    }
}

/// How many times one link may come back as its own nextLink before we call it a loop.
const MAX_REPEATS: u32 = 3;
/// Resyncs tolerated within one stream before giving up.
const MAX_RESYNCS: u32 = 3;

struct DeltaState {
    client: GraphClient,
    scratch: String,
    headers: Vec<(String, String)>,
    next: Option<String>,
    current: Option<String>,
    seen: HashSet<String>,
    repeats: u32,
    resyncs: u32,
    /// The deltaLink of a finished round, delivered after its last page.
    complete: Option<String>,
    done: bool,
}

/// A page's values, nextLink and deltaLink.
type PageParts = (Vec<Value>, Option<String>, Option<String>);

/// One page's values and its links (taken out of the body, not copied: pages are large).
fn split_page(mut body: Value) -> Result<PageParts, GraphError> {
    let values = match body.get_mut("value").map(Value::take) {
        Some(Value::Array(values)) => values,
        _ => {
            return Err(GraphError::BadResponse(
                "page without a 'value' array".into(),
            ));
        }
    };
    let link = |k: &str| body.get(k).and_then(Value::as_str).map(String::from);
    Ok((values, link("@odata.nextLink"), link("@odata.deltaLink")))
}

fn parse_all<T: GraphObject>(values: Vec<Value>) -> Result<Vec<T>, GraphError> {
    values
        .into_iter()
        .map(|v| {
            T::from_json(v)
                .map_err(|e| GraphError::BadResponse(format!("unexpected object shape: {e}")))
        })
        .collect()
}

/// A delta round over `scratch` (the path that starts a full round); `latest` is the
/// path that asks for a deltaLink only.
pub(crate) fn delta_stream<T: GraphObject>(
    client: GraphClient,
    scratch: String,
    latest: String,
    start: DeltaStart,
    headers: Vec<(String, String)>,
) -> BoxStream<'static, Result<DeltaEvent<T>, GraphError>> {
    let first = match start {
        DeltaStart::Scratch => scratch.clone(),
        DeltaStart::Link(l) => l,
        DeltaStart::Latest => latest,
    };
    let state = DeltaState {
        client,
        scratch,
        headers,
        next: Some(first),
        current: None,
        seen: HashSet::new(),
        repeats: 0,
        resyncs: 0,
        complete: None,
        done: false,
    };
    stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        if let Some(delta_link) = s.complete.take() {
            s.done = true;
            return Some((Ok(DeltaEvent::Complete { delta_link }), s));
        }
        let link = s.next.take()?;
        let headers: Vec<(&str, &str)> = s.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let fetched = match s.client.resolve(&link) {
            Ok(url) => s.client.get(&url, &headers).await,
            Err(e) => Err(e),
        };
        let event = match fetched.and_then(|f| split_page(f.body)) {
            Ok((values, next, delta)) => match parse_all::<T>(values) {
                Err(e) => Err(e),
                Ok(items) => match (next, delta) {
                    (Some(next), _) => match s.check_loop(&link, &next) {
                        Ok(()) => {
                            s.next = Some(next);
                            Ok(DeltaEvent::Page(items))
                        }
                        Err(e) => Err(e),
                    },
                    (None, Some(delta_link)) => {
                        s.complete = Some(delta_link);
                        Ok(DeltaEvent::Page(items))
                    }
                    (None, None) => Err(GraphError::BadResponse("delta page with neither nextLink nor deltaLink".into())),
                },
            },
            Err(GraphError::Resync { code, location }) => {
                s.resyncs += 1;
                if s.resyncs > MAX_RESYNCS {
                    Err(GraphError::Resync { code, location })
                } else {
                    tracing::warn!(%code, "delta token rejected; restarting the round from scratch");
                    s.seen.clear();
                    s.current = None;
                    s.repeats = 0;
                    // A Location we may not follow (outside the Graph root this client sends
                    // its token to) would fail every later round: start from scratch instead.
                    let location = location.filter(|l| s.client.resolve(l).is_ok());
                    s.next = Some(location.unwrap_or_else(|| s.scratch.clone()));
                    Ok(DeltaEvent::Resync { code })
                }
            }
            Err(e) => Err(e),
        };
        if event.is_err() {
            s.done = true;
        }
        Some((event, s))
    })
    .boxed()
}

impl DeltaState {
    /// A link that comes back as its own next one is fetched again a few times;
    /// one that returns to an earlier page is a loop.
    fn check_loop(&mut self, current: &str, next: &str) -> Result<(), GraphError> {
        self.current = Some(current.to_string());
        if next == current {
            self.repeats += 1;
            if self.repeats > MAX_REPEATS {
                return Err(GraphError::PagingLoop(next.to_string()));
            }
            return Ok(());
        }
        self.repeats = 0;
        self.seen.insert(current.to_string());
        if self.seen.contains(next) {
            return Err(GraphError::PagingLoop(next.to_string()));
        }
        Ok(())
    }
}

/// Follows `@odata.nextLink` through a paged collection, a page at a time.
pub(crate) fn paged<T: GraphObject>(
    client: GraphClient,
    first: String,
) -> BoxStream<'static, Result<Vec<T>, GraphError>> {
    let state = (client, Some(first), HashSet::<String>::new());
    stream::unfold(state, |(client, next, mut seen)| async move {
        let link = next?;
        let page = async {
            let url = client.resolve(&link)?;
            let fetched = client.get(&url, &[]).await?;
            let (values, next, _) = split_page(fetched.body)?;
            seen.insert(link.clone());
            if let Some(n) = next.as_ref().filter(|n| seen.contains(*n)) {
                return Err(GraphError::PagingLoop(n.clone()));
            }
            Ok((parse_all::<T>(values)?, next))
        }
        .await;
        match page {
            Ok((items, next)) => Some((Ok(items), (client, next, seen))),
            Err(e) => Some((Err(e), (client, None, seen))),
        }
    })
    .boxed()
}
