//! Record layer benchmark (written later).

fn main() {}
