//! The command line other programs rely on: `account`, `token`, `schema`, `migrate`.

use std::process::Command;

use m365_integration::{auth::AuthKeys, config::Secret};

const BIN: &str = env!("CARGO_BIN_EXE_m365-integration");

fn run(args: &[&str], db: &str) -> (bool, String, String) {
    let out =
        Command::new(BIN).args(args).env("DATABASE_URL", db).env("AUTH_JWT_SECRET", "cli-secret").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn accounts_tokens_schema_and_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let (ok, out, _) = run(&["migrate"], &db);
    assert!(ok && out.contains("migrations applied"));
    let (ok, out, _) = run(&["account", "create", "--name", "Acme MSP"], &db);
    assert!(ok);
    let id: i64 = out.trim().parse().expect("prints the new account id");
    let (_, list, _) = run(&["account", "list"], &db);
    assert!(list.lines().any(|l| l.contains("Acme MSP") && l.contains("off")), "{list}");
    assert!(run(&["account", "enable-m365", &id.to_string()], &db).0);
    let (_, list, _) = run(&["account", "list"], &db);
    assert!(list.lines().any(|l| l.contains("Acme MSP") && l.contains("on")), "{list}");
    assert!(run(&["account", "disable-m365", &id.to_string()], &db).0);
    let (ok, _, err) = run(&["account", "enable-m365", "999"], &db);
    assert!(!ok && err.contains("no account with id 999"), "{err}");
    let (ok, _, err) = run(&["account", "create", "--name", "  "], &db);
    assert!(!ok && err.contains("--name"), "{err}");

    let (ok, token, _) = run(
        &[
            "token",
            "--account",
            &id.to_string(),
            "--user",
            "alice",
            "--permission",
            "manage_tenant_settings",
            "--ttl",
            "2h",
        ],
        &db,
    );
    assert!(ok);
    let caller = AuthKeys::new(&Secret::new("cli-secret")).verify(token.trim()).expect("a valid token");
    assert_eq!((caller.account_id, caller.user.as_str(), caller.can_manage()), (id, "alice", true));

    let (ok, sdl, _) = run(&["schema"], &db);
    assert!(ok);
    assert_eq!(sdl, m365_integration::graphql::sdl());
}

#[test]
fn serve_refuses_to_start_without_its_secrets() {
    let out = Command::new(BIN)
        .args(["serve", "--bind-addr", "127.0.0.1:0"])
        .env_remove("TOKEN_ENCRYPTION_KEY")
        .env("AUTH_JWT_SECRET", "x")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TOKEN_ENCRYPTION_KEY") && err.contains("openssl rand -base64 32"), "{err}");
}
