//! Coordinator WebSockets acting as a login end with it, on SQLite, PostgreSQL and MariaDB:
//! logout closes the sockets of that login session, a password change those of the account's
//! other sessions, rejection all of the account's, expiry the socket at the session's end;
//! each with close code 4401 and the reason, before any further verb is executed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use futures_util::{SinkExt, StreamExt};
use orbita_coordinator::accounts::ended::CLOSE_CODE;
use orbita_coordinator::accounts::Role;
use orbita_coordinator::clock::{Clock, MINUTE, SECOND};
use orbita_coordinator::{server, Coordinator};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::api::{make_user, Api, Auth, PASSWORD};
use crate::support::{self, Ws, T0};

on_every_backend!(
    logout_password_change_and_rejection_close_the_sockets,
    an_expired_login_closes_its_socket,
);

/// The coordinator serving on a loopback port; stop it with the sender.
async fn serve(
    c: &Arc<Coordinator>,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, c.clone(), None, async move {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// A client socket logged in with `header` (`cookie` or `authorization`) or `?token=`.
async fn socket(addr: SocketAddr, how: &str, token: &str) -> Ws {
    let url = match how {
        "query" => format!("ws://{addr}/coordinator?token={token}"),
        _ => format!("ws://{addr}/coordinator"),
    };
    let mut req = url.into_client_request().unwrap();
    match how {
        "cookie" => req
            .headers_mut()
            .insert("cookie", format!("orbita_session={token}").parse().unwrap()),
        "bearer" => req
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap()),
        _ => None,
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(support::recv(&mut ws).await["msg"], "WELCOME");
    ws
}

/// `CREATE_SESSION` of an app nobody offers: `UNKNOWN_RC` shows the verb ran as a logged-in
/// account (a guest gets `LOGIN_REQUIRED`).
fn create() -> Value {
    json!({"verb":"CREATE_SESSION","rc_name":"Nothing"})
}

async fn acts_as_login(ws: &mut Ws) {
    support::send(ws, create()).await;
    let answer = support::recv(ws).await;
    assert_eq!(answer["code"], "UNKNOWN_RC", "{answer}");
}

/// Sends a verb and expects, as the very next frame, the close with `reason` (so the verb
/// was not executed).
async fn closed_with(ws: &mut Ws, reason: &str) {
    let _ = ws.send(Message::Text(create().to_string().into())).await;
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("nothing within 10 s")
        .expect("the stream ended without a close frame")
        .expect("websocket error");
    let Message::Close(Some(close)) = frame else {
        panic!("expected a close frame ({reason}), got {frame:?}");
    };
    assert_eq!(u16::from(close.code), CLOSE_CODE);
    assert_eq!(close.reason.as_str(), reason);
}

async fn login_token(api: &Api, email: &str, password: &str) -> String {
    let a = api
        .call(
            Method::POST,
            "/api/auth/login",
            Some(json!({"email": email, "password": password})),
            &Auth::None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let cookie = a.cookie().unwrap();
    cookie
        .strip_prefix("orbita_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

async fn logout_password_change_and_rejection_close_the_sockets(url: String) {
    let c = Arc::new(support::coordinator(&url, |_| {}).await);
    let (addr, stop, task) = serve(&c).await;
    let api = Api::new(c.clone());
    make_user(&c, "ann@example.com", Role::Agent).await;
    let bob = make_user(&c, "bob@example.com", Role::Agent).await;
    make_user(&c, "root@example.com", Role::Admin).await;
    let (t1, t2, t3) = (
        login_token(&api, "ann@example.com", PASSWORD).await,
        login_token(&api, "ann@example.com", PASSWORD).await,
        login_token(&api, "ann@example.com", PASSWORD).await,
    );
    let tb = login_token(&api, "bob@example.com", PASSWORD).await;
    let mut ws1 = socket(addr, "cookie", &t1).await;
    let mut ws2 = socket(addr, "bearer", &t2).await;
    let mut ws3 = socket(addr, "query", &t3).await;
    let mut wsb = socket(addr, "cookie", &tb).await;
    for ws in [&mut ws1, &mut ws2, &mut ws3, &mut wsb] {
        acts_as_login(ws).await;
    }

    // Logout ends the sockets of that login session only.
    let a = api
        .call(Method::POST, "/api/auth/logout", None, &Auth::Cookie(t1))
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    closed_with(&mut ws1, "logged out").await;
    acts_as_login(&mut ws2).await;

    // A password change (from session 3) ends the account's other sessions and sockets.
    let a = api
        .call(
            Method::POST,
            "/api/auth/password",
            Some(json!({"old_password": PASSWORD, "new_password": "another long password"})),
            &Auth::Bearer(t3.clone()),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    closed_with(&mut ws2, "password changed").await;
    acts_as_login(&mut ws3).await;
    acts_as_login(&mut wsb).await;
    let me = api
        .call(Method::GET, "/api/auth/me", None, &Auth::Bearer(t2))
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);

    // Rejection ends every session of the account.
    let admin = api.token("root@example.com", PASSWORD).await;
    let a = api
        .call(
            Method::POST,
            &format!("/api/admin/users/{}/reject", bob.id),
            Some(json!({"reason": "not one of ours"})),
            &Auth::Bearer(admin),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    closed_with(&mut wsb, "account rejected").await;
    acts_as_login(&mut ws3).await;

    let _ = stop.send(());
    drop((ws1, ws2, ws3, wsb));
    task.await.unwrap().unwrap();
}

async fn an_expired_login_closes_its_socket(url: String) {
    // The coordinator's clock is moved by hand: the session ends when it says so.
    let clock = Clock::manual(T0);
    let c = Arc::new(
        support::coordinator(&url, |s| s.session_hours = 1)
            .await
            .with_clock(clock.clone()),
    );
    let (addr, stop, task) = serve(&c).await;
    make_user(&c, "ann@example.com", Role::Agent).await;
    let token = c
        .accounts()
        .login("ann@example.com", PASSWORD, T0)
        .await
        .unwrap()
        .token;
    let mut ws = socket(addr, "bearer", &token).await;
    clock.advance(60 * MINUTE - 10 * SECOND);
    acts_as_login(&mut ws).await;
    clock.advance(10 * SECOND);
    closed_with(&mut ws, "login expired").await;
    let _ = stop.send(());
    drop(ws);
    task.await.unwrap().unwrap();
}
