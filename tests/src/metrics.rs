//! `/metrics` as a scraper sees it: fetched over HTTP and parsed by the Prometheus project's
//! Python client (tests/clients/prom_parse.py), in either text format.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::http;

/// Which text format to ask for and parse.
#[derive(Clone, Copy, Debug)]
pub enum Format {
    /// Prometheus' text format 0.0.4, what a scraper gets by default.
    Prometheus,
    /// OpenMetrics 1.0, asked for with `Accept: application/openmetrics-text`.
    OpenMetrics,
}

/// One sample: its name, labels and value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// One parsed scrape: every sample with its labels.
#[derive(Debug)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// The value of sample `name` whose labels include `labels`; panics if there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).unwrap_or_else(|| {
            let names: Vec<&str> = self.samples.iter().map(|(n, _, _)| n.as_str()).collect();
            panic!("no sample {name}{labels:?}; samples: {names:?}")
        })
    }

    /// The value of sample `name` with `labels`, if it is there.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, have, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|(_, _, value)| *value)
    }
}

/// GETs `path` from `addr` in `format` and parses it; panics on anything but a 200 whose
/// body the parser takes.
pub async fn scrape(addr: SocketAddr, path: &str, format: Format) -> Scrape {
    let accept = match format {
        Format::Prometheus => "text/plain",
        Format::OpenMetrics => "application/openmetrics-text; version=1.0.0",
    };
    let reply = http::request(addr, "GET", path, &[("accept", accept)], Vec::new()).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let content_type = reply.header("content-type").unwrap_or_default().to_owned();
    match format {
        Format::Prometheus => assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        ),
        Format::OpenMetrics => assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        ),
    }
    parse(&reply.body, format).await
}

async fn parse(page: &[u8], format: Format) -> Scrape {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join("prom_parse.py");
    let mode = match format {
        Format::Prometheus => "prometheus",
        Format::OpenMetrics => "openmetrics",
    };
    let mut child = Command::new("python3")
        .arg(script)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with prometheus_client (tests/run installs it)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(page).await.expect("page to the parser");
    drop(stdin);
    let out = tokio::time::timeout(crate::WAIT, child.wait_with_output())
        .await
        .expect("the parser in time")
        .expect("the parser ran");
    assert!(
        out.status.success(),
        "prometheus_client refused the page:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(page)
    );
    let samples = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON sample");
            let labels = v["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let name = v["name"].as_str().unwrap_or_default().to_owned();
            (name, labels, v["value"].as_f64().unwrap_or(f64::NAN))
        })
        .collect();
    Scrape { samples }
}
