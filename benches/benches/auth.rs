//! Authentication benchmarks: token sign, token verify with the revocation check (one read of
//! the user's state and the token's revocation), and argon2id hash/verify at OWASP parameters.
//!
//! `cargo bench -p taskhub-benches --bench auth --features postgres`
#![expect(clippy::panic, reason = "a benchmark has no caller to report to: a broken set-up aborts it")]

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use taskhub_benches::{Dataset, Engine};
use taskhub_core::auth::{AuthService, KeyRing, PasswordHasher, TokenSettings, TokenType};

fn auth(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let dir = std::env::temp_dir().join(format!("taskhub-bench-keys-{}", std::process::id()));
    let mut g = c.benchmark_group("auth");
    let mut engines = vec![Engine::Sqlite];
    if cfg!(feature = "postgres") {
        engines.push(Engine::Postgres);
    }
    for engine in engines {
        let ds = rt.block_on(Dataset::open(engine, 10_000)).unwrap_or_else(|e| panic!("data set: {e:#}"));
        let keys = Arc::new(KeyRing::open(&dir, ds.services.ctx.clock.clone()).unwrap_or_else(|e| panic!("keys: {e}")));
        let svc = AuthService::new(ds.services.ctx.clone(), keys, TokenSettings::default(), PasswordHasher::default());
        let (pair, _) = rt.block_on(svc.login("bench0", "bench password")).unwrap_or_else(|e| panic!("login: {e}"));
        if engine == Engine::Sqlite {
            g.bench_function("token_sign", |b| {
                b.iter(|| {
                    svc.tokens().sign(1, "bench0", false, TokenType::Access, None).unwrap_or_else(|e| panic!("{e}"))
                });
            });
            g.bench_function("token_verify_signature_only", |b| {
                b.iter(|| svc.tokens().verify(&pair.access, TokenType::Access).unwrap_or_else(|e| panic!("{e}")));
            });
        }
        g.bench_function(format!("token_verify_with_revocation_check/{engine:?}"), |b| {
            b.to_async(&rt).iter(|| async { svc.authenticate(&pair.access).await.unwrap_or_else(|e| panic!("{e}")) });
        });
    }
    let hasher = PasswordHasher::default();
    let hash = rt.block_on(hasher.hash("correct horse battery")).unwrap_or_else(|e| panic!("{e}"));
    g.sample_size(20);
    g.bench_function("password_hash_argon2id_owasp", |b| {
        b.to_async(&rt).iter(|| async { hasher.hash("correct horse battery").await.unwrap_or_else(|e| panic!("{e}")) });
    });
    g.bench_function("password_verify_argon2id_owasp", |b| {
        b.to_async(&rt).iter(|| async {
            hasher.verify(Some(&hash), "correct horse battery").await.unwrap_or_else(|e| panic!("{e}"))
        });
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4));
    targets = auth
}
criterion_main!(benches);
