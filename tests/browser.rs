//! The console and GraphiQL in a real browser: headless Chromium (Debian's `chromium`) driven
//! over WebDriver (`chromedriver`) against the app and the Microsoft emulator, as a person would
//! use them. Screenshots of each screen land in `target/screenshots/`.
//!
//! The browser reaches nothing but 127.0.0.1: every other host goes to a proxy that does not
//! exist and resolves to nothing, and each page's resource list is checked.
//!
//! Without `chromedriver` on the machine these tests say so and pass, unless
//! `M365_BROWSER_TESTS=required` (set by `.ci/run`, which installs Chromium) makes it a failure.

#[allow(dead_code)] // the API tests' helpers; this file uses a few
#[path = "api/helpers.rs"]
mod helpers;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use m365_emulator::{AuthorizeMode, world::TenantKnobs};
use m365_integration::microsoft::roles;
use serde_json::{Value, json};

use crate::helpers::{TestApp, data};

const WAIT: Duration = Duration::from_secs(40);

/// One browser at a time: two cores run the app, the emulator and Chromium.
static BROWSER_SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A chromedriver process on a free port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMEDRIVER").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromedriver".into());
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("M365_BROWSER_TESTS").as_deref() != Ok("required"),
        "M365_BROWSER_TESTS=required but there is no chromedriver at {} (apt-get install chromium chromium-driver)",
        path.display()
    );
    eprintln!(
        "SKIPPED: browser tests need Chromium and ChromeDriver (apt-get install chromium chromium-driver); \
         .ci/run installs them and requires these tests"
    );
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_driver(path: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver { child, url };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/status", driver.url)).await
            && r.status().is_success()
        {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A headless Chromium session at 1280×800 that can reach only 127.0.0.1.
async fn browser(driver: &Driver) -> Client {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let caps = json!({
        "browserName": "chrome",
        "goog:loggingPrefs": {"browser": "ALL"},
        "goog:chromeOptions": {
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,800", "--hide-scrollbars", "--force-device-scale-factor=1",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--lang=en-US",
                // Nothing beyond loopback (which Chromium never proxies): other hosts resolve to
                // nothing and go to a proxy that is not there.
                "--proxy-server=http://127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ],
        },
    });
    let serde_json::Value::Object(caps) = caps else { unreachable!() };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let c = ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a Chromium session");
    // --window-size counts the window's frame: make the page itself 1280×800.
    let frame = c.execute("return [outerWidth - innerWidth, outerHeight - innerHeight]", vec![]).await.unwrap();
    let (w, h) = (frame[0].as_u64().unwrap_or(0) as u32, frame[1].as_u64().unwrap_or(0) as u32);
    c.set_window_size(1280 + w, 800 + h).await.unwrap();
    c
}

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A screenshot of a screen of ours, which must have logged no error and labelled every control.
async fn screen(c: &Client, driver: &Driver, name: &str) {
    shot(c, name).await;
    console_is_clean(c, driver).await;
    controls_are_labelled(c).await;
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// Evaluates `expr` in the page until it is truthy; returns its value.
async fn until(c: &Client, what: &str, expr: &str) -> Value {
    let script = format!("return ({expr}) || null;");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(v) = c.execute(&script, vec![]).await
            && !v.is_null()
            && v != json!(false)
        {
            return v;
        }
        if Instant::now() > deadline {
            let _ = shot(c, &format!("failed-{}", what.replace(' ', "-"))).await;

            let text = c.execute("return document.body.innerText", vec![]).await.unwrap_or_default();
            panic!("timed out waiting for {what} ({expr}); the page says:\n{}", text.as_str().unwrap_or(""));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The banner's text, once it matches the regular expression `re` (a JavaScript one).
async fn banner(c: &Client, re: &str) -> String {
    let expr = format!(
        "document.querySelector('#banner .alert') && /{re}/.test(document.querySelector('#banner .alert').innerText) && document.querySelector('#banner .alert').innerText"
    );
    until(c, &format!("a banner matching /{re}/"), &expr).await.as_str().unwrap().to_owned()
}

/// The text of the first element matching `css`, once there is one.
async fn text_of(c: &Client, css: &str) -> String {
    let expr = format!("document.querySelector({css:?}) && document.querySelector({css:?}).innerText");
    until(c, &format!("text of {css}"), &expr).await.as_str().unwrap().to_owned()
}

async fn click(c: &Client, css: &str) {
    until(
        c,
        &format!("{css} to be clickable"),
        &format!("document.querySelector({css:?}) && !document.querySelector({css:?}).disabled"),
    )
    .await;
    c.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

/// What the browser's console said since the last call: an error, a refused request or a
/// Content-Security-Policy violation fails the test.
async fn console_is_clean(c: &Client, driver: &Driver) {
    let id = c.session_id().await.unwrap().unwrap();
    let r: Value = reqwest::Client::new()
        .post(format!("{}/session/{id}/se/log", driver.url))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bad: Vec<&str> = r["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["level"] == "SEVERE" || e["message"].as_str().unwrap_or("").contains("Content Security Policy"))
        .filter_map(|e| e["message"].as_str())
        // The emulator's consent page names no icon and the emulator serves none (ours does).
        .filter(|m| !m.contains("/favicon.ico - Failed to load resource"))
        .collect();
    assert!(bad.is_empty(), "the browser's console reported: {bad:#?}");
}

/// Every form control has a name a screen reader reads (a label, `aria-label` or
/// `aria-labelledby`) and every button says what it does.
async fn controls_are_labelled(c: &Client) {
    let unnamed = c
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, button, a[href]')]
               .filter(e => e.offsetParent !== null)
               .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')
                              || (e.tagName !== 'INPUT' && e.tagName !== 'SELECT' && e.innerText.trim())))
               .map(e => e.outerHTML.slice(0, 120))",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unnamed, json!([]), "controls without an accessible name");
}

/// Every resource the page loaded came from `origin`.
async fn only_from(c: &Client, origin: &str) {
    let urls = c
        .execute("return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])", vec![])
        .await
        .unwrap();
    for u in urls.as_array().unwrap() {
        let u = u.as_str().unwrap();
        assert!(u.starts_with(origin) || u.starts_with(&origin.replace("http", "ws")), "the page loaded {u}");
    }
}

/// The app on a fixed port whose `FRONTEND_URL` is its own console, with the emulator showing
/// its consent page and answering Graph slowly enough for progress to be seen.
async fn console_app() -> TestApp {
    let port = free_port();
    let app = TestApp::spawn_with(|c| {
        c.bind_addr = format!("127.0.0.1:{port}").parse().unwrap();
        c.frontend_url = Some(url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap());
    })
    .await;
    app.emu.state.set_authorize(AuthorizeMode::Page);
    app
}

/// Clients named after the emulated tenants, so each tenant has a suggested match.
async fn seed_clients(app: &TestApp, token: &str) {
    let tenants: Vec<(String, String)> = {
        let g = app.emu.state.lock();
        g.world.customers().iter().map(|t| (t.display_name.clone(), t.default_domain().to_owned())).collect()
    };
    let clients: Vec<Value> = tenants
        .iter()
        .enumerate()
        .map(|(i, (name, domain))| json!({"source": "psa", "externalId": format!("c{i}"), "name": name, "domains": [domain]}))
        .collect();
    app.upsert_clients(token, json!(clients)).await;
}

/// Graph answers each tenant's requests after `ms`, and the last tenant's MFA cannot be read
/// (no Entra ID P1, and a relationship whose roles Microsoft does not accept for methods).
fn slow_tenants_one_without_mfa(app: &TestApp, ms: u64) {
    let ids: Vec<String> = app.emu.state.lock().world.customers().iter().map(|t| t.id.clone()).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut knobs = TenantKnobs { latency_ms: ms, ..Default::default() };
        if i == ids.len() - 1 {
            knobs.p1 = Some(false);
            knobs.roles = Some(vec![roles::DIRECTORY_READERS.into(), roles::USER_ADMINISTRATOR.into()]);
        }
        app.emu.state.set_tenant_knobs(id, knobs);
    }
}

/// A browser on the console's app, with an account of the Microsoft 365 tab on; `None` (the tests
/// pass, saying so) without chromedriver.
struct Session {
    c: Client,
    driver: Driver,
    app: TestApp,
    account: i64,
    /// Held for the whole test: one browser at a time.
    _slot: tokio::sync::MutexGuard<'static, ()>,
}

async fn session() -> Option<Session> {
    let path = chromedriver()?;
    let _slot = BROWSER_SLOT.lock().await;
    let app = console_app().await;
    let account = app.account("Browser MSP", true).await;
    let driver = start_driver(&path).await;
    let c = browser(&driver).await;
    Some(Session { c, driver, app, account, _slot })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_follows_the_guide_end_to_end() {
    let Some(Session { c, driver, app, account, _slot }) = session().await else { return };
    let admin = app.admin_token(account);
    seed_clients(&app, &admin).await;
    slow_tenants_one_without_mfa(&app, 250);
    let origin = app.url("");

    // Signed in from the link `demo` prints; the token leaves the address bar at once.
    c.goto(&app.url(&format!("/#token={admin}"))).await.unwrap();
    let helper = text_of(&c, ".helper").await;
    assert_eq!(helper, "Connect your Partner Center account to sync M365 user data, MFA status, and license info.");
    let url = c.current_url().await.unwrap();
    assert!(!url.as_str().contains(&admin), "the token stayed in the URL: {url}");
    assert_eq!(text_of(&c, "#connect").await, "Connect M365");
    only_from(&c, &origin).await;
    screen(&c, &driver, "01-m365-not-connected").await;

    // Connect M365 → Microsoft's (the emulator's) consent page → Accept as the Global Administrator.
    click(&c, "#connect").await;
    until(&c, "the consent page", "document.title === 'Permissions requested'").await;
    shot(&c, "02-consent").await;
    let admin_radio = c.find(Locator::Css("input[name=user]")).await.unwrap();
    assert_eq!(admin_radio.prop("checked").await.unwrap().as_deref(), Some("true"));
    c.find(Locator::Css("button[value=accept]")).await.unwrap().click().await.unwrap();

    // Back in the console: the guide's message, the query gone from the address bar, and the
    // first sync's progress arriving live over the subscription.
    banner(&c, "^Microsoft 365 is connected\\.").await;
    until(&c, "the query to leave the URL", "!location.search").await;
    c.execute(
        "window.__seen = [];
         const look = () => { const p = document.querySelector('#tenants-progress'); const b = document.querySelector('#progress h3 .badge');
           if (p && b) { const s = b.innerText + ' ' + p.innerText; if (window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s); } };
         look(); new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});",
        vec![],
    )
    .await
    .unwrap();
    assert!(text_of(&c, "#conn-status").await.contains("connected"));
    until(
        &c,
        "the first sync to finish",
        "document.querySelector('#progress h3') && /partial/.test(document.querySelector('#progress h3').innerText)",
    )
    .await;
    let seen: Vec<String> = serde_json::from_value(c.execute("return window.__seen", vec![]).await.unwrap()).unwrap();
    let total = app.emu.state.lock().world.customers().len();
    assert!(seen.iter().any(|s| s.starts_with("running")), "no running state was shown: {seen:?}");
    assert!(seen.len() >= 3, "progress did not move live: {seen:?}");
    assert_eq!(seen.last().unwrap(), &format!("partial {total} of {total} tenants"), "{seen:?}");
    let rows = c.find_all(Locator::Css("#tenant-results tbody tr")).await.unwrap();
    assert_eq!(rows.len(), total);
    // The tenant whose MFA could not be read says what to do about it.
    let results = text_of(&c, "#tenant-results").await;
    assert!(results.contains("User Administrator"), "no remediation shown: {results}");
    until(&c, "Connected Customers", "document.querySelectorAll('#customers tbody tr').length > 0").await;
    screen(&c, &driver, "03-m365-synced").await;

    // Tenant Mapping: map one tenant from its suggestion.
    click(&c, "a[href='#/mapping']").await;
    assert_eq!(text_of(&c, "#count-total").await, total.to_string());
    assert_eq!(text_of(&c, "#count-unmapped").await, total.to_string());
    screen(&c, &driver, "04-mapping").await;
    click(&c, "#tenants tbody tr button").await; // Map on the first row
    let dialog = text_of(&c, "dialog[open]").await;
    assert!(
        dialog.contains("Suggested Matches") && dialog.contains("confidence") && dialog.contains("Select Client"),
        "{dialog}"
    );
    screen(&c, &driver, "05-map-dialog").await;
    click(&c, "#create-mapping").await;
    banner(&c, "is mapped to").await;
    until(&c, "Mapped to read 1", "document.querySelector('#count-mapped').innerText === '1'").await;

    // Map Selected: tick two unmapped tenants and map them in bulk.
    until(&c, "checkboxes", "document.querySelectorAll('input[data-tenant]').length >= 2").await;
    let boxes = c.find_all(Locator::Css("input[data-tenant]")).await.unwrap();
    boxes[0].click().await.unwrap();
    boxes[1].click().await.unwrap();
    assert_eq!(text_of(&c, "#map-selected").await, "Map Selected (2)");
    click(&c, "#map-selected").await;
    click(&c, "#confirm-bulk").await;
    banner(&c, "^2 tenants mapped\\.").await;
    until(&c, "Mapped to read 3", "document.querySelector('#count-mapped').innerText === '3'").await;
    assert_eq!(text_of(&c, "#count-unmapped").await, (total - 3).to_string());
    let stored = data(app.gql(Some(&admin), "{ m365TenantMappingSummary { mapped } }", json!({})).await);
    assert_eq!(stored["m365TenantMappingSummary"]["mapped"], 3);

    // Search finds the one left; its suggestion is accepted at 80 % or more.
    let left = data(
        app.gql(Some(&admin), "{ m365Tenants(filter: {mapped: false}) { edges { node { displayName } } } }", json!({}))
            .await,
    );
    let left = left["m365Tenants"]["edges"][0]["node"]["displayName"].as_str().unwrap().to_owned();
    c.find(Locator::Css("#tenant-search")).await.unwrap().send_keys(&left).await.unwrap();
    until(&c, "the search", "document.querySelectorAll('#tenants tbody tr').length === 1").await;
    assert!(text_of(&c, "#tenants tbody tr").await.contains(&left));
    click(&c, "input[data-tenant]").await;
    click(&c, "#accept-suggestions").await;
    banner(&c, "^1 suggestion at 80% or more accepted\\.").await;
    until(&c, "Mapped to read 4", "document.querySelector('#count-mapped').innerText === '4'").await;

    // The mapped filter, and unmapping one.
    let backspaces: String = std::iter::repeat_n(char::from(fantoccini::key::Key::Backspace), left.len()).collect();
    c.find(Locator::Css("#tenant-search")).await.unwrap().send_keys(&backspaces).await.unwrap();
    c.find(Locator::Css("#mapped-filter")).await.unwrap().select_by_value("true").await.unwrap();
    until(&c, "the mapped filter", &format!("document.querySelectorAll('#tenants tbody tr').length === {total}")).await;
    screen(&c, &driver, "06-mapping-done").await;
    click(&c, "#tenants tbody tr button.danger").await;
    banner(&c, "is unmapped\\.").await;
    until(&c, "Mapped to read 3", "document.querySelector('#count-mapped').innerText === '3'").await;

    // Users and MFA: users, coverage per tenant, the trend from evidence snapshots.
    click(&c, "a[href='#/users']").await;
    let users_total =
        data(app.gql(Some(&admin), "{ m365Users { totalCount } }", json!({})).await)["m365Users"]["totalCount"]
            .as_i64()
            .unwrap();
    assert_eq!(text_of(&c, "#users-count").await, format!("({users_total})"));
    until(&c, "a bar per tenant", &format!("document.querySelectorAll('#coverage-bars .bar').length === {total}"))
        .await;
    until(&c, "the coverage trend", "document.querySelector('.trend svg circle')").await;
    only_from(&c, &origin).await;
    screen(&c, &driver, "07-users-mfa").await;
    // A filter narrows the list to what the API says.
    c.find(Locator::Css("#f-mfa")).await.unwrap().select_by_value("DISABLED").await.unwrap();
    let disabled = data(
        app.gql(Some(&admin), "{ m365Users(filter: {mfaStatus: DISABLED}) { totalCount } }", json!({})).await,
    )["m365Users"]["totalCount"]
        .as_i64()
        .unwrap();
    until(&c, "the MFA filter", &format!("document.querySelector('#users-count').innerText === '({disabled})'")).await;

    // Trigger Sync: the run starts and the 30-second cooldown counts down on the button's note.
    click(&c, "a[href='#/m365']").await;
    until(&c, "the last run", "document.querySelector('#progress h3')").await;
    c.execute("window.__seen = []", vec![]).await.unwrap();
    click(&c, "#trigger-sync").await;
    let note = text_of(&c, "#cooldown").await;
    assert!(note.contains("available again in") || note.contains("in progress"), "{note}");
    until(
        &c,
        "the cooldown countdown",
        "/available again in \\d+ s/.test(document.querySelector('#cooldown').innerText)",
    )
    .await;
    let first = text_of(&c, "#cooldown").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = text_of(&c, "#cooldown").await;
    let secs = |s: &str| -> u32 {
        let rest = &s[s.find("again in ").expect("a countdown") + "again in ".len()..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    assert!(secs(&later) < secs(&first) && secs(&first) <= 30, "{first} → {later}");
    assert!(c.find(Locator::Css("#trigger-sync")).await.unwrap().attr("disabled").await.unwrap().is_some());
    // The new run's progress arrived live too (the observer installed above still watches).
    until(&c, "the triggered run's progress", "window.__seen.some(s => s.startsWith('running'))").await;
    until(&c, "the triggered run's end", "/^partial/.test(window.__seen[window.__seen.length - 1])").await;
    screen(&c, &driver, "08-cooldown").await;

    // Disconnect: the confirmation says what goes, then the counts of what went.
    click(&c, "#disconnect").await;
    let confirm = text_of(&c, "dialog[open]").await;
    assert!(confirm.contains("user records, license records, and tenant-to-client mappings"), "{confirm}");
    assert!(confirm.contains("stored authorization"), "{confirm}");
    screen(&c, &driver, "09-disconnect-confirm").await;
    click(&c, "dialog[open] button.danger").await;
    let done = text_of(&c, "#disconnected").await;
    assert!(done.contains(&format!("{total} tenants")) && done.contains("3 mappings removed"), "{done}");
    until(
        &c,
        "Connect M365 again",
        "document.querySelector('#connect') && document.querySelector('#connect').innerText === 'Connect M365'",
    )
    .await;
    screen(&c, &driver, "10-disconnected").await;
    let after = data(app.gql(Some(&admin), "{ m365Integration { connection { status } } }", json!({})).await);
    assert!(after["m365Integration"]["connection"].is_null());
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_errors_show_the_guides_message() {
    let Some(Session { c, driver, app, account, _slot }) = session().await else { return };
    let admin = app.admin_token(account);
    c.goto(&app.url(&format!("/#token={admin}"))).await.unwrap();
    click(&c, "#connect").await;
    until(&c, "the consent page", "document.title === 'Permissions requested'").await;
    c.find(Locator::Css("button[value=cancel]")).await.unwrap().click().await.unwrap();
    let text = banner(&c, "^You denied the authorization request").await;
    assert!(text.contains("Click Connect M365 again and Accept all requested permissions"), "{text}");
    assert!(text.contains("code: ACCESS_DENIED"), "{text}");
    until(&c, "the query to leave the URL", "!location.search").await;
    screen(&c, &driver, "11-consent-denied").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_sees_connect_disabled() {
    let Some(Session { c, driver, app, account, _slot }) = session().await else { return };
    let reader = app.token(account, &[]);
    // Signed in by pasting the token (Bearer prefix and all) into the header's field.
    c.goto(&app.url("/")).await.unwrap();
    assert!(text_of(&c, "#view").await.contains("Paste an API token"));
    c.find(Locator::Css("#token-input")).await.unwrap().send_keys(&format!("Bearer {reader}")).await.unwrap();
    click(&c, "#session button[type=submit]").await;
    let connect = c.wait().at_most(WAIT).for_element(Locator::Css("#connect")).await.unwrap();
    assert!(connect.attr("disabled").await.unwrap().is_some(), "Connect M365 is enabled for a read-only token");
    assert_eq!(connect.attr("aria-describedby").await.unwrap().as_deref(), Some("connect-reason"));
    let reason = text_of(&c, "#connect-reason").await;
    assert!(reason.contains("Manage Tenant Settings"), "{reason}");
    screen(&c, &driver, "12-read-only").await;

    // Narrow screens still show the card and the reason.
    c.set_window_size(420, 900).await.unwrap();
    until(
        &c,
        "the narrow layout",
        "document.querySelector('#connect-reason').getBoundingClientRect().right <= window.innerWidth",
    )
    .await;
    screen(&c, &driver, "13-narrow").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_works_offline_with_the_consoles_token() {
    let Some(Session { c, driver, app, account, _slot }) = session().await else { return };
    app.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "admin".into() });
    let admin = app.admin_token(account);
    let r = app.browser_connect(&admin).await;
    assert_eq!(r.status(), 303, "the callback sends the browser back to the console");
    app.wait_idle(&admin).await;
    let origin = app.url("");

    // The console keeps the token in this tab; GraphiQL, opened from it, prefills the header.
    c.goto(&app.url(&format!("/#token={admin}"))).await.unwrap();
    text_of(&c, "#conn-status").await;
    click(&c, "a[href='/graphql']").await;
    until(&c, "GraphiQL's editor", "document.querySelector('.graphiql-query-editor .CodeMirror')").await;
    let headers = until(
        &c,
        "the prefilled header",
        "[...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')].map(e => e.CodeMirror.getValue()).find(v => v.includes('Bearer'))",
    )
    .await;
    assert!(headers.as_str().unwrap().contains(&format!("Bearer {admin}")), "{headers}");

    // A query runs.
    let run = |q: &'static str| {
        let c = c.clone();
        async move {
            c.execute(
                "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(arguments[0]);",
                vec![json!(q)],
            )
            .await
            .unwrap();
            click(&c, ".graphiql-execute-button").await;
        }
    };
    run("{ m365Integration { enabled connection { status } } }").await;
    let result = "document.querySelector('.graphiql-response .CodeMirror') && document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()";
    let out =
        until(&c, "the query's result", &format!("({result}) && ({result}).includes('CONNECTED') && ({result})")).await;
    let out: Value = serde_json::from_str(out.as_str().unwrap()).unwrap();
    assert_eq!(out, json!({"data": {"m365Integration": {"enabled": true, "connection": {"status": "CONNECTED"}}}}));
    screen(&c, &driver, "14-graphiql").await;

    // A subscription runs over /graphql/ws: its first event is the last run.
    run("subscription { m365SyncProgress { status tenantsDone } }").await;
    let out = until(
        &c,
        "the subscription's first event",
        &format!("({result}) && ({result}).includes('SUCCEEDED') && ({result})"),
    )
    .await;
    assert!(out.as_str().unwrap().contains("\"status\": \"SUCCEEDED\""), "{out}");
    only_from(&c, &origin).await;
    c.close().await.unwrap();
}
