//! The SFS client (work in progress).

fn main() {
    eprintln!("sfs-client: not implemented yet");
    std::process::exit(2);
}
