//! The coordinator's grants on the recordings' list and downloads (`/api/recordings...`):
//! nodes keep no accounts, so a browser shows the grant the coordinator signed for its
//! logged-in account (`GET /api/recordings/grant`, [`orbita_coordinator::grant`]) as the
//! bearer token, or as `?grant=` on a download link. A valid grant makes its account the
//! [`Viewer`]; a bad or expired one is refused (`401 bad_grant`). The list is read by the
//! front's page from each node, so these routes allow any origin: they are authorised by the
//! grant alone, never by a cookie.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orbita_coordinator::grant;

use crate::http::ApiError;
use crate::recording_files::Viewer;

/// The grant a request shows: `Authorization: Bearer g1...` or `?grant=g1...`.
fn shown_grant<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let in_query = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("grant=")));
    bearer.or(in_query).filter(|t| grant::is_grant(t))
}

fn allow_any_origin(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

/// The middleware (state: the cluster secret).
pub async fn grant_viewer(
    State(secret): State<Arc<str>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with("/api/recordings") {
        return next.run(request).await;
    }
    if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        allow_any_origin(&mut response);
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, range"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return response;
    }
    if let Some(token) = shown_grant(request.headers(), request.uri().query()) {
        let now = crate::recording_store::now_ms();
        let Some(viewer) = grant::verify(&secret, token, now) else {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_grant",
                "this link to the recordings is not valid or has expired; open the Recordings page again",
            )
            .into_response();
            allow_any_origin(&mut response);
            return response;
        };
        request.extensions_mut().insert(Viewer {
            account: viewer.account,
            all: viewer.all,
            admin: viewer.admin,
        });
    }
    let mut response = next.run(request).await;
    allow_any_origin(&mut response);
    response
}
