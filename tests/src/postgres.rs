//! A PostgreSQL database of a test's own: the machine's PostgreSQL
//! (`JABBERWOCK_TEST_POSTGRES`, default postgres://postgres@127.0.0.1/test), a fresh
//! database per test, dropped afterwards.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;

/// The database the tests connect to in order to make their own.
pub fn admin_url() -> String {
    std::env::var("JABBERWOCK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".into())
}

/// A database of our own, so parallel runs and other tests can't collide.
pub struct Scratch {
    name: String,
}

impl Scratch {
    pub async fn create() -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("jw_e2e_{}_{nanos}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&admin_url())
            .await
            .expect("PostgreSQL must be running for this test (see README, Tests)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        Scratch { name }
    }

    pub fn url(&self) -> String {
        let admin = admin_url();
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin)
            .to_owned();
        format!("{base}/{}", self.name)
    }

    pub async fn drop_now(self) {
        let mut admin = sqlx::PgConnection::connect(&admin_url())
            .await
            .expect("connect");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .expect("drop database");
    }
}
