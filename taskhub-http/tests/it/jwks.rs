//! The JWKS and public-key routes, an independent verifier fed only the JWKS over a real
//! socket, and the rotation drill over HTTP.

use crate::app::TestApp;
use anyhow::Result;
use axum::http::{StatusCode, header};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain HTTP/1.1 GET over a real socket, returning the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("no body"))?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
    Ok(body.to_owned())
}

fn verify_independently(jwks_json: &str, token: &str) -> Result<Value> {
    let set: JwkSet = serde_json::from_str(jwks_json)?;
    let kid = jsonwebtoken::decode_header(token)?.kid.ok_or_else(|| anyhow::anyhow!("no kid"))?;
    let jwk = set.find(&kid).ok_or_else(|| anyhow::anyhow!("kid {kid} not in the JWKS"))?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&["taskhub"]);
    v.set_audience(&["taskhub-api"]);
    Ok(jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &v)?.claims)
}

#[tokio::test]
async fn jwks_and_public_key_describe_the_signing_key() -> Result<()> {
    let app = TestApp::new().await?;
    let r = app.call(axum::http::Method::GET, "/.well-known/jwks.json", None, None).await?;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("public, max-age=300"));
    assert!(r.body.get("data").is_none(), "raw JWKS, no envelope");
    let key = &r.body["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["use"].as_str(), key["alg"].as_str()),
        (Some("RSA"), Some("sig"), Some("RS256"))
    );
    assert!(key["n"].is_string() && key["e"] == "AQAB");
    let kid = key["kid"].as_str().unwrap_or_default().to_owned();
    assert_eq!(kid, taskhub_core::auth::keys::thumbprint(key["n"].as_str().unwrap_or_default(), "AQAB"));
    let r = app.call(axum::http::Method::GET, "/api/auth/public-key", None, None).await?;
    let d = &r.body["data"];
    assert_eq!(
        (d["key_id"].as_str(), d["algorithm"].as_str(), d["use"].as_str()),
        (Some(kid.as_str()), Some("RS256"), Some("sig"))
    );
    let pem = d["public_key"].as_str().unwrap_or_default();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    // The PEM verifies tokens too.
    app.register("alice").await?;
    let (access, _) = app.login("alice").await?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["taskhub-api"]);
    jsonwebtoken::decode::<Value>(&access, &DecodingKey::from_rsa_pem(pem.as_bytes())?, &v)?;
    Ok(())
}

#[tokio::test]
async fn an_independent_verifier_with_only_the_jwks_url_accepts_tokens_across_rotation() -> Result<()> {
    let app = TestApp::new().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(taskhub_http::run(listener, app.state.clone(), async move {
        let _ = stopped.await;
    }));
    app.register("alice").await?;
    let (before, _) = app.login("alice").await?;
    let claims = verify_independently(&http_get(addr, "/.well-known/jwks.json").await?, &before)?;
    assert_eq!((claims["sub"].is_string(), claims["token_type"].as_str()), (true, Some("access")));

    let old_kid = jsonwebtoken::decode_header(&before)?.kid.unwrap_or_default();
    let new_kid = app.state.auth.tokens().keys().rotate()?;
    let (after, _) = app.login("alice").await?;
    assert_eq!(jsonwebtoken::decode_header(&after)?.kid.as_deref(), Some(new_kid.as_str()));
    let jwks = http_get(addr, "/.well-known/jwks.json").await?;
    verify_independently(&jwks, &before)?;
    verify_independently(&jwks, &after)?;
    assert_eq!(app.get("/api/users/me/", &before).await?.status, StatusCode::OK, "old tokens keep working");
    // After the grace (every token of the old key has expired) the old kid leaves the JWKS.
    app.clock.advance(taskhub_core::auth::keys::DEFAULT_GRACE + chrono::Duration::seconds(1));
    let jwks = http_get(addr, "/.well-known/jwks.json").await?;
    assert!(!jwks.contains(&old_kid) && jwks.contains(&new_kid));
    stop.send(()).map_err(|()| anyhow::anyhow!("server gone"))?;
    server.await??;
    Ok(())
}

#[tokio::test]
async fn the_jwks_verifier_caches_and_refetches_unknown_kids_at_most_once_per_window() -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use taskhub_core::auth::{JwksVerifier, TokenSettings};
    let app = TestApp::new().await?;
    let fetches = Arc::new(AtomicUsize::new(0));
    let (count, state) = (fetches.clone(), app.state.clone());
    let issuer = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            count.fetch_add(1, Ordering::SeqCst);
            let set = state.auth.tokens().keys().jwks();
            async move { axum::Json(set) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, issuer).await });
    let verifier = JwksVerifier::new(format!("http://{addr}/jwks"), TokenSettings::default(), app.clock.clone())?
        .with_min_refetch(std::time::Duration::from_secs(30));
    app.register("alice").await?;
    let (token, _) = app.login("alice").await?;
    assert_eq!(verifier.verify(&token).await?.username, "alice");
    verifier.verify(&token).await?;
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "cached");
    // A flood of forged kids costs at most one refetch per window.
    let (kid, pem) = app.signing_pem()?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())?;
    for i in 0..25 {
        let mut h = jsonwebtoken::Header::new(Algorithm::RS256);
        h.kid = Some(format!("forged-{i}"));
        let claims = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_rsa_pem(app.state.auth.tokens().keys().public_key()?.1.as_bytes())?,
            &{
                let mut v = Validation::new(Algorithm::RS256);
                v.set_audience(&["taskhub-api"]);
                v
            },
        )?
        .claims;
        let forged = jsonwebtoken::encode(&h, &claims, &key)?;
        assert!(verifier.verify(&forged).await.is_err());
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "no refetch inside the window");
    // After a rotation, a token with the new kid makes the verifier refetch once the window allows.
    let new_kid = app.state.auth.tokens().keys().rotate()?;
    assert_ne!(new_kid, kid);
    let (rotated, _) = app.login("alice").await?;
    app.clock.advance(chrono::Duration::seconds(31));
    verifier.verify(&rotated).await?;
    verifier.verify(&token).await?;
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // Tampering is caught without the issuer.
    let mut parts: Vec<String> = rotated.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].replacen('e', "f", 1);
    assert!(verifier.verify(&parts.join(".")).await.is_err());
    Ok(())
}
