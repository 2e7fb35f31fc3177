//! Driving the coordinator's HTTP routes in process (tower `oneshot` on `Hub::router()`):
//! real requests and responses, real database rows.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use orbita_coordinator::accounts::{Role, User};
use orbita_coordinator::server::Hub;
use orbita_coordinator::Coordinator;
use serde_json::Value;
use tower::ServiceExt;

/// One answer: status, headers, JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `error` code of a JSON error body.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
    /// The `Set-Cookie` header.
    pub fn cookie(&self) -> Option<String> {
        self.headers
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// Credentials a request carries.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Bearer(String),
    Cookie(String),
}

/// The coordinator's HTTP routes.
pub struct Api {
    pub coordinator: Arc<Coordinator>,
    router: axum::Router,
}

impl Api {
    pub fn new(coordinator: Arc<Coordinator>) -> Api {
        let router = Hub::new(coordinator.clone()).router();
        Api {
            coordinator,
            router,
        }
    }

    /// Sends `method path` with a JSON `body` (or a raw one) and credentials.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        auth: &Auth,
        extra: &[(&str, &str)],
    ) -> Answer {
        let (status, headers, bytes) = self.bytes(method, path, body, auth, extra).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `GET path` with credentials: status, headers and the body's bytes (a download).
    pub async fn download(&self, path: &str, auth: &Auth) -> (StatusCode, HeaderMap, Vec<u8>) {
        self.bytes(Method::GET, path, None, auth, &[]).await
    }

    async fn bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        auth: &Auth,
        extra: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(path);
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => req = req.header(header::AUTHORIZATION, format!("Bearer {t}")),
            Auth::Cookie(t) => req = req.header(header::COOKIE, format!("orbita_session={t}")),
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let typed = extra
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        let req = match body {
            Some(b) if typed => req.body(Body::from(b)),
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap();
        (status, headers, bytes.to_vec())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: &Auth,
    ) -> Answer {
        self.raw(
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
            auth,
            &[],
        )
        .await
    }

    /// Logs in for a bearer token (panics unless it works).
    pub async fn token(&self, email: &str, password: &str) -> String {
        let a = self
            .call(
                Method::POST,
                "/api/auth/login",
                Some(serde_json::json!({"email": email, "password": password, "token": true})),
                &Auth::None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        a.body["token"].as_str().unwrap().to_string()
    }
}

/// An active account made directly (as `orbita admin create-user` does).
pub async fn make_user(c: &Coordinator, email: &str, role: Role) -> User {
    c.accounts()
        .create_user(email, "Test user", PASSWORD, role, c.now())
        .await
        .unwrap()
}

/// A bearer token of `email`'s account (password [`PASSWORD`]), logged in directly.
pub async fn bearer(c: &Coordinator, email: &str) -> Auth {
    Auth::Bearer(
        c.accounts()
            .login(email, PASSWORD, orbita_coordinator::now_ms())
            .await
            .unwrap()
            .token,
    )
}

/// The password of [`make_user`]'s accounts.
pub const PASSWORD: &str = "a long enough password";
