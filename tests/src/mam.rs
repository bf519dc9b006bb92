//! Helpers for the XEP-0313 tests: slixmpp's xep_0313 client (tests/clients/slix_mam.py)
//! logged in, one archive query, and the JSON it reports.

use serde_json::Value;

use crate::slix::SlixIm;
use crate::TestServer;

/// slix_mam.py as `jid` (password `USERpw`, the user created by the caller), logged in and
/// available.
pub async fn client(server: &TestServer, jid: &str) -> SlixIm {
    let user = jid.split('@').next().unwrap();
    let mut client = SlixIm::spawn_script(
        "slix_mam.py",
        jid,
        &format!("{user}pw"),
        server.c2s.port(),
        &server.cert_path(),
    );
    client.expect_all(&["session_start"]).await;
    client.command(r#"{"cmd": "available"}"#).await;
    client
}

pub fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Sends `body` from `from` to `to` (`to_jid`) and waits until `to`'s client has it; the
/// received event.
pub async fn say(from: &mut SlixIm, to: &mut SlixIm, to_jid: &str, body: &str) -> Value {
    from.command(&format!(
        r#"{{"cmd": "message", "to": "{to_jid}", "body": "{body}"}}"#
    ))
    .await;
    json(
        &to.expect_all(&["received", &format!("\"body\": \"{body}\"")])
            .await,
    )
}

/// One archive query (see slix_mam.py's `page`): the reported event.
pub async fn page(client: &mut SlixIm, query: &str) -> Value {
    client
        .command(&format!(r#"{{"cmd": "page", {query}}}"#))
        .await;
    let line = client
        .events
        .iter()
        .rev()
        .find(|l| l.contains("\"event\": \"page\"") || l.contains("page_error"))
        .cloned()
        .expect("a page");
    json(&line)
}

/// The id of the `<stanza-id/>` by `by` in a stanza's text, if there is one.
pub fn stanza_id_by(stanza: &str, by: &str) -> Option<String> {
    let rest = stanza.split(&format!("by=\"{by}\" id=\"")).nth(1)?;
    rest.split('"').next().map(str::to_owned)
}
