// `sqlx::migrate!` embeds the migration files at compile time, but stable Rust
// cannot tell Cargo that a proc macro read them. Without this, adding or editing
// a migration would not rebuild the crate and the old set would stay embedded.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
