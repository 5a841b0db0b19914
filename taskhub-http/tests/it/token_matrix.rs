//! The token matrix: over a thousand generated bad tokens, every one answered 401.

use crate::app::TestApp;
use anyhow::Result;
use axum::http::StatusCode;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

fn rs(kid: &str) -> Header {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    h
}

/// Replaces the character at `i` of `s` with another base64url character.
fn flip(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    if let Some(c) = b.get_mut(i) {
        *c = if *c == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8(b).unwrap_or_default()
}

#[tokio::test]
async fn over_a_thousand_bad_tokens_are_all_refused() -> Result<()> {
    let app = TestApp::new().await?;
    let (uid, good) = app.user("alice").await?;
    let (_, refresh) = app.login("alice").await?;
    let (kid, pem) = app.signing_pem()?;
    let key = EncodingKey::from_rsa_pem(pem.as_bytes())?;
    let attacker_dir = std::env::temp_dir().join(format!("taskhub-attacker-{}", uuid::Uuid::now_v7().simple()));
    let attacker_ring =
        taskhub_core::auth::KeyRing::open(&attacker_dir, std::sync::Arc::new(taskhub_core::clock::SystemClock))?;
    let (attacker_kid, _) = attacker_ring.public_key()?;
    let attacker = EncodingKey::from_rsa_pem(
        std::fs::read_to_string(attacker_dir.join(format!("{attacker_kid}.pem")))?.as_bytes(),
    )?;
    let (_, public_pem) = app.state.auth.tokens().keys().public_key()?;
    let now = chrono::Utc::now().timestamp();
    let base = json!({"iss": "taskhub", "aud": "taskhub-api", "sub": uid.to_string(), "username": "alice", "is_staff": false,
        "iat": now, "nbf": now, "exp": now + 900, "jti": uuid::Uuid::now_v7().to_string(), "token_type": "access"});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let sign = |h: &Header, c: &Value, k: &EncodingKey| jsonwebtoken::encode(h, c, k).unwrap_or_default();

    // The control: correctly signed claims are accepted, so every refusal below is the flaw's.
    let control = sign(&rs(&kid), &base, &key);
    assert_eq!(app.get("/api/users/me/", &control).await?.status, StatusCode::OK);
    assert_eq!(app.get("/api/users/me/", &good).await?.status, StatusCode::OK);

    let mut bad: Vec<(&str, String)> = Vec::new();
    let payload = b64(base.to_string().as_bytes());
    for h in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": kid}),
        json!({"alg": "None", "typ": "JWT"}),
        json!({"alg": "NONE", "kid": kid}),
    ] {
        let head = b64(h.to_string().as_bytes());
        bad.push(("alg none", format!("{head}.{payload}.")));
        bad.push(("alg none", format!("{head}.{payload}")));
        bad.push(("alg none", format!("{head}.{payload}.{}", b64(b"sig"))));
    }
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        for secret in [public_pem.as_bytes(), public_pem.trim().as_bytes(), pem.as_bytes()] {
            let mut h = Header::new(alg);
            h.kid = Some(kid.clone());
            bad.push(("HMAC with a key as secret", sign(&h, &base, &EncodingKey::from_secret(secret))));
        }
    }
    for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512] {
        let mut h = Header::new(alg);
        h.kid = Some(kid.clone());
        bad.push(("other RSA algorithm", sign(&h, &base, &key)));
    }
    for i in 0..40 {
        bad.push(("wrong iss", sign(&rs(&kid), &with("iss", json!(format!("issuer-{i}"))), &key)));
        bad.push(("wrong aud", sign(&rs(&kid), &with("aud", json!(format!("audience-{i}"))), &key)));
        bad.push(("expired", sign(&rs(&kid), &with("exp", json!(now - 31 - i * 60)), &key)));
        bad.push(("nbf in the future", sign(&rs(&kid), &with("nbf", json!(now + 31 + i * 60)), &key)));
        bad.push(("unknown kid", sign(&rs(&format!("kid-{i}-{}", uuid::Uuid::now_v7())), &base, &key)));
        bad.push(("attacker key with our kid", sign(&rs(&kid), &with("jti", json!(i.to_string())), &attacker)));
    }
    bad.push(("attacker key with its kid", sign(&rs(&attacker_kid), &base, &attacker)));
    for t in ["refresh", "id", "ACCESS", "Access", "", "admin"] {
        bad.push(("wrong token_type", sign(&rs(&kid), &with("token_type", json!(t)), &key)));
    }
    bad.push(("a refresh token", refresh.clone()));
    bad.push(("no kid", sign(&Header::new(Algorithm::RS256), &base, &key)));
    for url in ["https://evil.example/jwks.json", "http://127.0.0.1:1/keys", "file:///etc/passwd", ""] {
        let mut h = rs(&kid);
        h.jku = Some(url.into());
        bad.push(("jku header", sign(&h, &base, &key)));
        let mut h = rs(&kid);
        h.x5u = Some(url.into());
        bad.push(("x5u header", sign(&h, &base, &key)));
    }
    let mut h = rs(&kid);
    h.x5c = Some(vec!["MIIB".into()]);
    bad.push(("x5c header", sign(&h, &base, &key)));
    let mut h = rs(&kid);
    h.crit = Some(vec!["exp".into()]);
    bad.push(("crit header", sign(&h, &base, &key)));
    for claim in ["exp", "nbf", "iat", "iss", "aud", "sub", "token_type", "jti", "username", "is_staff"] {
        let mut c = base.clone();
        if let Some(o) = c.as_object_mut() {
            o.remove(claim);
        }
        bad.push(("missing claim", sign(&rs(&kid), &c, &key)));
    }
    for sub in [json!("abc"), json!("999999"), json!(uid), json!(""), json!("-1"), json!(null)] {
        bad.push(("bad subject", sign(&rs(&kid), &with("sub", sub), &key)));
    }
    bad.push(("oversized", sign(&rs(&kid), &with("pad", json!("x".repeat(9000))), &key)));
    for g in
        ["", "abc", "a.b", "a.b.c", "a.b.c.d", "....", "Bearer", " ", "eyJhbGciOiJSUzI1NiJ9", "null", "\u{1F600}.x.y"]
    {
        bad.push(("garbage", g.to_owned()));
    }
    let parts: Vec<&str> = control.split('.').collect();
    let (head, body, sig) = (parts[0], parts[1], parts[2]);
    bad.push(("segments swapped", format!("{body}.{head}.{sig}")));
    bad.push(("signature removed", format!("{head}.{body}.")));
    bad.push(("signature of another token", format!("{head}.{body}.{}", good.split('.').nth(2).unwrap_or_default())));
    for i in 0..body.len().min(420) {
        bad.push(("tampered payload", format!("{head}.{}.{sig}", flip(body, i))));
    }
    for i in 0..sig.len().min(340) {
        bad.push(("tampered signature", format!("{head}.{body}.{}", flip(sig, i))));
    }
    for i in 0..head.len() {
        bad.push(("tampered header", format!("{}.{body}.{sig}", flip(head, i))));
    }

    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for (kind, token) in &bad {
        let req = axum::http::Request::get("/api/users/me/").header("authorization", format!("Bearer {token}"));
        let req = match req.body(axum::body::Body::empty()) {
            Ok(r) => r,
            // A token that cannot even be put in a header is refused by any HTTP stack.
            Err(_) => {
                *by_kind.entry(kind).or_default() += 1;
                continue;
            }
        };
        let r = app.send(req).await?;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{kind}: {token:.80} → {} {}", r.status, r.body);
        assert_eq!(r.body["error"]["code"], "unauthenticated");
        assert!(r.headers.get("www-authenticate").is_some());
        *by_kind.entry(kind).or_default() += 1;
    }
    let _ = std::fs::remove_dir_all(&attacker_dir);
    println!("token matrix: {} bad tokens, every one 401", bad.len());
    for (kind, n) in &by_kind {
        println!("  {n:>4}  {kind}");
    }
    assert!(bad.len() >= 1000, "only {} tokens", bad.len());
    Ok(())
}
