//! `sqlx::migrate!` embeds `../migrations/*` at compile time; tell cargo to rebuild when a
//! migration is added or edited, which it cannot see on its own.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
